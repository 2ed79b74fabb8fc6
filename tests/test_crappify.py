"Crappification: determinism, what each kind of damage does, the copy on disk written once, and (crappified, clean) pairs."
import json
import numpy as np, pytest, torch
from PIL import Image
from fastai.data.transforms import get_image_files
from fastgan_study.core import FastGANError
from fastgan_study.data import Crappifier, crappify_folder, load_images, pair_dls

@pytest.fixture(scope='module')
def clean(): return load_images('digits', size=32).images[:24]

def _err(a, b): return (a.float() - b.float()).abs().mean().item()

def test_same_seed_same_bytes_other_seed_other_damage(clean):
    c = Crappifier(noise=0.05)
    a = c(clean)
    assert torch.equal(a, Crappifier(noise=0.05)(clean))
    assert torch.equal(a, c(clean, seed=0))
    assert not torch.equal(a, c(clean, seed=1)) and not torch.equal(a, Crappifier(noise=0.05, seed=1)(clean))

def test_subset_damaged_as_in_full_set(clean):
    c = Crappifier(noise=0.05)
    full = c(clean)
    assert torch.equal(c(clean[:5]), full[:5])
    idx = torch.tensor([17, 3, 9])
    assert torch.equal(c(clean[idx], idxs=idx), full[idx])
    assert torch.equal(c(clean[0]), full[0])          # one C×H×W image is image 0 of its set
    assert not torch.equal(c(clean[idx]), full[idx])  # without idxs, positions 0..2 seed them

@pytest.mark.parametrize('upscale,hw', [(True, 32), (False, 8)])
def test_output_dtype_range_shape(clean, upscale, hw):
    for x in (clean, clean.expand(-1, 3, -1, -1).contiguous()):
        y = Crappifier(upscale=upscale, noise=0.1)(x)
        assert y.dtype == torch.uint8 and y.shape == (len(x), x.shape[1], hw, hw)
        assert y.min() == 0 and y.max() == 255   # noise is clipped to the byte range, not wrapped

def test_lower_jpeg_quality_larger_error(clean):
    x = load_images('digits', size=32, n_channels=3).images[:24]
    x = (x.float() * torch.tensor([1., .6, .3])[:, None, None]).round().to(torch.uint8)   # coloured, so chroma is compressed too
    kw = dict(scale=1, text=False)
    errs = [_err(Crappifier(quality=q, **kw)(x), x) for q in (95, 50, 10)]
    assert errs[0] < errs[1] < errs[2] and errs[2] > 3 * errs[0], errs
    assert torch.equal(Crappifier(quality=None, **kw)(x), x)   # no JPEG, no shrinking: untouched

def test_text_and_noise_change_pixels(clean):
    kw = dict(quality=None, text=False)
    plain = Crappifier(**kw)(clean)
    text = Crappifier(quality=None, text=True)(clean)
    changed = (text != plain).flatten(1).float().mean(1)
    assert (changed > 0.01).all(), changed   # every image carries its number
    assert (text >= plain).all()             # white text only brightens
    noisy = Crappifier(noise=0.1, **kw)(clean)
    assert torch.equal(Crappifier(noise=0., **kw)(clean), plain)
    assert 0.05 * 255 < _err(noisy, plain) < 0.1 * 255   # mean |N(0, σ)| = 0.8 σ, less where clipped at 0 and 255

@pytest.mark.parametrize('kw,msg', [(dict(quality=(80, 10)), 'low ≤ high'), (dict(quality=(10, 101)), '≤ 100'),
                                    (dict(quality=(0, 50)), '1 ≤ low'), (dict(scale=0.5), 'scale must be at least 1'),
                                    (dict(noise=-0.1), 'noise must be')])
def test_bad_settings_refused(kw, msg):
    with pytest.raises(FastGANError, match=msg): Crappifier(**kw)

def test_bad_images_refused(clean):
    with pytest.raises(FastGANError, match='uint8 images'): Crappifier()(clean.float())

def _mtimes(d): return {f: f.stat().st_mtime_ns for f in get_image_files(d)}

def test_folder_written_once_rewritten_when_settings_change(tmp_path):
    src = tmp_path/'src.npz'
    x = load_images('digits', size=16).images[:12, 0].numpy()
    np.savez(src, x=x, y=np.arange(12) % 3)
    dst = crappify_folder(src, tmp_path/'bad', Crappifier(seed=1))
    names = sorted(str(f.relative_to(dst)) for f in get_image_files(dst))
    assert names == sorted(f'{i % 3}/{i:05d}.png' for i in range(12))
    before = _mtimes(dst)
    assert crappify_folder(src, dst, Crappifier(seed=1)) == dst and _mtimes(dst) == before
    bad = Crappifier(seed=1)(torch.from_numpy(x)[:, None])
    for i in range(12): assert np.array_equal(np.asarray(Image.open(dst/f'{i % 3}/{i:05d}.png')), bad[i, 0].numpy())   # PNG is lossless
    crappify_folder(src, dst, Crappifier(seed=2))
    after = _mtimes(dst)
    assert after.keys() == before.keys() and all(after[f] != before[f] for f in after)
    assert json.loads((dst/'crappify.json').read_text())['crappifier']['seed'] == 2

def test_folder_mirrors_names_and_redoes_interrupted_copy(tmp_path):
    for c in ('cat', 'dog'):
        (tmp_path/'src'/c).mkdir(parents=True)
        for i in range(3): Image.new('RGB', (20, 20), (i * 80, 40, 200)).save(tmp_path/'src'/c/f'img{i}.jpg')
    dst = crappify_folder(tmp_path/'src', tmp_path/'bad', size=16)
    assert sorted(str(f.relative_to(dst)) for f in get_image_files(dst)) == [f'{c}/img{i}.png' for c in ('cat', 'dog') for i in range(3)]
    (dst/'dog'/'img2.png').unlink()   # an interrupted or damaged copy is written again
    crappify_folder(tmp_path/'src', dst, size=16)
    assert (dst/'dog'/'img2.png').exists()
    with pytest.raises(FastGANError, match='did not write'): crappify_folder(tmp_path/'src', tmp_path/'src'/'cat')

def test_pair_dls_pairs_and_disjoint_split():
    dls = pair_dls('digits', size=16, bs=8, classes=['1', '7'], crappifier=Crappifier(scale=2), device='cpu')
    n = len(dls.images)
    xb, yb = dls.one_batch()
    assert xb.shape == yb.shape == (8, 1, 16, 16) and xb.dtype == yb.dtype == torch.float32
    assert -1 <= xb.min() and xb.max() <= 1 and yb.min() == -1 and yb.max() == 1
    train, valid = set(dls.train_ds.items), set(dls.valid_ds.items)
    assert not train & valid and len(train | valid) == n and len(valid) == int(0.2 * n)
    assert set(dls.valid_idx.tolist()) == valid
    assert dls.crappy.dtype == torch.uint8 and dls.crappy.shape == dls.images.images.shape
    xv, yv = dls.valid.one_batch()   # inputs are the stored crappified images, targets the clean ones, same order
    assert torch.equal(xv, dls.crappy[dls.valid_idx[:8]].float() / 127.5 - 1)
    assert torch.equal(yv, dls.images.images[dls.valid_idx[:8]].float() / 127.5 - 1)
    x1, _ = dls.train.one_batch(); x2, _ = dls.train.one_batch()
    assert not torch.equal(x1, x2)   # shuffled, but every epoch draws from the same crappified images
    assert torch.equal(pair_dls('digits', size=16, bs=8, classes=['1', '7'], crappifier=Crappifier(scale=2), device='cpu').valid_idx,
                       dls.valid_idx)

def test_pair_dls_refusals():
    with pytest.raises(FastGANError, match='fewer than one batch: use bs ≤ 144'):
        pair_dls('digits', size=16, bs=200, classes='7', device='cpu')
    with pytest.raises(FastGANError, match='upscale=True'): pair_dls('digits', size=16, crappifier=Crappifier(upscale=False))
