"Latent-space exploration: interpolation paths and strips, attribute vectors, progress GIF and sheet, the critic and a classifier's views."
import math
import numpy as np, pytest, torch, torch.nn as nn
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from fastgan_study.core import FastGANError
from fastgan_study.data import ImageSet, load_images
from fastgan_study.learner import train
from fastgan_study.runs import load_generator
from fastgan_study.metrics import FeatureExtractor
from fastgan_study.latent import (lerp, slerp, chain, sample_latents, images_from, interpolation_images, interpolate, attribute_vector,
                                  add_attribute, remove_attribute, class_vector, attribute_effect, sample_grids, progress_gif,
                                  progress_sheet, load_critic, critic_scores, critic_view, separation, pca_2d)

pytestmark = [pytest.mark.usefixtures('one_thread'), pytest.mark.filterwarnings('ignore::UserWarning')]
TINY = dict(size=16, bs=16, n_features=8, score='none', progress=False, device='cpu')

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A tiny dcgan run on the sevens of digits: 2 epochs, width 8 (3 sample grids)."
    out = tmp_path_factory.mktemp('latent')/'dcgan'
    train('digits', classes='7', epochs=2, out=out, **TINY)
    return out

@pytest.fixture(scope='module')
def cond_run(tmp_path_factory):
    "A tiny conditional run (cdcgan) on the ones and sevens."
    out = tmp_path_factory.mktemp('latent')/'cdcgan'
    train('digits', classes='1,7', recipe='cdcgan', epochs=1, out=out, **TINY)
    return out

def normal(n, nz=100, seed=0): return torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))

# --- interpolation paths

def test_slerp_keeps_ends_and_lengths_between_them():
    z0, z1 = normal(500), normal(500, seed=1) * 1.3          # lengths ≈ 10 and ≈ 13
    p = slerp(z0, z1, 7)
    assert p.shape == (500, 7, 100)
    torch.testing.assert_close(p[:, 0], z0, atol=1e-5, rtol=0)
    torch.testing.assert_close(p[:, -1], z1, atol=1e-5, rtol=0)
    r, lo, hi = p.norm(dim=-1), torch.minimum(z0.norm(dim=1), z1.norm(dim=1)), torch.maximum(z0.norm(dim=1), z1.norm(dim=1))
    assert ((r >= lo[:, None] - 1e-4) & (r <= hi[:, None] + 1e-4)).all()
    cos = lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))     # the direction turns at a constant rate
    step = cos(p[:, :-1], p[:, 1:])
    torch.testing.assert_close(step, step[:, :1].expand_as(step), atol=1e-4, rtol=0)

def test_slerp_on_equal_lengths_is_whites_formula():
    z0, z1 = normal(50), normal(50, seed=1)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)
    t, om = 0.3, torch.acos((z0 * z1).sum(1, keepdim=True) / (z0.norm(dim=1, keepdim=True) * z1.norm(dim=1, keepdim=True)))
    white = (torch.sin((1 - t) * om) * z0 + torch.sin(t * om) * z1) / torch.sin(om)
    t_path = torch.linspace(0, 1, 11)[3]
    assert abs(t_path - t) < 1e-6
    torch.testing.assert_close(slerp(z0, z1, 11)[:, 3], white, atol=1e-4, rtol=0)

def test_slerp_of_parallel_latents_is_finite():
    z = normal(1)[0]
    p = slerp(z, 2 * z, 5)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, lerp(z, 2 * z, 5), atol=1e-5, rtol=0)

def test_linear_midpoint_is_the_mean():
    z0, z1 = normal(10), normal(10, seed=1)
    torch.testing.assert_close(lerp(z0, z1, 3)[:, 1], (z0 + z1) / 2)
    assert torch.equal(lerp(z0, z1, 3)[:, 0], z0) and torch.equal(lerp(z0, z1, 3)[:, -1], z1)

def test_chain_passes_through_every_latent():
    zs = normal(5, seed=2)
    for method in ('slerp', 'linear'):
        p = chain(zs, steps=4, method=method)
        assert p.shape == (4 * 3 + 1, 100)
        torch.testing.assert_close(p[::3], zs, atol=1e-5, rtol=0)

def test_bad_interpolation_settings_are_one_line_errors():
    z = normal(2)
    for f, msg in ((lambda: slerp(z[0], z[1], 1), 'at least 2 steps'), (lambda: chain(z[:1]), 'at least 2 latents'),
                   (lambda: chain(z, method='slrep'), "did you mean 'slerp'")):
        with pytest.raises(FastGANError, match=msg) as e: f()
        assert '\n' not in str(e.value)

# --- interpolate: the run's strip

def test_interpolate_writes_a_strip_of_the_right_size(run):
    f = interpolate(str(run), steps=6, rows=2)
    assert f == run/'interpolation.png'
    assert Image.open(f).size == (150 + 60 * 6, 90 + 60 * 2)           # 0.6 in per image + margins, at 100 dpi
    g = interpolate(run, steps=10, rows=4, method='linear', seed=3, out=run/'other'/'lin.png')
    assert Image.open(g).size == (150 + 60 * 10, 90 + 60 * 4)

def test_interpolation_rows_start_and_end_at_the_drawn_latents(run):
    G = load_generator(run)
    imgs = interpolation_images(G, rows=3, steps=5, seed=7)
    z = sample_latents(G, 6, seed=7)
    assert imgs.shape == (3, 5, 1, 16, 16) and imgs.dtype == torch.uint8
    assert torch.equal(imgs[:, 0], images_from(G, z[:3])) and torch.equal(imgs[:, -1], images_from(G, z[3:]))
    assert not torch.equal(imgs[:, 0], imgs[:, 2])

def test_conditional_rows_keep_one_class(cond_run):
    G = load_generator(cond_run)
    k = G.n_classes
    assert k >= 2
    imgs = interpolation_images(G, rows=3, steps=4, seed=1)
    z = sample_latents(G, 6, seed=1)
    path = slerp(z[:3], z[3:], 4)
    for r in range(3):
        assert torch.equal(imgs[r], images_from(G, path[r], labels=r % k))
    assert not torch.equal(imgs[0], images_from(G, path[0], labels=1))
    assert Image.open(interpolate(cond_run, steps=4, rows=3)).size == (150 + 60 * 4, 90 + 60 * 3)

def test_uniform_noise_runs_draw_uniform_latents(tmp_path):
    train('digits', classes='7', epochs=1, noise='uniform', out=tmp_path/'u', **TINY)
    z = sample_latents(load_generator(tmp_path/'u'), 1000)
    assert z.min() >= -1 and z.max() <= 1 and z.abs().mean() > 0.45     # U(-1, 1): mean |z| = 0.5

# --- attribute vectors

def test_removal_leaves_latents_orthogonal_and_add_moves_by_strength():
    z = normal(3000, nz=20)
    v = attribute_vector(z, z[:, 0] > 1)
    torch.testing.assert_close(v.norm(), torch.tensor(1.))
    assert v[0] > 0.9                                            # the feature lives on the first coordinate
    torch.testing.assert_close(remove_attribute(z, v) @ v, torch.zeros(3000), atol=1e-4, rtol=0)
    torch.testing.assert_close(remove_attribute(z, 5 * v) @ v, torch.zeros(3000), atol=1e-4, rtol=0)   # any length of v
    torch.testing.assert_close((add_attribute(z, v, -2.5) - z) @ v, torch.full((3000,), -2.5), atol=1e-4, rtol=0)
    r = remove_attribute(z, v)                                   # nothing orthogonal to v moves
    torch.testing.assert_close(r - (r @ v)[:, None] * v, z - (z @ v)[:, None] * v, atol=1e-5, rtol=0)

def test_indices_and_mask_give_the_same_vector():
    z = normal(50)
    idx = [1, 4, 9, 30]
    mask = torch.zeros(50, dtype=torch.bool); mask[idx] = True
    torch.testing.assert_close(attribute_vector(z, idx), attribute_vector(z, mask))
    torch.testing.assert_close(attribute_vector(z, np.array(idx)), attribute_vector(z, mask.numpy()))

@pytest.mark.parametrize('has, msg', [(torch.zeros(50, dtype=torch.bool), 'no latent has the feature'), ([], 'no latent has the feature'),
                                      (torch.ones(50, dtype=torch.bool), 'every latent has the feature'),
                                      (torch.zeros(49, dtype=torch.bool), 'one boolean per latent'), ([3, 50], r'in 0\.\.49')])
def test_attribute_vector_refuses_unusable_marks(has, msg):
    with pytest.raises(FastGANError, match=msg) as e: attribute_vector(normal(50), has)
    assert '\n' not in str(e.value)

class BrightnessGenerator(nn.Module):
    "Images whose brightness is tanh of the latent's first coordinate: the 'feature' lives on one axis."
    n_classes, out_range = 0, (-1, 1)
    def __init__(self): super().__init__(); self.w = nn.Parameter(torch.ones(1)); self.config = dict(nz=8, noise='normal')
    def forward(self, z): return torch.tanh(self.w * z[:, :1])[..., None, None].expand(-1, 1, 8, 8)

class BrightnessClassifier(FeatureExtractor):
    "Class 1 for images brighter than mid-grey, else class 0."
    name, dims, n_classes, vocab = 'brightness', 1, 2, ['dark', 'bright']
    def batch(self, x): m = x.float().mean((1, 2, 3))[:, None] - 127.5; return m, torch.cat([-m, m], 1)

def test_class_vector_finds_the_feature_and_edits_move_the_class():
    G, clf = BrightnessGenerator(), BrightnessClassifier()
    v = class_vector(G, clf, k=1, n=2000)
    assert v[0] > 0.95
    e = attribute_effect(G, v, clf, k=1, strengths=(-2, 0, 2), n=1000)
    assert e[-2] < 0.1 < 0.4 < e[0] < 0.6 < 0.9 < e[2]
    assert abs(e['removed'] - 0.5) < 0.1                         # with the axis projected out, brightness is left to chance

# --- progress GIF and contact sheet

def test_gif_has_one_frame_per_epoch_grid(run):
    grids = sample_grids(run)
    assert [e for e, _ in grids] == [0, 1, 2]
    gif = Image.open(progress_gif(run))
    assert gif.n_frames == 3 and gif.size == (438, 460)
    durations = []
    for i in range(gif.n_frames): gif.seek(i); durations.append(gif.info['duration'])
    assert durations == [200, 200, 1500]

def test_gif_and_sheet_thin_and_shrink(run, tmp_path):
    assert Image.open(progress_gif(run, every=2, out=tmp_path/'a.gif')).n_frames == 2          # epochs 0 and 2
    assert Image.open(progress_gif(run, width=146, out=tmp_path/'b.gif')).size == (146, 168)
    sheet = Image.open(progress_sheet(run, cols=2))
    assert sheet.size == (2 * (438 + 8) + 8, 34 + 2 * (460 + 8))
    assert Image.open(progress_sheet(run, every=2, width=219, out=tmp_path/'s.png')).size == (2 * (219 + 8) + 8, 34 + (219 + 22 + 8))

def test_progress_of_a_folder_without_grids(tmp_path):
    for f in (progress_gif, progress_sheet):
        with pytest.raises(FastGANError, match='no sample grids') as e: f(tmp_path)
        assert '\n' not in str(e.value)

# --- the critic

def test_load_critic_matches_the_checkpoint(run):
    D, state = load_critic(run), torch.load(run/'model.pth', weights_only=True)
    assert not D.training and D.config == state['config']
    sd = D.state_dict()
    assert sd.keys() == state['critic'].keys()
    assert all(torch.equal(sd[k], state['critic'][k]) for k in sd)

def test_critic_scores_are_oriented_higher_is_real(tmp_path):
    train('digits', classes='7', recipe='wgan', epochs=1, out=tmp_path/'w', **TINY)
    D = load_critic(tmp_path/'w')
    x = load_images('digits', size=16).images[:20]
    with torch.no_grad(): raw = D(x.float() / 127.5 - 1)
    torch.testing.assert_close(critic_scores(D, x), -raw)           # fastai's WGAN critic gives real images low values

def test_critic_view_of_a_conditional_run_needs_labels(cond_run):
    d = load_images('digits', size=16, classes=['1', '7'])
    s = critic_view(cond_run, ImageSet(d.images[:100], d.labels[:100], d.vocab, 'a'), ImageSet(d.images[100:], d.labels[100:], d.vocab, 'b'), n=50)
    assert {k: len(v) for k, v in s.items()} == {'generated': 50, 'training': 100, 'held-out': len(d) - 100}
    with pytest.raises(FastGANError, match='conditional'): critic_view(cond_run, d.images[:100], d.images[100:])

def test_separation_auc_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, generator=g).round(decimals=1) + 0.3, torch.randn(200, generator=g).round(decimals=1)   # with ties
    s = separation(a, b)
    auc = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[a.numpy(), b.numpy()])
    assert abs(s['auc'] - auc) < 1e-4 and abs(s['gap'] - float(a.mean() - b.mean())) < 1e-4
    assert abs(s['auc_se'] - math.sqrt(501 / (12 * 300 * 200))) < 1e-4

def test_pca_2d_matches_sklearn():
    x, y = torch.randn(400, 6) * torch.tensor([5., 3., 1., 1., .5, .1]), torch.randn(50, 6)
    (px, py), var = pca_2d(x, y)
    p = PCA(2).fit(x.numpy())
    np.testing.assert_allclose(var, p.explained_variance_ratio_, atol=1e-6)
    np.testing.assert_allclose(np.abs(px.numpy()), np.abs(p.transform(x.numpy())), atol=1e-4)
    np.testing.assert_allclose(np.abs(py.numpy()), np.abs(p.transform(y.numpy())), atol=1e-4)

# --- bad run folders

def with_file(name, data=b''):
    "A maker of a folder holding one file `name`."
    def make(p): (p/name).write_bytes(data); return p
    return make

@pytest.mark.parametrize('make, msg', [(lambda p: p/'missing', 'no run folder'), (lambda p: p, 'no model.pth'),
                                       (with_file('model.pth', b'not a checkpoint'), 'not a readable checkpoint'),
                                       (with_file('gan.pth'), 'superres run')])
@pytest.mark.parametrize('use', [lambda r: interpolate(r), load_critic, lambda r: critic_view(r, torch.zeros(2, 1, 16, 16, dtype=torch.uint8),
                                                                                              torch.zeros(2, 1, 16, 16, dtype=torch.uint8))])
def test_bad_run_folder_is_a_one_line_error(tmp_path, make, msg, use):
    with pytest.raises(FastGANError, match=msg) as e: use(make(tmp_path))
    assert '\n' not in str(e.value)
