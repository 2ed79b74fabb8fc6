"Data sources with real files: MNIST from ../shared/data, folders with splits, fastai URLs offline."
import urllib.error
import numpy as np, pytest, torch
from PIL import Image
from conftest import SHARED_DATA
from fastgan_study import data
from fastgan_study.core import FastGANError

MNIST = SHARED_DATA/'mnist.npz'

@pytest.mark.skipif(not MNIST.exists(), reason=f"{MNIST} not found (MNIST as .npz for tests)")
def test_mnist_npz_at_its_own_size():
    s = data.load_images(MNIST, size=28)
    assert s.images.shape == (60000, 1, 28, 28) and s.images.dtype == torch.uint8
    assert s.vocab == [str(i) for i in range(10)]
    t = data.load_images(MNIST, size=28, split='test', classes='3')
    assert len(t) == 1010 and (t.labels == 3).all()
    with np.load(MNIST) as f: assert torch.equal(t.images[0, 0], torch.from_numpy(f['x_test'][f['y_test'] == 3][0]))

@pytest.mark.skipif(not MNIST.exists(), reason=f"{MNIST} not found (MNIST as .npz for tests)")
def test_mnist_batches_in_range():
    dls = data.gan_dls(MNIST, size=32, bs=128, device='cpu')
    z, x = dls.one_batch()
    assert x.shape == (128, 1, 32, 32) and z.shape == (128, 100)
    assert -1 <= x.min() < -0.99 and 0.99 < x.max() <= 1

def _folder(root, split, classes, n=3, mode='RGB'):
    for c in classes:
        d = root/split/c; d.mkdir(parents=True)
        for i in range(n): Image.new(mode, (20, 12), (i * 40, 10, 200) if mode == 'RGB' else i * 40).save(d/f'{i}.png')

def test_folder_with_splits_and_channels(tmp_path):
    _folder(tmp_path, 'train', ['horse', 'deer']); _folder(tmp_path, 'test', ['horse'])
    s = data.load_images(tmp_path, size=8)
    assert s.images.shape == (6, 3, 8, 8) and s.vocab == ['deer', 'horse']
    assert len(data.load_images(tmp_path, size=8, split='test')) == 3
    g = data.load_images(tmp_path, size=8, n_channels=1, classes='horse')
    assert g.images.shape == (3, 1, 8, 8)
    with pytest.raises(FastGANError, match='its classes are deer, horse'): data.load_images(tmp_path, classes='cat')

def test_a_named_dataset_offline_is_one_clear_error(monkeypatch, tmp_path):
    import socket
    def offline(*a, **k): raise OSError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(socket, 'getaddrinfo', offline); monkeypatch.setattr(socket.socket, 'connect', offline)   # no network, whatever this machine has
    monkeypatch.setenv('FASTGAN_STUDY_DATA', str(tmp_path))
    with pytest.raises(FastGANError, match=r"mnist is not in .*or pass a folder of images: --data PATH") as e: data.load_images('mnist')
    assert '\n' not in str(e.value)

def test_a_named_dataset_is_read_from_its_folder(monkeypatch, tmp_path):
    _folder(tmp_path/'mnist_png', 'training', ['0', '1'], mode='L')            # fastai's layout of URLs.MNIST, extracted
    _folder(tmp_path/'mnist_png', 'testing', ['0', '1'], n=1, mode='L')
    monkeypatch.setenv('FASTGAN_STUDY_DATA', str(tmp_path))
    s = data.load_images('mnist', size=16)
    assert s.images.shape == (6, 1, 16, 16) and s.vocab == ['0', '1']
    assert len(data.load_images('mnist', size=16, split='test')) == 2
