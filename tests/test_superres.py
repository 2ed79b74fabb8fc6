"The superres recipe: each stage on one batch, checkpoints, resuming, and PSNR/SSIM against known values."
import csv, math, shutil
from pathlib import Path
import numpy as np, pytest, torch
from fastgan_study.core import FastGANError, load_yaml
from fastgan_study.data import digits_images
from fastgan_study.superres import train_superres, load_state, load_superres, restore, psnr, ssim, STAGES

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "20 digits (ten 0s, ten 1s) as an .npz: at 32×32 with bs 16, 16 training images are one batch, 4 are held out."
    d = digits_images()
    idx = torch.cat([torch.nonzero(d.labels == c)[:10, 0] for c in (0, 1)])
    f = tmp_path_factory.mktemp('data')/'tiny.npz'
    np.savez(f, x=d.images[idx, 0].numpy(), y=d.labels[idx].numpy())
    return dict(data=str(f), size=32, bs=16, arch='regnety_002', critic_features=16, device='cpu', progress=False, score=False)

@pytest.fixture(scope='module')
def run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')/'full'
    learn = train_superres(gen_epochs=1, crit_epochs=1, gan_epochs=1, out=out, **tiny)
    return out, learn

def rows(f): return list(csv.DictReader(open(f)))

def test_each_stage_runs_one_batch(run):
    out, learn = run
    test = load_yaml(out/'config.yaml')
    assert test['status'] == 'done' and [test['stages'][s]['status'] for s in STAGES] == ['done'] * 3
    assert (test['n_images'], test['n_valid']) == (20, 4)
    assert len(rows(out/'gen_metrics.csv')) == 1 and len(rows(out/'critic_metrics.csv')) == 1
    gan = rows(out/'gan_metrics.csv')
    assert len(gan) == 1 and int(gan[0]['gen_updates']) + int(gan[0]['crit_updates']) == 1   # one batch: one update of one network
    assert (out/'samples'/'stages.png').stat().st_size > 0
    assert list(load_yaml(out/'scores.yaml')) == ['input', 'pretrained', 'gan']
    assert set(learn.scores['gan']) == {'psnr', 'ssim'}                                       # score=False: no domain FD

def test_checkpoints_are_plain_state_dicts(run):
    out, learn = run
    gen, crit, gan = (torch.load(out/f, weights_only=True) for f in ('gen_pretrained.pth', 'critic_pretrained.pth', 'gan.pth'))
    assert gen.keys() == learn.model.generator.state_dict().keys() and crit.keys() == learn.model.critic.state_dict().keys()
    assert all(torch.equal(v, learn.model.generator.state_dict()[k].cpu()) for k, v in gan['generator'].items())
    assert not all(torch.equal(v, gan['generator'][k]) for k, v in gen.items())               # the GAN stage moved the generator
    x = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    assert torch.equal(restore(load_superres(out), x), restore(learn.model.generator, x))

def test_resume_from_critic_loads_stage_1(run, tiny, tmp_path):
    out, full = run
    shutil.copytree(out, tmp_path/'r'); r = tmp_path/'r'
    before = {f: ((r/f).read_bytes(), (r/f).stat().st_mtime_ns) for f in ('gen_metrics.csv', 'gen_pretrained.pth')}
    learn = train_superres(gen_epochs=1, crit_epochs=1, gan_epochs=1, out=r, resume_from='critic', **tiny)
    assert before == {f: ((r/f).read_bytes(), (r/f).stat().st_mtime_ns) for f in before}         # stage 1 was not rerun
    cfg = load_yaml(r/'config.yaml')
    assert [cfg['stages'][s]['status'] for s in STAGES] == ['loaded', 'done', 'done'] and cfg['resume_from'] == 'critic'
    # the saved generator is stage 1's: its scores are the full run's, and stage 2 trains exactly as in the full run
    assert {k: v.value for k, v in learn.scores['pretrained'].items()} == {k: v.value for k, v in full.scores['pretrained'].items()}
    a, b = load_state(out/'critic_pretrained.pth'), load_state(r/'critic_pretrained.pth')
    assert all(torch.equal(a[k], b[k]) for k in a)

def test_resume_from_gan_loads_both(run, tiny, tmp_path):
    out, _ = run
    shutil.copytree(out, tmp_path/'r'); r = tmp_path/'r'
    mtime = (r/'critic_metrics.csv').stat().st_mtime_ns
    train_superres(gan_epochs=1, out=r, resume_from='gan', **tiny)
    assert (r/'critic_metrics.csv').stat().st_mtime_ns == mtime
    assert [load_yaml(r/'config.yaml')['stages'][s]['status'] for s in STAGES] == ['loaded', 'loaded', 'done']

def test_resume_refuses_what_it_cannot_load(run, tiny, tmp_path):
    out, _ = run
    with pytest.raises(FastGANError, match='critic_features=16, not 32'):
        train_superres(out=out, resume_from='gan', **dict(tiny, critic_features=32))
    with pytest.raises(FastGANError, match='no config.yaml'):
        train_superres(out=tmp_path/'empty', resume_from='critic', **tiny)
    with pytest.raises(FastGANError, match="did you mean 'critic'"):
        train_superres(out=out, resume_from='critc', **tiny)
    shutil.copytree(out, tmp_path/'r'); (tmp_path/'r'/'critic_pretrained.pth').unlink()
    with pytest.raises(FastGANError, match='no critic_pretrained.pth'):
        train_superres(out=tmp_path/'r', resume_from='gan', **tiny)

def test_existing_run_needs_force(run, tiny):
    out, _ = run
    with pytest.raises(FastGANError, match='--force'): train_superres(out=out, **tiny)

# PSNR and SSIM
def pattern():
    "A 3-channel 32×24 image and a damaged copy, made without random numbers (so the reference values below hold anywhere)."
    i, j = np.meshgrid(np.arange(32), np.arange(24), indexing='ij')
    x = np.stack([(np.sin(0.3 * i + c) * np.cos(0.2 * j) + 1) / 2 for c in range(3)])
    y = np.clip(x + 0.1 * np.sin(1.7 * i + 2.3 * j + np.arange(3)[:, None, None]), 0, 1)
    return torch.from_numpy(x)[None], torch.from_numpy(y)[None]

def test_identical_images():
    x = torch.rand(3, 3, 16, 16)
    assert (psnr(x, x) == math.inf).all() and torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))

def test_psnr_of_a_known_error():
    x = torch.rand(2, 1, 16, 16) * 0.5
    assert torch.allclose(psnr(x, x + 0.1), torch.full((2,), 20., dtype=torch.float64))              # MSE 0.01 → 20 dB
    assert torch.allclose(psnr(x * 255, x * 255 + 25.5, data_range=255), torch.full((2,), 20., dtype=torch.float64))

def test_ssim_matches_scikit_image():
    "Reference values from skimage 0.26 `structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=0)` and `peak_signal_noise_ratio`."
    x, y = pattern()
    assert abs(float(ssim(x, y)) - 0.8442585172868782) < 1e-9
    assert abs(float(psnr(x, y)) - 23.182414510818283) < 1e-9

def test_ssim_of_flat_images_is_the_closed_form():
    a, b, c1 = 0.2, 0.6, 0.01 ** 2                              # no variance: SSIM = luminance term only
    assert abs(float(ssim(torch.full((1, 1, 12, 12), a, dtype=torch.float64), torch.full((1, 1, 12, 12), b, dtype=torch.float64))) - (2*a*b + c1) / (a*a + b*b + c1)) < 1e-12

def test_ssim_is_symmetric_and_below_one_for_noise():
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert torch.allclose(ssim(x, noisy), ssim(noisy, x)) and (ssim(x, noisy) < 0.99).all()
    assert (ssim(x, noisy) > ssim(x, (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1))).all()

def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(FastGANError, match='at least 11×11'): ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))

# the command line
def test_cli_runs_resumes_and_refuses(tiny, tmp_path):
    from conftest import cli
    args = ['train', '--recipe', 'superres', '--data', tiny['data'], '--size', 32, '--bs', 16, '--arch', 'regnety_002',
            '--critic-features', 16, '--gen-epochs', 1, '--crit-epochs', 1, '--gan-epochs', 1, '--no-score', '--device', 'cpu',
            '--quality', 50, '--text', 'off', '--out', tmp_path/'r']
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    for st in STAGES: assert f'stage {st}: done' in r.stderr                  # progress per stage
    assert 'pretrained generator' in r.stdout and 'samples/stages.png' in r.stdout
    cfg = load_yaml(tmp_path/'r'/'config.yaml')
    assert cfg['crappifier']['quality'] == [50, 50] and cfg['crappifier']['text'] is False and cfg['status'] == 'done'
    r = cli(*args, '--resume-from', 'gan')
    assert r.returncode == 0, r.stderr
    assert 'stage generator' not in r.stderr and 'stage gan: done' in r.stderr
    r = cli(*[a if a != 50 else 'high' for a in args], '--force')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'such as 10,70' in r.stderr

def test_every_stage_runs_in_the_asked_precision(tiny, tmp_path):
    learn = train_superres(gen_epochs=1, crit_epochs=1, gan_epochs=1, out=tmp_path/'bf16', precision='bf16', **tiny)
    for l in (learn.gen_learn, learn.crit_learn, learn):
        assert [c.precision for c in l.cbs if type(c).__name__ == 'Precision'] == ['bf16']
    assert load_yaml(tmp_path/'bf16'/'config.yaml')['precision'] == 'bf16'
    assert math.isfinite(learn.scores['gan']['psnr'].value)
    with pytest.raises(FastGANError, match="unknown precision 'half'"): train_superres(out=tmp_path/'half', precision='half', **tiny)
    assert not (tmp_path/'half').exists()
