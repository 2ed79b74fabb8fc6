"`train --log tensorboard|wandb`: fastai's logging callbacks fed the run's two losses, tested offline by reading what they wrote."
import builtins, os
import pytest
from conftest import TINY, cli
from fastgan_study.core import FastGANError
from fastgan_study.learner import train, log_callbacks

pytestmark = pytest.mark.usefixtures('one_thread')
ARGS = dict(data='digits', size=16, classes='7', bs=16, n_features=8, epochs=2, progress=False, device='cpu', score='none', report=False)

def test_tensorboard_events_hold_both_losses_per_epoch(tmp_path):
    pytest.importorskip('tensorboard', reason='the tensorboard extra is not installed')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    learn = train(out=tmp_path/'run', log='tensorboard', **ARGS)
    ev = EventAccumulator(str(tmp_path/'run'/'tensorboard')); ev.Reload()
    tags = ev.Tags()['scalars']
    assert {'gen_loss', 'crit_loss', 'train_loss'} <= set(tags)
    gen = [e.value for e in ev.Scalars('gen_loss')]
    assert gen == pytest.approx([r['gen_loss'] for r in learn.gan_metrics.rows], rel=1e-5)   # the numbers of metrics.csv, one per epoch

def test_wandb_offline_writes_its_run_folder(tmp_path, monkeypatch):
    pytest.importorskip('wandb', reason='the wandb extra is not installed')
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_SILENT', 'true')
    train(out=tmp_path/'run', log='wandb', **ARGS)
    runs = list((tmp_path/'run'/'wandb').glob('offline-run-*'))
    assert len(runs) == 1 and list(runs[0].glob('*.wandb'))
    import wandb
    assert wandb.run is None                                   # train closed its W&B run: the next run starts a new one

def test_a_missing_logger_package_names_the_extra(monkeypatch):
    real_import = builtins.__import__
    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(('fastai.callback.tensorboard', 'torch.utils.tensorboard', 'tensorboard')): raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_tensorboard)
    monkeypatch.delitem(__import__('sys').modules, 'fastai.callback.tensorboard', raising=False)
    with pytest.raises(FastGANError, match=r"fastgan_study\[tensorboard\]"): log_callbacks('tensorboard', '.')

def test_unknown_logger_is_refused_before_training(tmp_path):
    r = cli('train', *TINY, '--log', 'mlflow', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'logger' in r.stderr and 'tensorboard' in r.stderr, r.stderr
    assert not (tmp_path/'r').exists()
