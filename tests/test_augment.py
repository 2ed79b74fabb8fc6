"Generated data for augmentation: the mixes, the quality filter, the source channel, the grid table and the one-line errors."
import shutil
import pandas as pd, pytest, torch, torch.nn as nn, yaml
from fastcore.script import anno_parser
from fastgan_study import synthetic as A
from fastgan_study.core import FastGANError
from fastgan_study.data import ImageSet, load_images
from fastgan_study.domain import classifier_accuracy, seeded_lenet
from fastgan_study.learner import train
from fastgan_study.runs import read_config

pytestmark = [pytest.mark.usefixtures('one_thread'), pytest.mark.filterwarnings('ignore:.*classifies only')]
TINY_GAN = dict(epochs=1, n_features=8, score='none', progress=False, seed=0)

@pytest.fixture(scope='module')
def pool(tmp_path_factory):
    "The digits split once: 1,297 for training, 500 held out (x_train/y_train/x_test/y_test)."
    return A.save_split(tmp_path_factory.mktemp('data')/'pool.npz', 'digits', n_test=500)

@pytest.fixture(scope='module')
def run(pool, tmp_path_factory):
    "A one-epoch conditional run on the pool: its images are poor, but labelled."
    out = tmp_path_factory.mktemp('runs')/'cdcgan'
    train(data=str(pool), recipe='cdcgan', out=out, **TINY_GAN)
    return out

@pytest.fixture(scope='module')
def sets(run):
    "Real pool, held-out test split and 300 generated images of the tiny run."
    real, test = A.held_out(read_config(run))
    fake = ImageSet(*A.draw_labelled(A.conditional_generator(run), 300, seed=0), real.vocab, 'generated')
    return real, test, fake

def one_line(e): return '\n' not in str(e.value) and len(str(e.value)) < 400

def test_split_is_fixed_and_disjoint(pool, tmp_path):
    again = A.save_split(tmp_path/'again.npz', 'digits', n_test=500)
    a, b = load_images(pool, size=None), load_images(again, size=None)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)     # the same permutation every time
    test = load_images(pool, size=None, split='test')
    keys, test_keys = A._image_keys(a.images), A._image_keys(test.images)
    assert (len(a), len(test)) == (1297, 500) and not keys & test_keys                # digits has no duplicate images: disjoint
    assert keys | test_keys == A._image_keys(load_images('digits', size=None).images)

def test_mix_has_the_asked_counts_and_balanced_classes(sets):
    real, _, fake = sets
    x, y = A.mix(real, fake, 37, 123, seed=2, source_channel=True)
    assert x.shape == (160, 2, 16, 16) and len(y) == 160
    from_real = x[:, 1, 0, 0] == 255
    assert int(from_real.sum()) == 37 and bool((x[~from_real, 1] == 0).all())
    for part in (y[from_real], y[~from_real]):
        n = torch.bincount(part, minlength=10)
        assert int(n.max() - n.min()) <= 1                                             # balanced within one image per class
    keys = A._image_keys(real.images)
    assert all(k in keys for k in A._image_keys(x[from_real, :1]))                      # the real part is real images
    small, big = A.mix(real, fake, 20, 0, seed=2)[0], A.mix(real, fake, 40, 0, seed=2)[0]
    assert torch.equal(small, big[:20])                                                 # nested: a seed's 20 are in its 40
    with pytest.raises(FastGANError, match='use counts up to 300') as e: A.mix(real, fake, 0, 301)
    assert one_line(e)

def test_generated_labels_are_balanced(run):
    G = A.conditional_generator(run)
    x, y = A.draw_labelled(G, 95, seed=3)
    assert x.shape == (95, 1, 16, 16) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [10] * 5 + [9] * 5
    assert torch.equal(A.draw_labelled(G, 95, seed=3)[0], x) and not torch.equal(A.draw_labelled(G, 95, seed=4)[0], x)

class HalfWrong(nn.Module):
    "A 'generator' that draws a real image of the asked-for class when z[0] > 0, else one of the next class."
    def __init__(self, bank):
        super().__init__(); self.bank, self.n_classes, self.out_range = bank, len(bank), (0, 1)
        self.config, self.w = dict(nz=4, noise='normal'), nn.Parameter(torch.zeros(1))
    def forward(self, z, labels):
        shown = torch.where(z[:, 0] > 0, labels, (labels + 1) % self.n_classes)
        return self.bank[shown].float() / 255

def test_quality_filter_drops_wrongly_labelled_images(sets):
    real, test, _ = sets
    keep = A.label_filter(real)
    ok = keep(test.images, test.labels)                    # one held-out image per class that the filter's classifier gets right
    bank = torch.stack([test.images[ok & (test.labels == c)][0] for c in range(10)])
    G = HalfWrong(bank)
    x, y = A.draw_labelled(G, 200, seed=0)
    right = (x == bank[y]).flatten(1).all(1)
    assert 0.3 < right.float().mean() < 0.7                 # unfiltered: about half are labelled wrongly
    x, y = A.draw_labelled(G, 200, seed=0, keep=keep)
    assert bool((x == bank[y]).flatten(1).all(1).all())     # filtered: every image shows its label
    assert torch.bincount(y).tolist() == [20] * 10
    with pytest.raises(FastGANError, match='the filter kept only 0') as e:
        A.draw_labelled(G, 50, keep=lambda x, y: y != 4, max_draws=3)
    assert one_line(e)

def test_source_channel_shape_and_test_time_channel(sets):
    real, test, fake = sets
    assert A.with_source(test.images[:5], True).shape == (5, 2, 16, 16)
    assert bool((A.with_source(test.images[:5], True)[:, 1] == 255).all()) and bool((A.with_source(fake.images[:5], False)[:, 1] == 0).all())
    acc = A.cell_accuracy(real, fake, test, 50, 100, seed=0, steps=20, device='cpu', source_channel=True)   # a two-channel LeNet
    assert 0 <= acc <= 1

def test_real_only_cell_is_training_on_real_only(sets):
    real, test, fake = sets
    idx = A.balanced_order(real.labels, seed=1)[:100]
    net = A.fit_classifier(seeded_lenet(1, 16, 10, seed=1), real.images[idx], real.labels[idx], steps=30, seed=1, device='cpu')
    alone = classifier_accuracy(net, test.images, test.labels)
    other_fake = ImageSet(fake.images.flip(-1), fake.labels, fake.vocab, 'flipped')
    for f in (fake, other_fake):                            # whatever the generated images, they are not used
        assert A.cell_accuracy(real, f, test, 100, 0, seed=1, steps=30, device='cpu') == alone
        assert A.cell_accuracy(real, f, test, 100, 0, seed=1, steps=30, device='cpu', pretrain=True) == alone
    assert A.cell_accuracy(real, fake, test, 100, 50, seed=1, steps=30, device='cpu', pretrain=True) != \
           A.cell_accuracy(real, fake, test, 100, 50, seed=1, steps=30, device='cpu')

def test_augment_writes_the_grid(run, tmp_path):
    res = A.augment(str(run), real='0,50', generated=[0, 100], seeds=2, steps=20, device='cpu', out=tmp_path/'aug', progress=False)
    cols = ['real', 'generated', 'accuracy', 'std', 'seeds', 'per_seed', 'real_only', 'real_only_std', 'gain', 'beyond_noise']
    assert list(res.columns) == cols and res.shape == (3, 10)
    assert list(zip(res.real, res.generated)) == [(0, 100), (50, 0), (50, 100)]
    assert res.seeds.tolist() == [2, 2, 2] and res.accuracy.between(0, 1).all()
    assert pd.isna(res.real_only[0]) and res.gain[1] == 0 and res.gain[2] == pytest.approx(res.accuracy[2] - res.accuracy[1])
    csv = pd.read_csv(tmp_path/'aug'/'accuracy.csv')
    assert list(csv.columns) == cols and len(csv) == 3
    md = (tmp_path/'aug'/'accuracy.md').read_text()
    assert '| real \\ generated | 0 | 100 |' in md and '| 0 | — |' in md
    assert (tmp_path/'aug'/'best.txt').read_text().startswith('Test accuracy on 500 held-out real images, mean ± std over 2 seeds. Best mix: ')
    assert (tmp_path/'aug'/'heatmap.png').read_bytes()[:4] == b'\x89PNG'
    s = yaml.safe_load((tmp_path/'aug'/'settings.yaml').read_text())
    assert (s['real'], s['generated'], s['test_count'], s['real_pool']) == ([0, 50], [0, 100], 500, 1297)
    assert res.attrs['out'] == str(tmp_path/'aug')

def test_missing_test_split_is_one_line(run, tmp_path):
    no_split = tmp_path/'run'; shutil.copytree(run, no_split)
    c = yaml.safe_load((no_split/'config.yaml').read_text()); c['data'] = 'digits'
    (no_split/'config.yaml').write_text(yaml.safe_dump(c))
    with pytest.raises(FastGANError, match='no held-out test split.*--test') as e: A.augment(str(no_split), real='0,50', generated='0,100')
    assert one_line(e)
    with pytest.raises(FastGANError, match='give images the GAN never saw') as e:
        A.augment(str(run), real='0,50', generated='0,100', test=c['data'])
    assert one_line(e)

def test_unconditional_run_is_one_line(pool, tmp_path):
    train(data=str(pool), out=tmp_path/'dcgan', **TINY_GAN)
    with pytest.raises(FastGANError, match='needs a conditional generator.*--recipe cdcgan') as e:
        A.augment(str(tmp_path/'dcgan'), real='0,50', generated='0,100')
    assert one_line(e)
    with pytest.raises(FastGANError, match='no config.yaml') as e: A.augment(str(tmp_path/'nothing'))
    assert one_line(e)

def test_cli_options_parse():
    args = vars(anno_parser(A.augment).parse_args(['runs/x', '--real', '0,50,100', '--generated', '0,500', '--quality-filter', '--seeds', '5']))
    assert (args['run'], args['real'], args['generated'], args['seeds']) == ('runs/x', '0,50,100', '0,500', 5)
    assert args['quality_filter'] and not args['pretrain'] and not args['source_channel']
    assert A.counts(args['real']) == (0, 50, 100)
    with pytest.raises(FastGANError, match='real must be whole numbers') as e: A.counts('0,fifty', 'real')
    assert one_line(e)
