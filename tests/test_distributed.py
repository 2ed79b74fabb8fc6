"One run in several processes (gloo on the CPU, as NCCL would on GPUs): equal replicas, one writer, shards, gradients averaged, a shared stop."
import json, os, sys
import pytest, torch, torch.distributed as dist
from conftest import cli, TINY
from fastgan_study.core import FastGANError, load_yaml, set_seed
from fastgan_study.distributed import launch, dist_env, init_distributed, SyncReplicas
from fastgan_study.learner import train, tiny_gan_learner
from fastgan_study.runs import load_generator, load_run
from fastgan_study.callbacks import DivergenceGuard, GANMetrics
from fastai.callback.core import Callback

def _files(folder): return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))

def test_two_processes_through_the_cli(tmp_path):
    r = cli('train', *TINY, '--gpus', '2', '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr[-3000:]
    c = load_yaml(tmp_path/'run'/'config.yaml')
    assert c['processes'] == 2 and c['status'] == 'done' and c['replicas_in_sync'] is True
    n_per_process = (179 // 2) // 16                          # 179 sevens, half each, batches of 16
    rows = load_run(tmp_path/'run').rows
    assert [r['gen_updates'] + r['crit_updates'] for r in rows] == [n_per_process, 2 * n_per_process]
    assert 'trained dcgan' in r.stdout and 'report.html' in r.stdout
    assert (tmp_path/'run'/'samples'/'epoch_002.png').exists() and not list(tmp_path.rglob('*.tmp'))
    G = load_generator(tmp_path/'run'); assert G(torch.randn(2, 100)).shape == (2, 1, 16, 16)

def test_same_seed_same_weights_and_errors_are_one_line(tmp_path):
    kw = dict(data='digits', classes='7', epochs=1, bs=16, n_features=8, progress=False, device='cpu', gpus=2, score='none')
    a, b = train(out=tmp_path/'a', **kw), train(out=tmp_path/'b', **kw)
    for p, q in zip(a.model.parameters(), b.model.parameters()): assert torch.equal(p, q)
    one = train(out=tmp_path/'one', **dict(kw, gpus=1))
    assert any(not torch.equal(p, q) for p, q in zip(a.model.parameters(), one.model.parameters()))   # other batches: another run
    with pytest.raises(FastGANError, match=r'each of 2 processes: use bs ≤ 89'): train(out=tmp_path/'big', **dict(kw, bs=100))
    r = cli('train', *TINY, '--gpus', '2', '--bs', '100', '--out', tmp_path/'cli')
    assert r.returncode == 2 and 'use bs ≤ 89' in r.stderr and 'Traceback' not in r.stderr

# --- in-process checks, each run in 2 spawned processes; results come back through files ---

def _grads(out):
    "Rank r's gradient of a linear layer on its own input, before and after `SyncReplicas` averages it."
    init_distributed('cpu'); rank = dist_env()[0]
    torch.manual_seed(0); net = torch.nn.Linear(3, 2)
    x = torch.arange(6.).reshape(2, 3) * (rank + 1)
    net(x).pow(2).sum().backward()
    own = net.weight.grad.clone()
    cb = SyncReplicas(); cb.learn = type('L', (), dict(model=net))()
    cb.after_backward()
    torch.save(dict(own=own, avg=net.weight.grad), f"{out}/{rank}.pt")

def test_gradients_are_averaged(tmp_path):
    launch(_grads, 2, str(tmp_path))
    r0, r1 = torch.load(tmp_path/'0.pt'), torch.load(tmp_path/'1.pt')
    assert not torch.equal(r0['own'], r1['own'])
    assert torch.allclose(r0['avg'], (r0['own'] + r1['own']) / 2) and torch.equal(r0['avg'], r1['avg'])

class _Poison(Callback):
    "On rank 1 only, NaN in the critic's first weight before training batch 3."
    def before_batch(self):
        if self.training and self.iter == 3 and dist_env()[0] == 1:
            with torch.no_grad(): next(self.learn.model.critic.parameters()).fill_(float('nan'))

def _poisoned(out):
    init_distributed('cpu'); rank = dist_env()[0]
    set_seed(0); learn = tiny_gan_learner(cbs=[SyncReplicas(), DivergenceGuard(check_every=5), _Poison()])
    with learn.no_bar(), learn.no_logging(): learn.fit(2)
    (out/f'{rank}.json').write_text(json.dumps(dict(diverged=learn.diverged, iter=learn.iter, epoch=learn.epoch)))

def test_a_divergence_in_one_process_stops_both(tmp_path):
    launch(_poisoned, 2, tmp_path)                           # returns: neither process waits for the other forever
    r0, r1 = (json.loads((tmp_path/f'{r}.json').read_text()) for r in (0, 1))
    assert r1['diverged']['reason'] == 'nan' and r0['diverged'] == r1['diverged']   # rank 0 stops with rank 1's reason
    assert r0['epoch'] == r1['epoch'] == 0 and r0['iter'] == r1['iter'] == 4        # at the first check, together

def _exits(out):
    import atexit
    init_distributed('cpu'); x = torch.ones(3); dist.all_reduce(x)
    atexit._run_exitfuncs()                                  # what Python runs at exit, before it tears itself down
    (out/f'{dist_env()[0]}.json').write_text(json.dumps(dict(open=dist.is_initialized(), sum=x.tolist())))

def test_a_process_leaves_its_group_before_python_shuts_down(tmp_path):
    # left open, gloo's threads can abort the process in interpreter shutdown ("terminate called without an active exception",
    # SIGABRT: 4 of 15 minimal torchrun runs here), and torchrun then kills the other process of a run that had finished
    launch(_exits, 2, tmp_path)
    for r in (0, 1): assert json.loads((tmp_path/f'{r}.json').read_text()) == dict(open=False, sum=[2., 2., 2.])

def test_torchrun_starts_the_same_run(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), 'torchrun')
    exe = os.path.join(os.path.dirname(sys.executable), 'fastgan_study')
    import subprocess
    r = subprocess.run([torchrun, '--nproc-per-node', '2', exe, 'train', *TINY], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                       env=dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('run folder') == 1                    # rank 1 prints nothing
    (run,) = (tmp_path/'runs').iterdir()                        # and makes no folder of its own
    c = load_yaml(run/'config.yaml'); assert c['processes'] == 2 and c['replicas_in_sync'] is True

def test_resumed_two_process_run_is_the_same_run(tmp_path):
    kw = dict(data='digits', classes='7', bs=16, n_features=8, progress=False, device='cpu', gpus=2, score='none')
    whole = train(out=tmp_path/'whole', epochs=2, **kw)
    train(out=tmp_path/'cut', epochs=1, **kw)
    resumed = train(out=tmp_path/'cut', epochs=2, resume=True, **kw)
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()): assert torch.equal(p, q)
    assert load_yaml(tmp_path/'cut'/'config.yaml')['resumed'][0]['epoch'] == 1
