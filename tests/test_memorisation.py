"Memorisation (nearest training images, the copy score, its figure) and the collapse monitor, on digits at 16×16."
import math, warnings
import pytest, torch
from PIL import Image
from fastgan_study.core import FastGANError, set_seed
from fastgan_study.data import load_images
from fastgan_study.learner import tiny_gan_learner
from fastgan_study.metrics import FeatureExtractor
from fastgan_study.memorisation import nearest_neighbours, embed, PixelFeatures, memorisation, plot_neighbours, CollapseMonitor

@pytest.fixture(autouse=True)
def one_thread():
    "The build machine is shared: one thread each (and the timings below stay stable)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)   # fastai's "shadowing an attribute" notices from GANTrainer
        yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def digits():
    "Training, held-out test and a second held-out ('unseen') set of digits, disjoint."
    x = load_images('digits', size=16).images
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[p[:1197]], x[p[1197:1497]], x[p[1497:]]

class RandomProjection(FeatureExtractor):
    "A fixed random linear map of the pixels: a feature space with no structure of its own."
    name, dims = 'projection', 12
    def __init__(self): self.w = torch.randn(256, 12, generator=torch.Generator().manual_seed(3))
    def batch(self, x): return x.flatten(1).float() @ self.w, None

def brute_force(query, ref, k):
    d = torch.cdist(query.flatten(1).double(), ref.flatten(1).double(), compute_mode='donot_use_mm_for_euclid_dist')
    return d.sort(1).values[:, :k], d.argsort(1)[:, :k]

# --- memorisation

def test_exact_copy_is_found_and_counted(digits):
    train, test, unseen = digits
    fake = torch.cat([unseen[:50], train[[7, 99]]])
    d, i = nearest_neighbours(fake, train, k=4)
    assert d[-2:, 0].tolist() == [0., 0.] and i[-2:, 0].tolist() == [7, 99]
    assert (d[:50, 0] > 0).all()
    with_copies, without = memorisation(fake, train, test), memorisation(unseen[:50], train, test)
    assert round(with_copies.value * 52) == round(without.value * 50) + 2     # both copies counted, nothing else changed

@pytest.mark.parametrize('extractor', [None, PixelFeatures(8)], ids=['pixels', 'pixels8'])
def test_copies_score_one_and_unseen_real_scores_q(digits, extractor):
    train, test, unseen = digits
    copies = train[torch.randint(len(train), (300,), generator=torch.Generator().manual_seed(1))]
    assert memorisation(copies, train, test, extractor=extractor).value == 1.
    for q in (0.05, 0.2):   # 300 unseen images: the fraction's standard error is √(q(1 − q)/300) ≤ 0.023
        s = memorisation(unseen, train, test, extractor=extractor, q=q)
        assert abs(s.value - q) < 0.07, (q, s)
        assert s.card['quantile'] == q and s.card['threshold'] > 0
    assert (s.card['real_count'], s.card['test_count'], s.card['fake_count']) == (1197, 300, 300)
    assert s.card['extractor'] == ('pixels' if extractor is None else 'pixels8')

def test_score_is_one_when_every_image_is_a_training_image_even_in_feature_space(digits):
    train, test, _ = digits
    assert memorisation(train[:100], train, test, extractor=RandomProjection()).value == 1.

# --- nearest neighbours against brute force

@pytest.mark.parametrize('chunk', [1, 7, 1000])
def test_neighbours_match_brute_force_on_features(chunk):
    g = torch.Generator().manual_seed(0)
    query, ref = torch.randn(37, 5, generator=g), torch.randn(101, 5, generator=g)
    d, i = nearest_neighbours(query, ref, k=4, chunk=chunk)
    bd, bi = brute_force(query, ref, 4)
    torch.testing.assert_close(d, bd, rtol=0, atol=1e-9)
    assert torch.equal(i, bi)

@pytest.mark.parametrize('chunk', [3, 16])
def test_neighbours_match_brute_force_on_pixels(digits, chunk):
    train, _, unseen = digits
    query, ref = unseen[:40], train[:90]
    d, i = nearest_neighbours(query, ref, k=3, chunk=chunk)
    bd, bi = brute_force(query.double() / 255, ref.double() / 255, 3)
    torch.testing.assert_close(d, bd, rtol=0, atol=1e-9)
    assert torch.equal(i, bi)                               # no ties among these digits

@pytest.mark.parametrize('extractor', [PixelFeatures(4), RandomProjection()], ids=['pixels4', 'projection'])
def test_neighbours_match_brute_force_in_feature_space(digits, extractor):
    train, _, unseen = digits
    query, ref = embed(unseen[:30], extractor), embed(train[:80], extractor)
    d, i = nearest_neighbours(query, ref, k=4, chunk=9)
    bd, bi = brute_force(extractor.features(unseen[:30])[0], extractor.features(train[:80])[0], 4)
    torch.testing.assert_close(d, bd, rtol=1e-6, atol=1e-6)
    assert torch.equal(i, bi)

# --- the figure

def test_figure_is_written_and_grows_with_rows(digits, tmp_path):
    train, test, unseen = digits
    d, i = nearest_neighbours(unseen[:20], train, k=4)
    sizes = [Image.open(plot_neighbours(unseen[:20], train, d, i, tmp_path/f'{n}.png', n_rows=n, threshold=1.)).size for n in (2, 6)]
    assert sizes[0][0] == sizes[1][0] and sizes[1][1] > sizes[0][1] + 300    # same columns; four more rows of ~155 px
    d3, i3 = d[:, :2], i[:, :2]
    narrow = Image.open(plot_neighbours(unseen[:20], train, d3, i3, tmp_path/'k2.png', n_rows=6)).size
    assert narrow[0] < sizes[1][0] and narrow[1] == sizes[1][1]              # fewer neighbours: fewer columns
    memorisation(unseen[:20], train, test, fname=tmp_path/'m.png', n_rows=3)
    assert Image.open(tmp_path/'m.png').size[1] < sizes[1][1]

def test_figure_shows_closest_first(digits, tmp_path, monkeypatch):
    train, _, unseen = digits
    fake = torch.cat([unseen[:10], train[3:4]])
    d, i = nearest_neighbours(fake, train, k=2)
    shown = []
    import fastgan_study.memorisation as m
    monkeypatch.setattr(m, '_show', lambda ax, img, label, color='black': shown.append((label, color)))
    plot_neighbours(fake, train, d, i, tmp_path/'f.png', n_rows=2, threshold=0.)
    assert shown[0][0] == 'generated #10' and shown[1] == ('train #3  d=0', 'red')

# --- bad input

def test_bad_input_gives_one_line_errors(digits):
    train, test, unseen = digits
    big = torch.nn.functional.interpolate(unseen.float(), 32).byte()
    for fake, train_, test_, msg in [(big, train, test, 'size=32, n_channels=1'),
                                     (unseen.expand(-1, 3, -1, -1), train, test, 'size=16, n_channels=3'),
                                     (unseen, train, big, 'test images are 1×32×32'),
                                     (unseen[:0], train, test, 'generated set is empty'),
                                     (unseen, train[:0], test, 'training set is empty'),
                                     (unseen, train, test[:0], 'test set is empty'),
                                     (unseen, train, train, 'held-out')]:
        with pytest.raises(FastGANError, match=msg) as e: memorisation(fake, train_, test_)
        assert '\n' not in str(e.value)
    with pytest.raises(FastGANError, match='between 0 and 1'): memorisation(unseen, train, test, q=5)
    with pytest.raises(FastGANError, match='cannot compare'): nearest_neighbours(unseen, torch.randn(10, 256))
    with pytest.raises(FastGANError, match='nothing to compare'): nearest_neighbours(torch.randn(0, 4), torch.randn(10, 4))
    with pytest.raises(FastGANError, match='k must be'): nearest_neighbours(unseen, train[:3], k=4)

# --- the collapse monitor

def fit_two_epochs(*cbs):
    set_seed(0)
    learn = tiny_gan_learner(cbs=list(cbs))
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    return learn

def test_collapse_monitor_logs_each_epoch_and_leaves_training_alone():
    watched = fit_two_epochs(CollapseMonitor())
    rows = watched.collapse_monitor.rows
    assert [r['epoch'] for r in rows] == [1, 2]
    assert all(math.isfinite(r['fd_prev']) and r['fd_prev'] > 0 and 0 < r['diversity'] for r in rows)
    for mine, logged in zip(rows, watched.gan_metrics.rows):            # the same values, in the GANMetrics rows
        assert (logged['fd_prev'], logged['diversity']) == (mine['fd_prev'], mine['diversity'])
    plain = fit_two_epochs()
    for a, b in zip(watched.model.state_dict().values(), plain.model.state_dict().values()): assert torch.equal(a, b)
    assert [r['gen_loss'] for r in watched.gan_metrics.rows] == [r['gen_loss'] for r in plain.gan_metrics.rows]

class IgnoresNoise(torch.nn.Module):
    "A collapsed generator: every noise vector gives the image of the zero vector."
    def __init__(self, g): super().__init__(); self.g = g
    def forward(self, z): return self.g(torch.zeros_like(z))

def test_collapsed_generator_has_no_diversity_and_keeps_its_mode():
    learn = tiny_gan_learner()
    learn.model.generator = IgnoresNoise(learn.model.generator)
    cb = CollapseMonitor(every=1); learn.add_cb(cb); learn.epoch = 0
    learn.model.generator.train()
    state = torch.get_rng_state()
    cb.before_fit(); cb.after_epoch()
    assert learn.model.generator.training and torch.equal(torch.get_rng_state(), state)
    assert cb.rows[-1]['diversity'] == pytest.approx(0, abs=1e-6)
    assert cb.rows[-1]['fd_prev'] == pytest.approx(0, abs=1e-9)           # nothing trained: nothing moved

def test_collapse_monitor_every_and_sample_count():
    learn = tiny_gan_learner(); cb = CollapseMonitor(every=2); learn.add_cb(cb)
    cb.before_fit()
    for e in range(4): learn.epoch = e; cb.after_epoch()
    assert [r['epoch'] for r in cb.rows] == [2, 4]
    learn = tiny_gan_learner(cbs=CollapseMonitor(n=32))
    with pytest.raises(FastGANError, match='use at least 64 samples'): learn.collapse_monitor.before_fit()
    learn = tiny_gan_learner(cbs=CollapseMonitor(n=32, allow_few=True))
    learn.collapse_monitor.before_fit()
