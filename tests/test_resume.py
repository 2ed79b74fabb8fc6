"A run killed after epoch k and resumed ends exactly as an uninterrupted run: killed in-process, by SIGKILL, and while writing its checkpoint."
import csv, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch, yaml
from conftest import TINY, cli
import fastgan_study.learner as L
from fastgan_study.runs import load_run
from fastgan_study.core import FastGANError

# TINY's settings (the sevens of digits, 16×16, width 8, batches of 16: 11 batches an epoch) with more epochs
ARGS = dict(data='digits', size=16, classes='7', bs=16, n_features=8, progress=False, device='cpu', score='none')
RECIPES = {'dcgan': {}, 'wgan': dict(recipe='wgan'),   # wgan: five critic steps a round, so rounds straddle epochs
           'tricks': dict(ema=0.9, instance_noise=0.1, instance_noise_anneal=3, label_noise='1,20', lr_gen=1e-4)}

pytestmark = pytest.mark.usefixtures('one_thread')

class Killed(Exception): pass

def kill_after(monkeypatch, k):
    "Make `train` stop like a killed process right after writing the checkpoint of epoch `k`."
    save = L.RunFolder.after_epoch
    def after_epoch(self):
        save(self)
        if self.epoch + 1 == k: raise Killed(f'killed after epoch {k}')
    monkeypatch.setattr(L.RunFolder, 'after_epoch', after_epoch)

def state(run): return torch.load(Path(run)/'model.pth', weights_only=True)

def assert_same_run(a, b):
    "Bitwise the same weights, optimizer, switcher and random states, metrics (time columns aside) and sample grids."
    sa, sb = state(a), state(b)
    for k in ('generator', 'critic'): assert all(torch.equal(sa[k][n], sb[k][n]) for n in sa[k]), k
    if sa['generator_ema']: assert all(torch.equal(sa['generator_ema'][n], sb['generator_ema'][n]) for n in sa['generator_ema'])
    oa, ob = sa['opt']['state'], sb['opt']['state']
    assert oa.keys() == ob.keys() and all(torch.equal(oa[i][n], ob[i][n]) for i in oa for n in oa[i])
    ta, tb = sa['train'], sb['train']
    assert (ta['switcher'], ta['gen_mode'], ta['train_iter'], ta['ema_steps']) == (tb['switcher'], tb['gen_mode'], tb['train_iter'], tb['ema_steps'])
    assert torch.equal(ta['rng']['torch'], tb['rng']['torch']) and torch.equal(ta['rng']['loaders'][0]['state'], tb['rng']['loaders'][0]['state'])
    rows = lambda r: [{k: v for k, v in row.items() if k not in ('time', 'elapsed')} for row in csv.DictReader(open(Path(r)/'metrics.csv'))]
    assert rows(a) == rows(b) and len(rows(a)) == sa['epoch']
    grids = sorted(p.name for p in (Path(a)/'samples').iterdir())
    assert grids == sorted(p.name for p in (Path(b)/'samples').iterdir())
    for g in grids: assert (Path(a)/'samples'/g).read_bytes() == (Path(b)/'samples'/g).read_bytes(), g

@pytest.mark.parametrize('recipe', RECIPES)
def test_killed_in_process_and_resumed_is_the_same_run(tmp_path, monkeypatch, recipe):
    kw = dict(ARGS, epochs=4, **RECIPES[recipe])
    L.train(out=tmp_path/'whole', **kw)
    with monkeypatch.context() as m:
        kill_after(m, 2)
        with pytest.raises(Killed): L.train(out=tmp_path/'run', **kw)
    assert state(tmp_path/'run')['epoch'] == 2
    c = yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())         # an exception, not a real kill: the run says so
    assert (c['status'], c['reason'], c['checkpoint_epoch']) == ('failed', 'Killed: killed after epoch 2', 2)
    with open(tmp_path/'run'/'metrics.csv', 'a') as f: f.write('3,0.69')          # a row the killed run had half-appended
    learn = L.train(out=tmp_path/'run', resume=True, **kw)
    assert_same_run(tmp_path/'run', tmp_path/'whole')
    cfg = yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())
    assert cfg['status'] == 'done' and [r['epoch'] for r in cfg['resumed']] == [2]
    assert [r['epoch'] for r in learn.gan_metrics.rows] == [1, 2, 3, 4]

def test_more_epochs_continue_a_finished_run(tmp_path):
    L.train(out=tmp_path/'whole', epochs=3, **ARGS)
    L.train(out=tmp_path/'run', epochs=2, **ARGS)
    L.train(out=tmp_path/'run', epochs=3, resume=True, **ARGS)
    assert_same_run(tmp_path/'run', tmp_path/'whole')

def test_checkpoint_every(tmp_path, monkeypatch):
    kw = dict(ARGS, epochs=5, recipe='wgan', checkpoint_every=2)
    L.train(out=tmp_path/'whole', **kw)
    with monkeypatch.context() as m:
        kill_after(m, 3)                  # epoch 3 is not a checkpoint: the run resumes from epoch 2 and trains 3 again
        with pytest.raises(Killed): L.train(out=tmp_path/'run', **kw)
    assert state(tmp_path/'run')['epoch'] == 2
    assert len(list(csv.DictReader(open(tmp_path/'run'/'metrics.csv')))) == 3
    L.train(out=tmp_path/'run', resume=True, **kw)
    assert_same_run(tmp_path/'run', tmp_path/'whole')

def test_kill_while_writing_the_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    kw = dict(ARGS, epochs=3, recipe='wgan')
    L.train(out=tmp_path/'whole', **kw)
    real_save, calls = torch.save, []
    def dying_save(obj, f, *a, **k):          # the third save (epoch 2's) dies halfway through its file
        calls.append(f)
        if len(calls) < 3: return real_save(obj, f, *a, **k)
        Path(f).write_bytes(b'PK\x03\x04 half a zip'); raise Killed('killed while saving')
    with monkeypatch.context() as m:
        m.setattr(torch, 'save', dying_save)
        with pytest.raises(Killed): L.train(out=tmp_path/'run', **kw)
    assert state(tmp_path/'run')['epoch'] == 1                       # epoch 1's checkpoint, whole
    assert not list((tmp_path/'run').glob('.*.tmp'))                  # the half-written temporary file is gone
    (tmp_path/'run'/'.model.pth.x1y2.tmp').write_bytes(b'half')        # as a SIGKILL would leave it
    L.train(out=tmp_path/'run', resume=True, **kw)
    assert not list((tmp_path/'run').glob('.*.tmp'))
    assert_same_run(tmp_path/'run', tmp_path/'whole')

@pytest.mark.parametrize('recipe', ['dcgan', 'wgan'])
def test_sigkilled_cli_run_resumes_to_the_same_run(tmp_path, recipe):
    "A real `fastgan_study train` process killed with SIGKILL once its epoch-2 checkpoint exists, then run again with --resume."
    args = ['--epochs', '6', '--classes', '7', '--bs', '16', '--n-features', '8', '--no-progress', '--device', 'cpu', '--score', 'none', '--recipe', recipe]
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    exe = str(Path(sys.executable).parent/'fastgan_study')
    assert subprocess.run([exe, 'train', *args, '--out', tmp_path/'whole'], env=env, capture_output=True).returncode == 0
    p = subprocess.Popen([exe, 'train', *args, '--out', tmp_path/'run'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        if (tmp_path/'run'/'model.pth').exists() and state(tmp_path/'run')['epoch'] >= 2: break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    killed_at = state(tmp_path/'run')['epoch']
    assert 2 <= killed_at < 6
    r = subprocess.run([exe, 'train', *args, '--out', tmp_path/'run', '--resume'], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_same_run(tmp_path/'run', tmp_path/'whole')
    assert yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())['resumed'][0]['epoch'] == killed_at

def test_resume_refuses_other_settings_and_missing_checkpoints(tmp_path):
    L.train(out=tmp_path/'run', epochs=1, **ARGS)
    with pytest.raises(FastGANError, match=r"bs 16 \(now 8\), n_features 8 \(now 16\)"):
        L.train(out=tmp_path/'run', epochs=2, resume=True, **dict(ARGS, bs=8, n_features=16))
    with pytest.raises(FastGANError, match='nothing to resume'): L.train(out=tmp_path/'empty', epochs=2, resume=True, **ARGS)
    L.train(out=tmp_path/'run', epochs=2, resume=True, **ARGS)
    with pytest.raises(FastGANError, match='more than --epochs 1'): L.train(out=tmp_path/'run', epochs=1, resume=True, **ARGS)
    assert not (tmp_path/'empty').exists()

def test_finished_run_has_nothing_to_do(tmp_path):
    L.train(out=tmp_path/'run', epochs=2, **ARGS)
    before = {f: (tmp_path/'run'/f).read_bytes() for f in ('model.pth', 'metrics.csv', 'config.yaml')}
    with pytest.warns(UserWarning, match='nothing to do'): learn = L.train(out=tmp_path/'run', epochs=2, resume=True, **ARGS)
    assert [r['epoch'] for r in learn.gan_metrics.rows] == [1, 2]
    assert {f: (tmp_path/'run'/f).read_bytes() for f in before} == before

def test_cli_resume_errors(tmp_path):
    for args, msg in [(['--resume'], '--resume continues the run in --out'), (['--resume', '--out', tmp_path/'r', '--force'], 'choose one'),
                      (['--resume', '--out', tmp_path/'none'], 'nothing to resume')]:
        r = cli('train', *TINY, *args)
        assert r.returncode == 2 and msg in r.stderr, r.stderr

def poison_after(monkeypatch, k):
    "Fill the critic's first weight with NaN right after the checkpoint of epoch `k`: epoch k + 1 diverges."
    save = L.RunFolder.after_epoch
    def after_epoch(self):
        save(self)
        if self.epoch + 1 == k: next(self.learn.model.critic.parameters()).data.fill_(float('nan'))
    monkeypatch.setattr(L.RunFolder, 'after_epoch', after_epoch)

def test_diverged_run_keeps_its_last_good_checkpoint(tmp_path, monkeypatch):
    L.train(out=tmp_path/'good', epochs=2, **ARGS)
    poison_after(monkeypatch, 2)
    with pytest.warns(UserWarning, match='diverged at epoch 3.*model.pth keeps epoch 2'):
        learn = L.train(out=tmp_path/'run', epochs=4, **dict(ARGS, score='auto'))      # returns: a study goes on
    cfg = yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())
    assert cfg['status'] == 'diverged' and cfg['diverged']['reason'] == 'nan' and cfg['diverged']['epoch'] == 3
    assert learn.diverged['message'] == cfg['diverged']['message'] and 'critic loss is nan' in learn.diverged['message']
    good, kept = state(tmp_path/'good'), state(tmp_path/'run')
    assert kept['epoch'] == 2 and all(torch.equal(good['critic'][n], kept['critic'][n]) for n in good['critic'])
    assert all(torch.equal(good['generator'][n], p) for n, p in learn.model.generator.state_dict().items())   # the learner is back there too
    assert all(p.isfinite().all() for p in learn.model.critic.parameters())
    assert learn.scores == {} and not (tmp_path/'run'/'scores.yaml').exists()
    assert len(list(csv.DictReader(open(tmp_path/'run'/'metrics.csv')))) == 2
    assert sorted(p.name for p in (tmp_path/'run'/'samples').iterdir()) == ['epoch_000.png', 'epoch_001.png', 'epoch_002.png', 'final.png']
    learn = L.train(out=tmp_path/'off', epochs=4, guard='off', **ARGS)                 # without the guard NaN trains on
    assert learn.diverged is None and yaml.safe_load((tmp_path/'off'/'config.yaml').read_text())['status'] == 'done'
    assert not all(p.isfinite().all() for p in learn.model.critic.parameters())

def test_load_run_reads_the_run_back_with_its_moving_average(tmp_path):
    learn = L.train(data="digits", classes="7", epochs=2, bs=16, n_features=8, ema=0.9, out=tmp_path/'run', progress=False, device='cpu', score='none')
    run = load_run(tmp_path/'run')
    for p, q in zip(run.generator.state_dict().values(), learn.generator_ema.state_dict().values()): assert torch.equal(p, q)
    for p, q in zip(run.critic.parameters(), learn.model.critic.parameters()): assert torch.equal(p, q)
    assert run.rows == learn.gan_metrics.rows and not run.generator.training and (run.status, run.scores) == ('done', {})
