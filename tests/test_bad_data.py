"Bad data: corrupt, empty and foreign files in folders, mixed image modes, broken .npz files, sets too small for a batch, and a fuzz loop."
import io, time, warnings
import numpy as np, pytest, torch
from PIL import Image
from conftest import cli
from fastgan_study.core import FastGANError
from fastai.data.transforms import get_image_files
from fastgan_study.data import Crappifier, crappify_folder, gan_dls, load_images, npz_images, pair_dls

pytestmark = pytest.mark.usefixtures('one_thread')

def _png(a, fmt='PNG', **kw):
    "The bytes of array or image `a` saved as `fmt`."
    buf = io.BytesIO(); (a if isinstance(a, Image.Image) else Image.fromarray(a)).save(buf, fmt, **kw); return buf.getvalue()

def _load(*args, **kw):
    "load_images, recording every warning raised: (ImageSet, warnings)."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        s = load_images(*args, **kw)
    return s, w

def _fails(f, *parts):
    "`f()` raises a one-line FastGANError containing each of `parts`; returns the message."
    with pytest.raises(FastGANError) as e: f()
    msg = str(e.value)
    assert '\n' not in msg and all(p in msg for p in parts), msg
    return msg

def _digit_folder(root, n=5, classes=('a', 'b')):
    for c in classes:
        (root/c).mkdir(parents=True, exist_ok=True)
        for i in range(n): Image.fromarray(np.full((8, 8), 20 * i + 10, np.uint8)).save(root/c/f'{i}.png')
    return root

# --- folders with bad files ---------------------------------------------------------------------------------------------

def test_bad_files_are_skipped_with_one_warning(tmp_path):
    d = _digit_folder(tmp_path/'imgs')
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    (d/'a'/'half.png').write_bytes(_png(rgb)[:len(_png(rgb)) // 2])              # a copy cut in half
    (d/'a'/'half.jpg').write_bytes(_png(rgb, 'JPEG')[:len(_png(rgb, 'JPEG')) // 2])
    (d/'b'/'zero.png').write_bytes(b'')
    (d/'b'/'x.png').write_text('I am text, not a PNG')
    (d/'notes.txt').write_text('scanned 1998'); (d/'b'/'labels.csv').write_text('file,label\n')
    for hidden in ('.DS_Store', 'Thumbs.db', 'desktop.ini', 'a/._0.png', '.ipynb_checkpoints/3.png'):
        (d/hidden).parent.mkdir(exist_ok=True); (d/hidden).write_bytes(b'\0\x05\x16\x07junk')
    s, w = _load(d, size=8)
    assert len(s) == 10 and s.images.dtype == torch.uint8 and s.vocab == ['a', 'b']
    assert len(w) == 1                           # ours, and nothing from Pillow
    msg = str(w[0].message)
    assert 'skipped 6 of 16 files' in msg and '\n' not in msg, msg
    for part in ('2 not images (b/labels.csv, notes.txt)', '3 unreadable', 'a/half.jpg', 'a/half.png', 'b/x.png', '1 empty (b/zero.png)'):
        assert part in msg, (part, msg)
    for quiet in ('DS_Store', 'Thumbs', 'desktop', '._0', 'checkpoints'): assert quiet not in msg
    assert sorted(n for n, *_ in s.skipped) == ['a/half.jpg', 'a/half.png', 'b/labels.csv', 'b/x.png', 'b/zero.png', 'notes.txt']
    # the labels still follow the folders: 5 images of each class, in their values' order
    assert (s.labels == torch.tensor([0] * 5 + [1] * 5)).all() and s.images[:5, 0, 0, 0].tolist() == [10, 30, 50, 70, 90]

def test_clean_folder_gives_no_warning(tmp_path):
    d = _digit_folder(tmp_path/'imgs')
    (d/'.DS_Store').write_bytes(b'\0'); (d/'Thumbs.db').write_bytes(b'\0')
    s, w = _load(d, size=8)
    assert len(s) == 10 and w == [] and s.skipped == []

def test_nothing_readable_names_the_folder(tmp_path):
    d = tmp_path/'junk'; (d/'a').mkdir(parents=True)
    (d/'a'/'1.png').write_text('text'); (d/'a'/'2.jpg').write_bytes(b''); (d/'readme.md').write_text('#')
    (d/'.DS_Store').write_bytes(b'\0')
    _fails(lambda: load_images(d), f'no readable images in {d}', 'skipped 3 of 3 files', 'a/1.png', 'a/2.jpg', 'readme.md')
    only_hidden = tmp_path/'hidden'; only_hidden.mkdir(); (only_hidden/'.DS_Store').write_bytes(b'\0')
    _fails(lambda: load_images(only_hidden), f'no images found in {only_hidden}')

def test_skipped_files_are_named_when_the_set_is_too_small(tmp_path):
    d = _digit_folder(tmp_path/'imgs', n=3)
    for i in range(4): (d/'a'/f'cut{i}.png').write_bytes(b'\x89PNG\r\n')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        _fails(lambda: gan_dls(d, size=8, bs=8, device='cpu'), 'has 6 images, fewer than one batch: use bs ≤ 6', '--bs',
               '4 unreadable image files were skipped (a/cut0.png, a/cut1.png, a/cut2.png, … (4 in all)): remove or replace them')

def test_crappified_copy_keeps_the_names_of_the_files_read(tmp_path):
    d = _digit_folder(tmp_path/'imgs', n=2)
    (d/'a'/'1b.png').write_bytes(b''); (d/'b'/'0a.jpg').write_text('text')      # sorted between the good files
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out = crappify_folder(d, tmp_path/'crappy', Crappifier(scale=2, quality=None, text=False), size=8)
        clean = load_images(d, size=8)
    assert sorted(f.relative_to(out).as_posix() for f in get_image_files(out)) == ['a/0.png', 'a/1.png', 'b/0.png', 'b/1.png']
    got = load_images(out, size=8)
    assert got.vocab == clean.vocab and (got.labels == clean.labels).all()
    assert (got.images.float() - clean.images.float()).abs().mean() < 8     # each name holds the damaged copy of its own image

# --- mixed modes and sizes ----------------------------------------------------------------------------------------------

def _mixed_folder(d):
    "One uniform image per mode, in several sizes; returns the first pixel each should give as (gray, rgb)."
    d.mkdir()
    Image.new('L', (8, 8), 77).save(d/'01_L.png')
    Image.new('1', (9, 7), 1).save(d/'02_1.png')
    Image.new('RGB', (10, 10), (200, 100, 50)).save(d/'03_RGB.png')
    Image.new('RGBA', (12, 8), (200, 100, 50, 0)).save(d/'04_RGBA_clear.png')          # invisible: black
    Image.new('RGBA', (8, 8), (255, 255, 255, 51)).save(d/'05_RGBA_faint.png')         # white at 20%: 51
    Image.new('LA', (6, 6), (240, 128)).save(d/'06_LA.png')                            # 240 at 50%: 120
    pal = Image.new('P', (8, 8), 2); pal.putpalette([0, 0, 0, 9, 9, 9, 10, 200, 30]); pal.save(d/'07_P.png')
    gif = Image.new('P', (8, 8), 1); gif.putpalette([0, 0, 0, 90, 90, 90]); gif.save(d/'08_P_gray.gif')
    tp = Image.new('P', (8, 8), 1); tp.putpalette([0, 0, 0, 250, 0, 0]); tp.save(d/'09_P_transparent.png', transparency=1)
    Image.fromarray(np.full((8, 8), 32896, np.uint16)).save(d/'10_I16.png')           # 16-bit: 32896 / 257 = 128
    Image.new('CMYK', (8, 8), (0, 255, 255, 0)).save(d/'11_CMYK.tif')                  # red
    Image.new('CMYK', (8, 8), (0, 0, 0, 255)).save(d/'12_CMYK.jpg', quality=95)        # black, as a JPEG
    rgb = [(77,) * 3, (255,) * 3, (200, 100, 50), (0,) * 3, (51,) * 3, (120,) * 3, (10, 200, 30), (90,) * 3, (0,) * 3,
           (128,) * 3, (255, 0, 0), (0,) * 3]
    return rgb

def test_mixed_modes_and_sizes_become_one_rgb_tensor(tmp_path):
    want = torch.tensor(_mixed_folder(tmp_path/'m'), dtype=torch.uint8)
    s, w = _load(tmp_path/'m', size=4)
    assert w == [] and s.images.shape == (12, 3, 4, 4) and s.images.dtype == torch.uint8
    assert (s.images == s.images[:, :, :1, :1]).all()             # uniform images stay uniform through crop and resize
    assert (s.images[:, :, 0, 0].int() - want.int()).abs().max() <= 2, s.images[:, :, 0, 0]   # JPEG may move black by a step or two
    assert torch.equal(s.images[:11, :, 0, 0], want[:11])        # lossless files exactly

def test_mixed_modes_to_grayscale(tmp_path):
    want = torch.tensor(_mixed_folder(tmp_path/'m'), dtype=torch.float32)
    luma = (want * torch.tensor([.299, .587, .114])).sum(1).round()
    s = load_images(tmp_path/'m', size=6, n_channels=1)
    assert s.images.shape == (12, 1, 6, 6)
    assert torch.equal(s.images[:11, 0, 0, 0].float(), luma[:11]) and abs(int(s.images[11, 0, 0, 0]) - luma[11]) <= 2   # the JPEG within 2

def test_channels_follow_the_images_when_not_given(tmp_path):
    (tmp_path/'gray').mkdir()
    Image.new('L', (8, 8), 5).save(tmp_path/'gray'/'a.png')
    gif = Image.new('P', (8, 8), 1); gif.putpalette([0, 0, 0, 90, 90, 90]); gif.save(tmp_path/'gray'/'b.gif')
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path/'gray'/'c.png')
    g = load_images(tmp_path/'gray', size=8)
    assert g.images.shape == (3, 1, 8, 8) and g.images[:, 0, 0, 0].tolist() == [5, 90, 255]
    Image.new('RGB', (8, 8), (1, 2, 3)).save(tmp_path/'gray'/'d.png')        # one colour image makes the set RGB
    c = load_images(tmp_path/'gray', size=8)
    assert c.images.shape == (4, 3, 8, 8) and c.images[:, :, 0, 0].tolist() == [[5] * 3, [90] * 3, [255] * 3, [1, 2, 3]]

def test_exif_orientation_is_applied(tmp_path):
    (tmp_path/'o').mkdir()
    a = np.zeros((8, 8), np.uint8); a[:, :4] = 255                           # left half white
    exif = Image.Exif(); exif[0x0112] = 3                                     # 'rotate 180° to display'
    Image.fromarray(a).save(tmp_path/'o'/'photo.png', exif=exif)
    x = load_images(tmp_path/'o', size=None).images[0, 0]
    assert (x[:, 4:] == 255).all() and (x[:, :4] == 0).all()

def test_mixed_sizes_without_a_size_name_two_files(tmp_path):
    (tmp_path/'s').mkdir()
    Image.new('L', (8, 8)).save(tmp_path/'s'/'a.png'); Image.new('L', (8, 12)).save(tmp_path/'s'/'b.png'); Image.new('L', (6, 6)).save(tmp_path/'s'/'c.png')
    assert load_images(tmp_path/'s', size=5).images.shape == (3, 1, 5, 5)
    _fails(lambda: load_images(tmp_path/'s', size=None), 'images differ in size', 'c.png is 6×6', 'a.png is 8×8', 'pass a size')

# --- too small for one batch --------------------------------------------------------------------------------------------

def test_fewer_images_than_a_batch_is_refused(tmp_path):
    d = _digit_folder(tmp_path/'imgs', n=4)
    _fails(lambda: gan_dls(d, size=8, bs=9, device='cpu'), f'{d} has 8 images, fewer than one batch: use bs ≤ 8 (--bs')
    assert len(gan_dls(d, size=8, bs=8, device='cpu').train) == 1          # exactly one batch is enough
    _fails(lambda: gan_dls('digits', size=8, bs=200, classes='7', device='cpu'), 'has 179 images, fewer than one batch: use bs ≤ 179')

def test_pair_dls_with_fewer_training_images_than_a_batch(tmp_path):
    d = _digit_folder(tmp_path/'imgs', n=5)          # 10 images, 2 held out for validation
    crap = Crappifier(scale=2, quality=None, text=False)
    _fails(lambda: pair_dls(d, size=8, bs=9, crappifier=crap, device='cpu'), 'has 8 training images (of 10), fewer than one batch: use bs ≤ 8',
           'or a smaller valid_pct')
    dls = pair_dls(d, size=8, bs=8, crappifier=crap, device='cpu')
    assert len(dls.train) == 1 and dls.one_batch()[0].shape == (8, 1, 8, 8)
    _fails(lambda: pair_dls(d, size=8, bs=0, crappifier=crap), 'bs must be at least 1')

# --- class filters ------------------------------------------------------------------------------------------------------

def test_class_filter_matching_nothing_lists_the_classes(tmp_path):
    _fails(lambda: load_images('digits', classes=['11']), 'class 11 not in digits: its classes are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9')
    _fails(lambda: load_images('digits', classes=['7', '11', 'x']), 'classes 11, x not in digits')   # one typo is not silently dropped
    d = _digit_folder(tmp_path/'imgs', classes=('cat', 'dog'))
    _fails(lambda: gan_dls(d, classes='horse'), 'class horse not in', 'its classes are cat, dog')
    assert len(load_images(d, classes=['dog'])) == 5

# --- .npz files ---------------------------------------------------------------------------------------------------------

def test_npz_without_images_names_its_keys(tmp_path):
    np.savez(tmp_path/'a.npz', images=np.zeros((2, 8, 8)), targets=np.zeros(2))
    _fails(lambda: load_images(tmp_path/'a.npz'), f"{tmp_path/'a.npz'} has no array 'x' or 'x_train' (it has images, targets)", 'numpy.savez')
    np.savez(tmp_path/'k.npz', x_train=np.zeros((2, 8, 8), np.uint8), y_train=np.zeros(2))
    _fails(lambda: load_images(tmp_path/'k.npz', split='test'), "has no array 'x' or 'x_test' (it has x_train, y_train)")
    np.savez(tmp_path/'e.npz')
    _fails(lambda: load_images(tmp_path/'e.npz'), "(it has none)")

@pytest.mark.parametrize('name,x,want', [
    ('nhw_uint8', np.full((3, 8, 8), 200, np.uint8), [200]),
    ('nhwc_unit_float', np.full((3, 8, 8, 3), 0.5, np.float32), [128] * 3),
    ('nchw_signed_float', np.full((3, 3, 8, 8), -1, np.float64), [0] * 3),
    ('nhwc1_bytes_as_float', np.full((3, 8, 8, 1), 254., np.float32), [254]),
    ('nhw_int64_bytes', np.full((3, 8, 8), 17, np.int64), [17]),
    ('nhw_uint16', np.full((3, 8, 8), 65535, np.uint16), [255]),
    ('nhw_bool', np.ones((3, 8, 8), bool), [255]),
    ('nhwc_rgba', np.concatenate([np.full((3, 8, 8, 3), 200, np.uint8), np.full((3, 8, 8, 1), 51, np.uint8)], -1), [40] * 3),
    ('nchw_gray_alpha', np.stack([np.full((3, 8, 8), 100, np.uint8), np.zeros((3, 8, 8), np.uint8)], 1), [0])])
def test_npz_layouts_and_ranges(tmp_path, name, x, want):
    np.savez(tmp_path/f'{name}.npz', x=x, y=np.array([0., 1., 1.]))
    s = npz_images(tmp_path/f'{name}.npz')
    assert s.images.dtype == torch.uint8 and s.images.shape == (3, len(want), 8, 8)
    assert s.images[:, :, 0, 0].tolist() == [want] * 3 and s.vocab == ['0', '1']    # float labels 0., 1. are classes '0', '1'
    assert load_images(tmp_path/f'{name}.npz', size=4, n_channels=3).images.shape == (3, 3, 4, 4)

@pytest.mark.parametrize('x,y,msg', [
    (np.zeros((2, 8, 8, 8, 3)), None, 'images must be N×H×W, N×H×W×C or N×C×H×W, got shape (2, 8, 8, 8, 3)'),
    (np.zeros(64), None, 'got shape (64,)'),
    (np.zeros((2, 8, 8, 7)), None, 'no axis of 1 to 4 channels in images of shape (2, 8, 8, 7)'),
    (np.zeros((0, 8, 8), np.uint8), None, 'holds no images'),
    (np.full((2, 8, 8), 300.5), None, 'pixel values span [300.5, 300.5]'),
    (np.full((2, 8, 8), -3.), None, 'pixel values span [-3, -3]'),
    (np.full((2, 8, 8), 70000), None, 'pixel values span [70000, 70000]'),
    (np.array([np.nan, 0.5] * 64).reshape(2, 8, 8), None, 'NaN or infinite'),
    (np.array(['a'] * 128).reshape(2, 8, 8), None, 'images must be numbers, got an array of <U1'),
    (np.zeros((2, 8, 8), np.uint8), np.zeros(3), 'y has shape (3,) for 2 images: give one label per image'),
    (np.zeros((2, 8, 8), np.uint8), np.eye(2), 'y has shape (2, 2) for 2 images')])
def test_npz_bad_arrays_are_one_line(tmp_path, x, y, msg):
    np.savez(tmp_path/'bad.npz', x=x, **({} if y is None else dict(y=y)))
    _fails(lambda: load_images(tmp_path/'bad.npz'), str(tmp_path/'bad.npz'), msg)

def test_corrupt_npz_files_are_one_line(tmp_path):
    good = tmp_path/'good.npz'; np.savez_compressed(good, x=np.random.default_rng(0).integers(0, 256, (50, 8, 8), dtype=np.uint8))
    raw = good.read_bytes()
    (tmp_path/'random.npz').write_bytes(np.random.default_rng(1).bytes(500))
    (tmp_path/'half.npz').write_bytes(raw[:len(raw) // 2])
    (tmp_path/'empty.npz').write_bytes(b'')
    np.save(tmp_path/'array.npy', np.zeros((2, 8, 8))); (tmp_path/'array.npy').rename(tmp_path/'array.npz')
    for f in ('random.npz', 'half.npz', 'empty.npz', 'array.npz'):
        _fails(lambda: load_images(tmp_path/f), f"{tmp_path/f} is not an .npz file", 'numpy.savez')
    flipped = bytearray(raw); flipped[len(raw) // 3] ^= 0xFF                      # damaged inside the compressed data
    (tmp_path/'flipped.npz').write_bytes(bytes(flipped))
    _fails(lambda: load_images(tmp_path/'flipped.npz'), f"cannot read {tmp_path/'flipped.npz'}")
    np.savez(tmp_path/'objects.npz', x=np.array([None, 1], dtype=object))    # pickled Python objects are never loaded
    _fails(lambda: load_images(tmp_path/'objects.npz'), f"cannot read {tmp_path/'objects.npz'}", 'ValueError')
    np.save(tmp_path/'plain.npy', np.zeros((2, 8, 8)))
    _fails(lambda: load_images(tmp_path/'plain.npy'), 'plain.npy is a file but not an .npz archive')

# --- fuzz ---------------------------------------------------------------------------------------------------------------

GRAY, COLOUR = ('1', 'L', 'LA', 'I;16', 'F'), ('RGB', 'RGBA', 'P', 'CMYK')
FORMATS = {'1': ('png', 'bmp', 'gif', 'tif'), 'L': ('png', 'jpg', 'bmp', 'gif', 'tif'), 'LA': ('png', 'tif'), 'I;16': ('png', 'tif'),
           'F': ('tif',), 'RGB': ('png', 'jpg', 'bmp', 'gif', 'tif', 'webp'), 'RGBA': ('png', 'tif', 'webp'), 'P': ('png', 'gif', 'bmp'),
           'CMYK': ('jpg', 'tif')}
PIL_FORMAT = dict(png='PNG', jpg='JPEG', bmp='BMP', gif='GIF', tif='TIFF', webp='WEBP')

def _random_image(rng):
    "A random small image in a random mode and format: (bytes, extension, mode, min side)."
    mode = str(rng.choice(GRAY + COLOUR)); w, h = rng.integers(3, 14, 2)
    rgb = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    im = (Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)) if mode == 'I;16' else
          Image.fromarray(rng.random((h, w), dtype=np.float32) * 255) if mode == 'F' else rgb.convert(mode))
    ext = str(rng.choice(FORMATS[mode]))
    return _png(im, PIL_FORMAT[ext]), ext, mode, int(min(w, h))

def _decodes(b):
    "Whether Pillow can decode all of `b` (a truncated file sometimes still can, e.g. a PNG missing only its end marker)."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with Image.open(io.BytesIO(b)) as im: im.load()
        return True
    except Exception: return False

def _fuzz_case(rng, d):
    "Write a random folder of valid and corrupt files; returns what loading it must give."
    loaded, n_bad = [], 0                      # (mode, min side) of each file that must load; files that must be skipped
    for i in range(rng.integers(0, 5)):
        b, ext, mode, side = _random_image(rng)
        f = d/str(rng.choice(['a', 'b']))/f'ok{i}.{ext}'; f.parent.mkdir(parents=True, exist_ok=True); f.write_bytes(b)
        loaded.append((mode, side))
    for i in range(rng.integers(0, 4)):
        kind = rng.choice(['cut', 'random', 'zero', 'text'])
        b, ext, mode, side = _random_image(rng)
        if kind == 'cut': b = b[:rng.integers(0, len(b))]
        elif kind == 'random': b = rng.bytes(int(rng.integers(1, 300)))
        elif kind == 'zero': b = b''
        else: ext, b = 'txt', b'notes'
        f = d/str(rng.choice(['a', 'b']))/f'bad{i}.{ext}'; f.parent.mkdir(parents=True, exist_ok=True); f.write_bytes(b)
        if kind != 'text' and _decodes(b): loaded.append((mode, side))
        else: n_bad += 1
    if rng.random() < 0.3: d.mkdir(exist_ok=True); (d/'.DS_Store').write_bytes(rng.bytes(20))
    d.mkdir(exist_ok=True)
    return loaded, n_bad

def test_fuzz_folders_load_or_fail_cleanly(tmp_path):
    "Random folders of valid and broken files: every load gives a valid ImageSet or a one-line FastGANError, never another exception."
    rng, t0, n, outcomes = np.random.default_rng(2024), time.perf_counter(), 300, dict(loaded=0, refused=0)
    for case in range(n):
        d = tmp_path/f'case{case}'
        loaded, n_bad = _fuzz_case(rng, d)
        size, n_channels = rng.choice([4, 8, None], p=[.45, .45, .1]), rng.choice([None, 1, 3])
        size = None if size is None else int(size)
        n_channels = None if n_channels is None else int(n_channels)
        same_side = len({side for _, side in loaded}) <= 1
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always')
                s = load_images(d, size=size, n_channels=n_channels)
        except FastGANError as e:
            assert '\n' not in str(e), (case, str(e))
            assert not loaded or (size is None and not same_side), (case, loaded, str(e))
            outcomes['refused'] += 1
            continue
        except Exception as e: pytest.fail(f"case {case}: {e.__class__.__name__}: {e} (loaded {loaded}, {n_bad} bad)")
        side = size or loaded[0][1]
        c = n_channels or (3 if any(m in COLOUR for m, _ in loaded) else 1)
        assert s.images.dtype == torch.uint8 and tuple(s.images.shape) == (len(loaded), c, side, side), (case, s.images.shape, loaded)
        assert len(s.labels) == len(loaded) and len(s.skipped) == n_bad and len(w) == (n_bad > 0), (case, s.skipped, [str(x.message) for x in w])
        outcomes['loaded'] += 1
    secs = time.perf_counter() - t0
    print(f"fuzz: {n} folders in {secs:.1f}s: {outcomes}")
    assert outcomes['loaded'] > n / 3 and outcomes['refused'] > 10      # both paths were exercised

# --- the command line ---------------------------------------------------------------------------------------------------

def _one_line_error(argv, capsys):
    "Run `fastgan_study` in this process: exit status 2 and one line on stderr, starting 'error:'."
    from fastgan_study.cli import main
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:'), lines
    return lines[0]

def test_cli_folder_with_nothing_readable(tmp_path, capsys):
    d = tmp_path/'junk'; d.mkdir(); (d/'a.png').write_text('text'); (d/'b.jpg').write_bytes(b''); (d/'.DS_Store').write_bytes(b'\0')
    msg = _one_line_error(['train', '--data', str(d), '--out', str(tmp_path/'r')], capsys)
    assert f'no readable images in {d}: skipped 2 of 2 files' in msg and 'a.png' in msg and 'b.jpg' in msg
    assert not (tmp_path/'r').exists()

@pytest.mark.slow
def test_cli_process_folder_with_nothing_readable(tmp_path):
    "As a user runs it: a real `fastgan_study` process (about 10 s of imports, hence slow)."
    d = tmp_path/'junk'; d.mkdir(); (d/'a.png').write_text('text'); (d/'b.jpg').write_bytes(b'')
    r = cli('train', '--data', d, '--out', tmp_path/'r')
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f'no readable images in {d}' in lines[0] and 'a.png' in lines[0], r.stderr
    assert not (tmp_path/'r').exists()

def test_cli_npz_without_x(tmp_path, capsys):
    np.savez(tmp_path/'a.npz', images=np.zeros((2, 8, 8)))
    assert "has no array 'x' or 'x_train' (it has images)" in _one_line_error(['train', '--data', str(tmp_path/'a.npz'), '--out', str(tmp_path/'r')], capsys)
    assert not (tmp_path/'r').exists()

def test_cli_class_filter_matching_nothing(tmp_path, capsys):
    msg = _one_line_error(['train', '--classes', '11', '--out', str(tmp_path/'r')], capsys)
    assert 'class 11 not in digits: its classes are 0, 1, 2' in msg
    assert not (tmp_path/'r').exists()

# --- more images than memory holds (issue 19) ---------------------------------------------------------------------------

def _free_memory(monkeypatch, nbytes):
    "Pretend the machine has `nbytes` of memory free."
    from fastgan_study import core
    monkeypatch.setattr(core, 'available_memory', lambda device=None: float(nbytes))

def test_resizing_beyond_memory_is_refused_before_allocating(monkeypatch):
    from fastgan_study import data
    _free_memory(monkeypatch, 16 * 2**30)                                    # a 16 GB machine: digits at 4096² are 28 GB
    interpolate = data.F.interpolate
    monkeypatch.setattr(data.F, 'interpolate', lambda *a, **k: pytest.fail('resized before the memory check'))
    msg = _fails(lambda: gan_dls('digits', size=4096, bs=64, device='cpu'), '1,797 images at 4096×4096 needs about 28.1 GB',
                 'more than this machine has free (16.0 GB): lower --size')
    monkeypatch.setattr(data.F, 'interpolate', interpolate)
    assert load_images('digits', size=64).images.shape == (1797, 1, 64, 64)   # what fits is resized

def test_rgb_expansion_beyond_memory_is_refused(monkeypatch):
    _free_memory(monkeypatch, 2**18)                                         # 1,797 × 3 × 8 × 8 bytes do not fit in 80% of 256 KB
    _fails(lambda: load_images('digits', size=None, n_channels=3), '1,797 RGB images of 8×8 needs about', 'lower --size')

def test_a_folder_beyond_the_memory_budget_is_read_from_its_map(tmp_path, monkeypatch):
    from fastgan_study import data
    d = _digit_folder(tmp_path/'imgs', n=10, classes='abcd')                  # 40 images
    want = load_images(d, size=64)
    assert not want.mapped
    _free_memory(monkeypatch, 300_000); monkeypatch.setattr(data, 'available_memory', lambda device=None: 300_000.)
    s = load_images(d, size=64)                                               # 40 × 64² bytes: more than half of 300 KB
    assert s.mapped and torch.equal(s.images, want.images)                    # not refused: decoded to disk, gathered from the map
