"""kill -9 a training run at random moments, resume it each time, and check that it ends exactly as an uninterrupted run.

    python tests/kill_loop.py --kills 20            # issue 19's loop: 20 SIGKILLs, the first during the FIRST checkpoint write
    python tests/kill_loop.py --kills 4 --epochs 8  # the size tests/test_kill_loop.py runs in CI

A reference run trains without interruption (in parallel, one thread each, so both compute the same numbers) while a second run in
another folder is SIGKILLed, each time restarted with `--resume` and the same settings, until it finishes. Kills land
- during the first checkpoint write (as soon as `.model.pth.*.tmp` appears in a folder without model.pth; retried from scratch
  when the write finished before the signal did),
- during a later checkpoint write (the next `.model.pth.*.tmp` after a resume),
- between checkpoints (a random moment after a checkpoint), and during start-up (a random delay).
The finished run must equal the reference: model.pth's generator, critic (and moving average) and optimizer tensors bit for bit,
the sample grids byte for byte, and metrics.csv's loss columns. Prints each kill and the verdict; exits 0 only when every resume was accepted and the runs match."""
import argparse, csv, os, random, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

EXE = str(Path(sys.executable).with_name('fastgan_study'))

def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--kills', type=int, default=20, help='SIGKILLs to land (default: 20)')
    p.add_argument('--epochs', type=int, default=None, help='epochs of both runs (default: kills + 6)')
    p.add_argument('--seed', type=int, default=0, help='seed of the kill plan and delays')
    p.add_argument('--dir', default=None, help='work folder (default: a temporary one, removed at the end)')
    p.add_argument('--timeout', type=float, default=300, help='seconds any one process may run')
    return p.parse_args()

def train_args(epochs, out):
    return [EXE, 'train', '--data', 'digits', '--size', '16', '--epochs', str(epochs), '--n-features', '8', '--score', 'none',
            '--no-report', '--no-progress', '--out', str(out)]

ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONWARNINGS='ignore')   # the same numbers in every process

def start(argv, log):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV)

def tmp_files(run):
    try: return sorted(n for n in os.listdir(run) if n.startswith('.model.pth.') and n.endswith('.tmp'))
    except FileNotFoundError: return []

def ckpt_id(run):
    "model.pth's (inode, mtime) or None: changes each time a checkpoint is put in place."
    try: s = os.stat(Path(run)/'model.pth'); return (s.st_ino, s.st_mtime_ns)
    except FileNotFoundError: return None

def ckpt_epoch(run):
    import torch
    f = Path(run)/'model.pth'
    return torch.load(f, weights_only=True, map_location='cpu')['epoch'] if f.exists() else None

def wait_for(p, cond, deadline):
    "Poll (fast) until `cond()` holds or `p` ends; True when `cond()` held while `p` was still running."
    while p.poll() is None and time.monotonic() < deadline:
        if cond(): return True
        time.sleep(0.0003)
    return False

def land_kill(p, mode, run, rng, deadline, old_tmps):
    "Wait for `mode`'s moment and SIGKILL `p` (unless it ended first). `old_tmps`: tmp files earlier kills left behind."
    t0, new = time.monotonic(), lambda: [t for t in tmp_files(run) if t not in old_tmps]
    if mode == 'first-checkpoint': wait_for(p, lambda: new() and ckpt_id(run) is None, deadline)
    elif mode == 'checkpoint-write': wait_for(p, new, deadline)   # the next write (the first, after a resume from none)
    elif mode == 'between':
        before = ckpt_id(run)
        if wait_for(p, lambda: ckpt_id(run) not in (None, before), deadline):
            time.sleep(rng.uniform(0, 0.25))                 # an epoch here is about 0.2 s: anywhere up to the next checkpoint
    else:                                                    # start-up: imports, data, building the nets, the first batches
        delay = rng.uniform(0.05, 7.0)
        wait_for(p, lambda: time.monotonic() - t0 > delay, deadline)
    if p.poll() is None: p.send_signal(signal.SIGKILL); p.wait()

def metrics(run):
    with open(Path(run)/'metrics.csv') as f: return [(r['epoch'], r['gen_loss'], r['crit_loss']) for r in csv.DictReader(f)]

def compare(a, b):
    "Differences between two finished runs: weights, optimizer state, epoch, sample grids, loss columns."
    import torch
    sa, sb = (torch.load(Path(r)/'model.pth', weights_only=True, map_location='cpu') for r in (a, b))
    diffs = []
    if sa['epoch'] != sb['epoch']: diffs.append(f"epoch {sa['epoch']} vs {sb['epoch']}")
    for k in ('generator', 'critic', 'generator_ema'):
        if (sa.get(k) is None) != (sb.get(k) is None): diffs.append(f"{k}: present in one run only"); continue
        if sa.get(k) is None: continue
        bad = [n for n in sa[k] if n not in sb[k] or not torch.equal(sa[k][n], sb[k][n])]
        if bad or sa[k].keys() != sb[k].keys(): diffs.append(f"{k}: {len(bad)} tensors differ, e.g. {bad[:3]}")
    oa, ob = sa['opt']['state'], sb['opt']['state']
    bad = [(i, n) for i in oa for n in oa[i] if i not in ob or not torch.equal(torch.as_tensor(oa[i][n]), torch.as_tensor(ob[i][n]))]
    if bad or oa.keys() != ob.keys(): diffs.append(f"optimizer state: {len(bad)} tensors differ, e.g. {bad[:3]}")
    grids = lambda r: sorted(q.name for q in (Path(r)/'samples').glob('*.png'))
    if grids(a) != grids(b): diffs.append(f"sample grids: {len(grids(a))} vs {len(grids(b))} files")
    else: diffs += [f"samples/{g} differs" for g in grids(a) if (Path(a)/'samples'/g).read_bytes() != (Path(b)/'samples'/g).read_bytes()][:3]
    ma, mb = metrics(a), metrics(b)
    if ma != mb:
        first = next((x, y) for x, y in zip(ma + [None] * len(mb), mb + [None] * len(ma)) if x != y)
        diffs.append(f"metrics.csv loss columns differ ({len(ma)} vs {len(mb)} rows), first: {first[0]} vs {first[1]}")
    return diffs

def main():
    a = parse()
    epochs, rng = a.epochs or a.kills + 6, random.Random(a.seed)
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix='kill_loop_'))
    work.mkdir(parents=True, exist_ok=True)
    ref, run, t_start = work/'ref', work/'run', time.monotonic()
    for d in (ref, run): shutil.rmtree(d, ignore_errors=True)
    plan = (['first-checkpoint', 'between', 'checkpoint-write', 'startup'] +     # each kind once, then at random
            [rng.choice(['startup', 'between', 'between', 'checkpoint-write', 'checkpoint-write']) for _ in range(a.kills)])[:a.kills]
    print(f"kill loop: {a.kills} kills (seed {a.seed}), {epochs} epochs, in {work}", flush=True)
    ref_log = open(work/'ref.log', 'w')
    ref_p = start(train_args(epochs, ref), ref_log)          # the uninterrupted run, alongside
    problems, kinds, landed, first_tries, force = [], {}, 0, 0, False
    log = open(work/'run.log', 'w')
    while landed < a.kills:
        mode, old_tmps = plan[landed], set(tmp_files(run))
        resume = (run/'config.yaml').exists() and not force
        argv = train_args(epochs, run) + (['--resume'] if resume else ['--force'] if force else [])
        force = False
        log.write(f"\n$ {' '.join(argv)}\n"); log.flush()
        t0, deadline = time.monotonic(), time.monotonic() + a.timeout
        p = start(argv, log)
        land_kill(p, mode, run, rng, deadline, old_tmps)
        if p.returncode is not None and p.returncode != -signal.SIGKILL:      # it ended by itself: finished, or refused to resume
            out = (work/'run.log').read_text().strip().splitlines()
            if p.returncode == 0:
                problems.append(f"the run finished on its own while kill {landed + 1} ({mode}) waited for its moment: raise --epochs"); break
            problems.append(f"{'--resume' if resume else 'train'} refused after kill {landed} (exit {p.returncode}): {out[-1] if out else ''}")
            print(f"  RESUME REFUSED (exit {p.returncode}): {out[-1] if out else ''}\n  -> starting the run over with --force", flush=True)
            force = True
            continue
        tmps, epoch = [t for t in tmp_files(run) if t not in old_tmps], ckpt_epoch(run)
        rows = len(metrics(run)) if (run/'metrics.csv').exists() else 0
        where = ('during the FIRST checkpoint write' if tmps and epoch is None else 'during a checkpoint write' if tmps
                 else 'before the first checkpoint' if epoch is None else 'between checkpoints')
        landed += 1
        kinds[where] = kinds.get(where, 0) + 1
        print(f"kill {landed:2}/{a.kills} [{mode}] at {time.monotonic() - t0:5.2f}s{' (resumed)' if resume else ''}: "
              f"model.pth epoch {epoch}, metrics.csv {rows} rows, tmp {tmps or 'none'} -> {where}", flush=True)
        if mode == 'first-checkpoint' and where != 'during the FIRST checkpoint write':
            first_tries += 1
            if first_tries < 8:                              # the write finished before the signal: start over and try again
                print(f"  missed the first checkpoint write (try {first_tries}); starting over (--force)", flush=True)
                landed -= 1; kinds[where] -= 1; force = True
            else: problems.append("no kill landed during the first checkpoint write in 8 tries")
    if landed == a.kills:                                    # kills done: resume to the end
        resume = (run/'config.yaml').exists()
        argv = train_args(epochs, run) + (['--resume'] if resume else [])
        log.write(f"\n$ {' '.join(argv)}\n"); log.flush()
        p = start(argv, log)
        try: p.wait(a.timeout)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        out = (work/'run.log').read_text().strip().splitlines()
        print(f"final {'--resume' if resume else 'run'}: exit {p.returncode}", flush=True)
        if p.returncode != 0: problems.append(f"the final --resume failed (exit {p.returncode}): {out[-1] if out else ''}")
    try: ref_p.wait(a.timeout)
    except subprocess.TimeoutExpired: ref_p.kill(); ref_p.wait()
    if ref_p.returncode != 0: problems.append(f"the reference run failed (exit {ref_p.returncode}): see {work/'ref.log'}")
    if ref_p.returncode == 0 and (run/'model.pth').exists() and not any('final --resume' in x or 'finished on its own' in x for x in problems):
        diffs = compare(run, ref)
        print(f"finished run vs uninterrupted run: {'the same' if not diffs else 'DIFFERENT'}", flush=True)
        problems += [f"finished run differs from the uninterrupted one: {d}" for d in diffs]
    print(f"kills landed: {kinds}", flush=True)
    print(f"{'PASS' if not problems else 'FAIL'}: {landed} kills in {time.monotonic() - t_start:.0f}s; " +
          ("every resume equals the uninterrupted run (generator, critic, optimizer tensors bit for bit; sample grids; metrics.csv loss columns)"
           if not problems else '; '.join(problems)), flush=True)
    if not a.dir and not problems: shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1

if __name__ == '__main__': sys.exit(main())
