"The speed switches: no per-batch host reads in a whole run's fit, and precision / memory-format modes that train through the CLI."
import io, math
import pytest, torch
import fastai.learner, fastai.vision.gan, fastai.torch_core, fastai.callback.core
from rich.console import Console
from conftest import cli, TINY
from fastgan_study.speed import host_reads
import fastgan_study.callbacks, fastgan_study.speed, fastgan_study.losses, fastgan_study.runs, fastgan_study.learner as L
from fastgan_study.core import set_seed, load_yaml
from fastgan_study.data import gan_dls
from fastgan_study.callbacks import RichProgress, DivergenceGuard
from fastgan_study.runs import load_run

MODULES = (fastai.learner, fastai.vision.gan, fastai.torch_core, fastai.callback.core,
           fastgan_study.callbacks, fastgan_study.speed, fastgan_study.losses, fastgan_study.runs, L)

def reads_in_fit(tmp_path, epochs, **kw):
    "Host reads made by fastai's and our code while a learner writing a run folder (`RunFolder`) fits all 1,797 digits in batches of 8."
    set_seed(0)
    learn = L.gan_learner(gan_dls('digits', size=16, bs=8, device='cpu'), n_features=8, **kw)
    learn.add_cbs([L.RunFolder(tmp_path/'run', score='none', report=False, n_samples=8),
                   RichProgress(Console(file=io.StringIO()), refresh=3600), DivergenceGuard()])   # the bar reads its losses each refresh: here once
    with host_reads(*MODULES) as calls, learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return calls, len(learn.dls.train)

def test_no_host_read_per_batch(tmp_path, one_thread):
    calls, n = reads_in_fit(tmp_path, 2)
    assert n == 224
    assert len(calls) <= 2 * 30, calls                         # fastai alone reads 2.5 times per batch: 1,120 here
    assert not [c for c in calls if c[0] in ('accumulate', '_inner')], calls
    assert sum(c[0] == 'after_batch' for c in calls) == 2, calls   # the bar's two losses, at its first refresh only

@pytest.mark.parametrize('recipe,flags', [('dcgan', ['--precision', 'bf16', '--channels-last', 'on']),
                                          ('wgan-gp', ['--precision', 'fp16'])])
def test_precision_modes_train_through_the_cli(tmp_path, recipe, flags):
    r = cli('train', *TINY, '--recipe', recipe, *flags, '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr[-3000:]
    c = load_yaml(tmp_path/'run'/'config.yaml')
    assert c['precision'] == flags[1] and c['channels_last'] == ('on' in flags) and c['status'] == 'done'
    rows = load_run(tmp_path/'run').rows
    assert all(math.isfinite(r['gen_loss']) and math.isfinite(r['crit_loss']) for r in rows)

def test_unknown_precision_is_one_line(tmp_path):
    r = cli('train', *TINY, '--precision', 'fp8', '--out', tmp_path/'run')
    assert r.returncode == 2 and "unknown precision 'fp8'" in r.stderr and 'bf16' in r.stderr and not (tmp_path/'run').exists()

def test_fp16_run_resumes_to_the_same_run(tmp_path, one_thread, monkeypatch):
    "The loss scale is part of the checkpoint: an fp16 run cut after one epoch and resumed ends with the uninterrupted run's weights."
    class Overflowing(torch.amp.GradScaler):                   # start too high, so the scale falls (skipping steps) in the first epoch
        def __init__(self, *args, **kwargs): super().__init__(*args, init_scale=2.**30, **kwargs)
    monkeypatch.setattr(torch.amp, 'GradScaler', Overflowing)
    kw = dict(data='digits', classes='7', bs=16, n_features=8, progress=False, device='cpu', score='none', precision='fp16')
    whole = L.train(out=tmp_path/'whole', epochs=2, **kw)
    L.train(out=tmp_path/'cut', epochs=1, **kw)
    resumed = L.train(out=tmp_path/'cut', epochs=2, resume=True, **kw)
    assert resumed.scaler.get_scale() == whole.scaler.get_scale() < 2.**30
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()): assert torch.equal(p, q)
