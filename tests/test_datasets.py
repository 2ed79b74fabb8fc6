"Named data sets on disk in their real layouts (CelebA and Fashion-MNIST as torchvision writes them, fastai's extracted archives): read without a network, and one-line errors when a set is absent."
import socket, struct, time
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from fastai.data.external import fastai_cfg, fastai_path
from fastgan_study.core import FastGANError
from fastgan_study.datasets import DATASETS, DATASET_NAMES, URL_NAMES, celeba_files, data_root, dataset_present, get_dataset

# the 40 names of the second line of CelebA's list_attr_celeba.txt, in its order
ATTRS = ('5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair '
         'Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache '
         'Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair '
         'Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young').split()
FASHION = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

@pytest.fixture
def tries(monkeypatch):
    "No network: every connection attempt is recorded and refused at once."
    made = []
    def refuse(*args, **kwargs):
        made.append(args[-1] if args else kwargs)
        raise OSError('network cut by the test')
    monkeypatch.setattr(socket, 'getaddrinfo', refuse)
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    return made

@pytest.fixture
def root(tmp_path, monkeypatch, tries):
    "An empty data folder for the named sets, on a machine without a network."
    monkeypatch.setenv('FASTGAN_STUDY_DATA', str(tmp_path))
    return tmp_path

def write_celeba(d:Path, parts, seed=0):
    "torchvision's CelebA layout: 218×178 JPEGs in img_align_celeba/, the two list files with their real headers; returns the ±1 attributes."
    (d/'img_align_celeba').mkdir(parents=True)
    rng = np.random.default_rng(seed)
    a = rng.choice([-1, 1], (len(parts), 40))
    names = [f'{i + 1:06d}.jpg' for i in range(len(parts))]
    for i, n in enumerate(names): Image.new('RGB', (178, 218), (i * 20, 100, 200 - i * 20)).save(d/'img_align_celeba'/n)
    (d/'list_eval_partition.txt').write_text(''.join(f'{n} {p}\n' for n, p in zip(names, parts)))
    rows = ''.join(n + ''.join(f' {v:2d}' for v in r) + '\n' for n, r in zip(names, a))   # as published: '000001.jpg -1  1  1 -1 …'
    (d/'list_attr_celeba.txt').write_text(f'{len(names)}\n' + ' '.join(ATTRS) + ' \n' + rows)
    return a

def write_idx(path:Path, a:np.ndarray):
    "A uint8 array as an IDX file, the format torchvision's MNIST readers parse: magic 0x0000080N, big-endian int32 sizes, the bytes."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack('>I', 0x800 + a.ndim) + struct.pack(f'>{a.ndim}I', *a.shape) + a.astype(np.uint8).tobytes())

def write_fashion(raw:Path, n_train=12, n_test=5, seed=0):
    rng, out = np.random.default_rng(seed), {}
    for split, n in (('train', n_train), ('t10k', n_test)):
        x, y = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        write_idx(raw/f'{split}-images-idx3-ubyte', x); write_idx(raw/f'{split}-labels-idx1-ubyte', y)
        out[split] = x, y
    return out

def write_folders(d:Path, splits:dict):
    "fastai's extracted layout: d/<split>/<class>/<i>.png."
    for split, classes in splits.items():
        for c, n in classes.items():
            (d/split/c).mkdir(parents=True)
            for i in range(n): Image.new('L', (28, 28), i * 30).save(d/split/c/f'{i}.png')

def test_celeba_files_of_each_split_with_their_attributes(root, tries):
    parts = [0, 0, 1, 0, 2, 2, 0, 1]
    a = write_celeba(root/'celeba', parts)
    assert dataset_present('celeba')
    for split, k in (('train', 0), ('valid', 1), ('test', 2), ('all', None)):
        c = get_dataset('celeba', split)
        idx = [i for i, p in enumerate(parts) if k is None or p == k]
        assert c['kind'] == 'files' and c['vocab'] == ['celeba'] and c['attr_names'] == ATTRS
        assert [f.name for f in c['files']] == [f'{i + 1:06d}.jpg' for i in idx]
        assert all(f.parent == root/'celeba'/'img_align_celeba' and f.is_file() for f in c['files'])
        assert c['attrs'].dtype == np.uint8 and c['attrs'].shape == (len(idx), 40)
        np.testing.assert_array_equal(c['attrs'], (a[idx] + 1) // 2)          # −1/1 → 0/1, rows matched to their images
        assert c['labels'].dtype == np.int64 and (c['labels'] == 0).all() and len(c['labels']) == len(idx)
    assert Image.open(get_dataset('celeba')['files'][0]).size == (178, 218)
    assert tries == []

def test_celeba_attribute_rows_are_matched_by_image_name(root):
    "An attribute file in another order than the partition file still gives each image its own row."
    a = write_celeba(root/'celeba', [0, 0, 0])
    f = root/'celeba'/'list_attr_celeba.txt'
    head, rows = f.read_text().splitlines()[:2], f.read_text().splitlines()[2:]
    f.write_text('\n'.join(head + rows[::-1]) + '\n')
    np.testing.assert_array_equal(get_dataset('celeba')['attrs'], (a + 1) // 2)

def test_celeba_with_images_missing_fails_in_one_line(root):
    write_celeba(root/'celeba', [0, 0, 0, 1])
    (root/'celeba'/'img_align_celeba'/'000002.jpg').unlink()
    with pytest.raises(FastGANError) as e: get_dataset('celeba')
    msg = str(e.value)
    assert '1 of the 3 train images are missing' in msg and '000002.jpg' in msg and len(msg.splitlines()) == 1
    assert len(get_dataset('celeba', 'valid')['files']) == 1      # the other splits are whole

def test_damaged_files_fail_in_one_line(root):
    write_celeba(root/'celeba', [0, 0])
    f = root/'celeba'/'list_attr_celeba.txt'
    lines = f.read_text().splitlines()
    f.write_text('\n'.join(lines[:3] + [lines[3].rsplit(' ', 1)[0]]) + '\n')           # a row cut short
    with pytest.raises(FastGANError, match=r'list_attr_celeba.txt is not a CelebA list .*: download it again$'): get_dataset('celeba')
    f.write_text('\n'.join([lines[0], ' '.join(ATTRS[:39])] + lines[2:]) + '\n')      # a name missing from the header
    with pytest.raises(FastGANError, match='names 39 attributes but its rows hold 40 values'): get_dataset('celeba')
    write_fashion(root/'FashionMNIST'/'raw')
    img = root/'FashionMNIST'/'raw'/'train-images-idx3-ubyte'
    img.write_bytes(img.read_bytes()[:100])                                              # cut short
    with pytest.raises(FastGANError) as e: get_dataset('fashion_mnist')
    assert str(e.value).startswith('cannot read Fashion-MNIST in') and len(str(e.value).splitlines()) == 1

def test_fashion_mnist_arrays_from_the_raw_files(root, tries):
    data = write_fashion(root/'FashionMNIST'/'raw')
    assert dataset_present('fashion_mnist')
    for split, key, n in (('train', 'train', 12), ('test', 't10k', 5)):
        f = get_dataset('fashion_mnist', split)
        assert f['kind'] == 'arrays' and f['vocab'] == FASHION
        assert f['images'].dtype == np.uint8 and f['images'].shape == (n, 28, 28)
        np.testing.assert_array_equal(f['images'], data[key][0])
        assert f['labels'].dtype == np.int64
        np.testing.assert_array_equal(f['labels'], data[key][1])
    assert tries == []       # torchvision found its four files: no download was tried

def test_fastai_sets_in_place_are_returned_without_a_download(root, tries):
    write_folders(root/'mnist_png', dict(training={'0': 2, '7': 1}, testing={'0': 1}))
    write_folders(root/'cifar10', dict(train={'cat': 2, 'dog': 2}, test={'cat': 1}))
    for name, folder, split in (('mnist', 'mnist_png', 'training'), ('cifar10', 'cifar10', 'train')):
        assert dataset_present(name)
        m = get_dataset(name)
        assert m == dict(kind='folder', path=root/folder)
        assert sorted(p.name for p in (m['path']/split).iterdir()) == sorted(p.name for p in (root/folder/split).iterdir())
    assert not dataset_present('lsun_bedroom') and tries == []

@pytest.mark.parametrize('name, files', [('celeba', 'list_attr_celeba.txt'), ('fashion_mnist', 't10k-labels-idx1-ubyte'),
                                         ('mnist', 'mnist_png.tgz'), ('lsun_bedroom', 'bedroom.tgz')])
def test_absent_sets_fail_offline_in_one_line(root, name, files):
    "No network: the download fails at once and the error says which set, why, where its files go, and the way out."
    t = time.time()
    with pytest.raises(FastGANError) as e: get_dataset(name)
    msg = str(e.value)
    assert time.time() - t < 20
    assert len(msg.splitlines()) == 1 and msg.startswith(f'{name} is not in {root}')
    assert 'download failed' in msg and files in msg and msg.endswith('or pass a folder of images: --data PATH')
    assert 'Traceback' not in msg and len(msg) < 600
    assert not dataset_present(name)

def test_fastai_downloads_are_tried_where_the_data_goes(root, tries):
    "The fastai download goes through the network (refused here) and would extract into FASTGAN_STUDY_DATA."
    with pytest.raises(FastGANError, match=r'download failed: URLError'): get_dataset('mnist_tiny')
    assert tries, "no connection was attempted"
    assert (root/'archive').is_dir()       # fastai's downloader keeps its archives beside the data

def test_downloads_off_tries_no_network(root, tries):
    for name in ('celeba', 'fashion_mnist', 'cifar10'):
        with pytest.raises(FastGANError, match=r'not downloaded; downloads are off\): .*--data PATH$'): get_dataset(name, download=False)
    assert tries == []

def test_a_half_present_set_counts_as_absent(root):
    write_fashion(root/'FashionMNIST'/'raw')
    (root/'FashionMNIST'/'raw'/'t10k-images-idx3-ubyte').unlink()
    (root/'celeba'/'img_align_celeba').mkdir(parents=True)
    assert not dataset_present('fashion_mnist') and not dataset_present('celeba')
    with pytest.raises(FastGANError, match='t10k-images-idx3-ubyte'): get_dataset('fashion_mnist', download=False)

def test_unknown_names_and_splits_list_the_valid_ones(root, tries):
    with pytest.raises(FastGANError) as e: get_dataset('celebA')
    assert "did you mean 'celeba'?" in str(e.value) and all(n in str(e.value) for n in ('fashion_mnist', 'lsun_bedroom', 'cifar10', 'mnist'))
    # a wrong split is refused before anything is downloaded
    with pytest.raises(FastGANError, match=r"unknown celeba split 'validation': did you mean 'valid'\?"): get_dataset('celeba', 'validation')
    with pytest.raises(FastGANError, match=r"unknown fashion_mnist split 'valid'.*choose one of train, test"): get_dataset('fashion_mnist', 'valid')
    assert tries == [] and not any(root.iterdir())
    with pytest.raises(FastGANError, match='unknown data set'): dataset_present('imagenet')
    write_celeba(root/'celeba', [0])
    with pytest.raises(FastGANError, match=r"unknown CelebA split 'val'"): celeba_files(root/'celeba', 'val')

def test_data_root_is_fastai_data_folder_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv('FASTGAN_STUDY_DATA', raising=False)
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'fastai'))
    fastai_cfg.cache_clear()                 # fastai reads FASTAI_HOME once per process
    try: assert data_root() == fastai_path('data') == tmp_path/'fastai'/'data'
    finally: fastai_cfg.cache_clear()
    monkeypatch.setenv('FASTGAN_STUDY_DATA', '~/somewhere')
    assert data_root() == Path.home()/'somewhere'

def test_the_catalogue_is_complete_and_consistent():
    keys = {'n_train', 'n_valid', 'n_test', 'channels', 'size', 'classes', 'attributes', 'gb', 'url'}
    assert {'celeba', 'lsun_bedroom', 'cifar10', 'mnist', 'fashion_mnist'} <= set(DATASETS)
    for name, d in DATASETS.items():
        assert set(d) == keys, name
        assert d['n_train'] > 0 and d['channels'] in (1, 3) and d['size'] > 0 and d['classes'] >= 1 and d['url'].startswith('http')
        assert (d['attributes'] > 0) == (name == 'celeba')
    c = DATASETS['celeba']
    assert c['n_train'] + c['n_valid'] + c['n_test'] == 202_599
    assert set(DATASET_NAMES) == set(DATASETS) | set(URL_NAMES)
