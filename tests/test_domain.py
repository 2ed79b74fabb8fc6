"Domain-classifier scores: held-out accuracy, scores that separate real from noise and collapse, the cache, Stacked MNIST."
import math, urllib.error
from pathlib import Path
import numpy as np, pytest, torch
from fastgan_study import data, domain
from fastgan_study.core import FastGANError
from fastgan_study.data import ImageSet, load_images, select_classes, stacked_mnist_images

MNIST = Path(__file__).resolve().parents[1].parent/'shared'/'data'/'mnist.npz'
pytestmark = pytest.mark.filterwarnings('ignore:.*classifies only')   # short trainings below, on purpose
needs_mnist = pytest.mark.skipif(not MNIST.exists(), reason=f"{MNIST} not found (MNIST as .npz for tests)")

@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    "Every test gets an empty cache folder of its own, never the user's."
    monkeypatch.setenv('FASTGAN_STUDY_CACHE', str(tmp_path/'cache'))
    return tmp_path/'cache'

@pytest.fixture(scope='module')
def halves():
    "Digits at 16×16 split in two disjoint halves: the classifier trains on the first and never sees the second."
    d = load_images('digits', size=16)
    perm = torch.randperm(len(d), generator=torch.Generator().manual_seed(1))
    a, b = perm[:len(d) // 2], perm[len(d) // 2:]
    return ImageSet(d.images[a], d.labels[a], d.vocab, 'digits-a'), ImageSet(d.images[b], d.labels[b], d.vocab, 'digits-b')

@pytest.fixture(scope='module')
def clf(halves, tmp_path_factory):
    with pytest.MonkeyPatch.context() as m:
        m.setenv('FASTGAN_STUDY_CACHE', str(tmp_path_factory.mktemp('cache')))
        return domain.domain_classifier(halves[0])

@pytest.fixture(scope='module')
def mnist_clf(tmp_path_factory):
    "A digit classifier on MNIST at 28×28 (500 steps instead of the default 1,000, to keep the suite quick)."
    if not MNIST.exists(): pytest.skip(f"{MNIST} not found (MNIST as .npz for tests)")
    with pytest.MonkeyPatch.context() as m:
        m.setenv('FASTGAN_STUDY_CACHE', str(tmp_path_factory.mktemp('cache')))
        return domain.domain_classifier(MNIST, size=28, steps=500)

def test_accuracy_on_held_out_digits(clf, halves):
    assert clf.accuracy >= 0.9                                   # its own held-out tenth
    assert domain.classifier_accuracy(clf.net, halves[1].images, halves[1].labels) >= 0.9   # digits it never saw
    assert (clf.dims, clf.n_classes, clf.name) == (128, 10, 'lenet-digits-a')
    assert set(clf.card) == {'extractor', 'weights', 'layer', 'dims', 'resize'} and clf.card['layer'] == 'penultimate'
    f, logits = clf.features(halves[1].images[:7])
    assert f.shape == (7, 128) and logits.shape == (7, 10) and f.dtype == torch.float32

def test_training_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123); expected = torch.rand(3)
    torch.manual_seed(123)
    a = domain.domain_classifier('digits', size=16, steps=40, cache=False)
    assert torch.equal(torch.rand(3), expected)
    b = domain.domain_classifier('digits', size=16, steps=40, cache=False)
    c = domain.domain_classifier('digits', size=16, steps=40, cache=False, seed=1)
    assert a.card['weights'] == b.card['weights'] != c.card['weights']

def test_scores_separate_real_noise_and_collapse(clf, halves):
    real_a, real_b = halves
    noise = torch.randint(0, 256, (len(real_b), 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    threes = real_b.images[real_b.labels == 3]
    collapsed = threes[torch.arange(len(real_b)) % len(threes)]
    same, far, mono = (domain.domain_scores(real_a, x, clf) for x in (real_b, noise, collapsed))
    assert same['domain_fd'].value < 40 and far['domain_fd'].value > 20 * same['domain_fd'].value
    assert same['modes'].value == 10 and mono['modes'].value == 1
    assert same['class_kl'].value < 0.05 and mono['class_kl'].value > 2
    assert far['domain_is'].value < same['domain_is'].value

def test_every_score_has_a_full_card(clf, halves):
    s = domain.domain_scores(halves[0], halves[1], clf, labels=halves[1].labels)
    assert {'domain_fd', 'domain_is', 'modes', 'class_kl', 'accuracy', 'accuracy_0', 'accuracy_9'} <= set(s)
    for score in s.values():
        assert {'extractor', 'weights', 'layer', 'dims', 'resize', 'real', 'real_count', 'fake_count', 'seed'} <= set(score.card)
        assert score.card['real'] == 'digits-a' and score.card['fake_count'] == len(halves[1]) and score.card['weights'] == clf.card['weights']
    assert s['accuracy'].value >= 0.9 and s['modes'].card['min_share'] == 0.5

def test_classifier_inception_score_of_held_out_digits(clf, halves):
    s = domain.domain_scores(halves[0], halves[1], clf)['domain_is']
    assert 8.5 < s.value <= 10 and s.std is not None

def test_resize_and_channels_are_recorded(clf, halves):
    big_rgb = data.set_channels(data.resize_images(halves[1].images, 28), 3)
    s = domain.domain_scores(halves[0], big_rgb, clf)
    assert s['domain_fd'].card['resize'] == 'bilinear 28×28→16×16, 3→1 channels'
    assert s['modes'].value == 10 and s['domain_fd'].value < 100

def test_clear_errors(clf, halves):
    one_class = load_images('digits', size=16, classes='7')
    with pytest.raises(FastGANError, match='needs labelled images of at least 2 classes'): domain.domain_classifier(one_class)
    with pytest.raises(FastGANError, match='has 100 samples but the features have 128 dimensions'):
        domain.domain_scores(halves[0], halves[1].images[:100], clf)
    assert domain.domain_scores(halves[0], halves[1].images[:100], clf, allow_few=True)['domain_fd'].value > 0
    parity = ImageSet(halves[0].images, halves[0].labels % 2, ['even', 'odd'], 'parity')
    with pytest.warns(UserWarning, match='classifies only'): pclf = domain.domain_classifier(parity, steps=3)
    with pytest.raises(FastGANError, match='was trained on 2 classes'): domain.domain_scores(halves[0], halves[1], pclf)
    with pytest.raises(FastGANError, match='needs a classifier of the digits 0–9'):
        domain.count_modes(torch.zeros(4, 3, 16, 16, dtype=torch.uint8), pclf)
    with pytest.raises(FastGANError, match=r'labels must be class indices 0…9'):
        domain.domain_scores(halves[0], halves[1], clf, labels=halves[1].labels + 1)
    with pytest.raises(FastGANError) as e: domain.domain_classifier(one_class)
    with pytest.raises(FastGANError, match='give them as a labelled ImageSet'): domain.domain_scores(halves[0].images, halves[1])
    assert '\n' not in str(e.value)

def test_cache_trains_once_and_rebuilds_a_corrupt_file(cache, monkeypatch):
    first = domain.domain_classifier('digits', size=16, steps=100)
    files = list((cache/'domain').glob('*'))
    assert len(files) == 1 and files[0].suffix == '.pt'          # written atomically: no temporary file left behind
    def no_training(*a, **k): raise AssertionError('trained again although the weights were cached')
    with monkeypatch.context() as m:
        m.setattr(domain, 'train_lenet', no_training)
        again = domain.domain_classifier('digits', size=16, steps=100)
    assert again.card == first.card and again.accuracy == first.accuracy
    other = domain.domain_classifier('digits', size=16, steps=100, seed=1)  # another seed is another classifier
    assert other.card['weights'] != first.card['weights'] and len(list((cache/'domain').glob('*.pt'))) == 2
    files[0].write_bytes(files[0].read_bytes()[:200])            # truncated, as by a full disk or a killed process
    assert domain.domain_classifier('digits', size=16, steps=100).card == first.card
    torch.save(torch.zeros(3), files[0])                         # loads, but is not a classifier
    assert domain.domain_classifier('digits', size=16, steps=100).card == first.card
    assert isinstance(torch.load(files[0], weights_only=True), dict)

@needs_mnist
def test_stacked_mnist_labels_decode():
    s = stacked_mnist_images(MNIST, n=300, seed=3, split='test')
    assert s.images.shape == (300, 3, 28, 28) and s.images.dtype == torch.uint8
    assert len(s.vocab) == 1000 and s.vocab[307] == '307' and s.source == f'stacked_mnist:{MNIST}'
    with np.load(MNIST) as f: x, y = f['x_test'], f['y_test']
    label_of = {}
    for img, lbl in zip(x, y): label_of.setdefault(img.tobytes(), set()).add(int(lbl))
    for img, lbl in zip(s.images, s.labels.tolist()):
        for c, digit in enumerate((lbl // 100, lbl // 10 % 10, lbl % 10)): assert digit in label_of[img[c].numpy().tobytes()]
    assert torch.equal(stacked_mnist_images(MNIST, n=300, seed=3, split='test').images, s.images)
    t = load_images(f'stacked_mnist:{MNIST}', size=32, split='test')
    assert t.images.shape == (10000, 3, 32, 32) and len(t.vocab) == 1000

def test_stacked_mnist_offline_is_one_clear_error(monkeypatch, tmp_path):
    import socket
    def offline(*a, **k): raise OSError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(socket, 'getaddrinfo', offline); monkeypatch.setattr(socket.socket, 'connect', offline)   # no network, whatever this machine has
    monkeypatch.setenv('FASTGAN_STUDY_DATA', str(tmp_path))
    with pytest.raises(FastGANError, match=r"mnist is not in .*or pass a folder of images.*'stacked_mnist:FOLDER'") as e:
        load_images('stacked_mnist')
    assert '\n' not in str(e.value)
    with pytest.raises(FastGANError, match="did you mean 'stacked_mnist'"): load_images('stacked_mnsit')

@needs_mnist
def test_mnist_classifier_and_count_modes(mnist_clf):
    assert mnist_clf.accuracy >= 0.97 and mnist_clf.name == 'lenet-mnist'
    test = load_images(MNIST, size=28, split='test')
    s = domain.domain_scores(test, test.images[5000:], mnist_clf, labels=test.labels[5000:])
    assert 9 < s['domain_is'].value <= 10 and s['accuracy'].value >= 0.97 and s['modes'].value == 10
    real = stacked_mnist_images(MNIST, n=10_000, split='test')
    covered = domain.count_modes(real, mnist_clf)
    assert covered['modes'].value >= 980 and covered['mode_kl'].value < 0.15
    assert covered['modes'].card['fake_count'] == 10_000 and covered['modes'].card['min_count'] == 1
    few = domain.count_modes(real.images[:20].repeat(500, 1, 1, 1), mnist_clf)     # a generator that makes 20 images
    assert few['modes'].value <= 20 and few['mode_kl'].value > math.log(1000 / 20) - 1e-6
    ones_sevens = stacked_mnist_images(select_classes(test, ['1', '7']), n=5000)
    c = domain.count_modes(ones_sevens, mnist_clf)   # 8 true modes; with min_count=1 each misread digit adds a stray one
    assert c['modes'].value < 150 and c['mode_kl'].value > 4                              # ln(1000/8) = 4.83 for exactly 8
