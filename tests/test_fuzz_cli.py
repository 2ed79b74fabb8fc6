"""Fuzzing the command line (issue 19): random right and wrong values for the options of train, study, fid, interpolate, explore and
augment, each case run in this process through `cli.main`. Every case must end with exit status 0 or 2 (3 for a train run the
divergence guard stopped), one line on stderr when refused, never a traceback or "an unexpected error", and an existing run or
study folder given to the command unchanged (content and mtime) unless the command went ahead with it.

`FUZZ_CASES=2000 FUZZ_SEED=1 python -m pytest -s tests/test_fuzz_cli.py` runs a larger fuzz. Each case has its own seed
(`random.Random(f'{FUZZ_SEED}:{i}')`, and copies of the fixture's folders): a failure is printed with its number, argv (and study file), and `FUZZ_ONLY=45` runs case 45 alone."""
import os, sys, shutil, signal, subprocess, time, hashlib, random, warnings
from collections import defaultdict
from pathlib import Path
import numpy as np, pandas as pd, pytest, yaml
from fastgan_study.cli import main

N_CASES = int(os.environ.get('FUZZ_CASES', 200))
ONLY = [int(i) for i in os.environ.get('FUZZ_ONLY', '').split(',') if i]    # FUZZ_ONLY=45,136: run just these cases again
SEED = int(os.environ.get('FUZZ_SEED', 0))
CASE_SECONDS = float(os.environ.get('FUZZ_CASE_SECONDS', 15))   # a case still running after this is a hang (or unbounded work)

pytestmark = pytest.mark.usefixtures('one_thread')

# cheap settings a case starts from: the 179 sevens of digits at 16×16, width 8, one epoch, no score
TRAIN_BASE = dict(data='digits', classes='7', size='16', epochs='1', n_features='8', bs='64', score='none', device='cpu')
TRAIN_FLAGS = ['--no-report', '--no-progress']

# wrong (or extreme) values: zero, negatives, NaN, infinities, huge numbers, empty strings, words, fractions for whole numbers
HOSTILE = ['0', '-1', '-7', 'nan', 'NaN', 'inf', '-inf', '1e30', '-1e30', str(10**12), '', 'abc', '0.5', '1e-30']
# options where a huge value only asks for more work (more epochs, steps, seeds), and --gpus/--jobs (10**12 processes would be a
# fork bomb on a shared machine if a bug let it through): 10**12 is left out, the rest of HOSTILE stays
NO_HUGE = {'epochs', 'steps', 'seeds', 'draws', 'instance-noise-anneal', 'score-every', 'checkpoint-every', 'gpus'}
DEVICES = ['cuda', 'cuda:1', 'mps', 'tpu', 'cuda:-1', 'CPU', 'cpu:99']
PATHS = ['', 'nan', 'nowhere', '{case}/nowhere/x', '{real}', '{case}']          # paths that are not what the option wants

def _v(*xs): return [str(x) for x in xs]
TRAIN_OPTS = {   # option: valid cheap values (hostile ones are drawn from HOSTILE plus the words in EXTRA)
    'data': _v('digits'), 'size': _v(8, 16), 'recipe': _v('dcgan', 'wgan', 'lsgan', 'sngan', 'wgan-gp', 'cdcgan', 'acgan'),
    'epochs': _v(1, 2), 'bs': _v(16, 32, 64), 'nz': _v(2, 10, 100), 'noise': _v('normal', 'uniform'), 'n-features': _v(4, 8),
    'n-channels': _v(1, 3), 'classes': _v('7', '1,7'), 'arch': _v('dcgan', 'mlp', 'basic', 'infogan'),
    'loss': _v('bce', 'wgan', 'hinge', 'lsgan', 'minimax'), 'opt': _v('adam', 'rmsprop', 'sgd'), 'lr': _v(1e-4, 2e-4, 1e-3),
    'lr-gen': _v(1e-4), 'lr-crit': _v(4e-4), 'betas': _v('0.5,0.999', '0,0.9'), 'n-crit': _v(1, 2), 'n-gen': _v(1, 2),
    'switcher': _v('fixed', 'adaptive'), 'gen-thresh': _v(0.5, 1.0), 'critic-thresh': _v(0.5, 1.0), 'clip': _v(0.01), 'gp': _v(1, 10),
    'label-smoothing': _v(0, 0.1), 'label-noise': _v('1,20'), 'label-flip': _v(0, 0.05), 'aux-weight': _v(0.5, 1),
    'instance-noise': _v(0, 0.1), 'instance-noise-anneal': _v(0, 1), 'ema': _v(0, 0.9), 'bn-critic': _v('on', 'off'),
    'bn-gen': _v('on', 'off'), 'dropout-critic': _v(0, 0.3), 'dropout-gen': _v(0, 0.3), 'kernel': _v(4, 5), 'depth': _v(0, 1),
    'critic-out': _v('logit', 'prob'), 'gen-out': _v('tanh', 'sigmoid'), 'spectral-norm': _v('on', 'off'), 'aux': _v('on', 'off'),
    'seed': _v(0, 1, 42), 'checkpoint-every': _v(1, 2), 'guard': _v('on', 'off'), 'device': _v('cpu'), 'precision': _v('fp32', 'bf16'),
    'channels-last': _v('on', 'off'), 'compile': _v('off'), 'gpus': _v(1), 'n-samples': _v(4, 16), 'score': _v('none'),
    'score-every': _v(0), 'log': []}
EXTRA = dict(data=PATHS + ['mnist-nowhere', '{norun}'], recipe=['dcgna', 'superres ', 'DCGAN'], noise=['gauss'], classes=['x', '99', ',', '7,7'],
             arch=['resnet'], loss=['hinje'], opt=['adagrad'], betas=['0.5', '1.5,0.9', 'a,b', 'nan,nan', 'inf,0.9', '0.5,0.999,0.1'],
             switcher=['adaptve'], label_noise=['1', '0,0', '-1,20', 'nan,1', 'inf,inf'], bn_critic=['maybe', 'yes'], critic_out=['softmax'],
             gen_out=['relu'], device=DEVICES, precision=['fp16', 'fp8', 'FP32'], compile=['maybe'], score=['fidd', 'domian'],
             log=['tensorboard', 'tensorbord', 'nan'])
EXTRA = {k.replace('_', '-'): v for k, v in EXTRA.items()}
# never drawn: --gpus N > 1 (N processes: see NO_HUGE), --compile on (minutes),
# --score fid/kid/auto/domain (Inception or classifier time per case), --log wandb (network), data names fastai downloads
FID_OPTS = {'dims': _v(64), 'n': _v(20, 30), 'draws': _v(1, 2), 'extractor': _v('inception', 'domain'), 'inception-weights': [],
            'seed': _v(0, 1), 'device': _v('cpu')}
INTERP_OPTS = {'steps': _v(2, 3), 'rows': _v(1, 2), 'method': _v('slerp', 'linear'), 'seed': _v(0, 1), 'out': _v('{case}/strip.png')}
EXPLORE_OPTS = {'k': _v(0, 1), 'n': _v(20, 40), 'test': _v('{pool}'), 'seed': _v(0, 1), 'out': _v('{case}/ex')}
AUGMENT_OPTS = {'real': _v('0,20', '20'), 'generated': _v('0,20', '10'), 'test': _v('{pool}'), 'seeds': _v(1), 'steps': _v(5, 10),
                'bs': _v(16, 32), 'lr': _v(1e-3, 3e-3), 'seed': _v(0, 1), 'device': _v('cpu'), 'out': _v('{case}/aug')}
EXTRA.update({'method': ['spherical'], 'extractor': ['lenet', 'Inception'], 'inception-weights': PATHS + ['{config}'],
              'test': PATHS + ['{norun}'], 'out': PATHS + ['{config}'], 'real': ['-5,10', 'a,b', '20,20', '0,1e30', '0,' + str(10**12)],
              'generated': ['-5,10', 'a,b', '0,' + str(10**12)]})
POSITIONAL_BAD = PATHS + ['{norun}', '{config}', '{garbled}']   # garbled: a run whose config.yaml holds binary (a PNG written over it)

# study files: YAML scalars, right and wrong
YAML_HOSTILE = ['0', '-1', '.nan', '.inf', '-.inf', '1.0e+30', str(10**12), "''", 'abc', 'null', '[]', '{}', '0.5', 'true']
STUDY_BASE = dict(data='digits', classes="'7'", size='16', epochs='1', n_features='8', bs='64', device='cpu')
STUDY_KNOBS = {'epochs': ['1', '2'], 'size': ['8', '16'], 'bs': ['32', '64'], 'nz': ['10', '100'], 'n_features': ['4', '8'], 'lr': ['2e-4', '1e-3'],
               'label_smoothing': ['0.1'], 'ema': ['0.9'], 'n_crit': ['1', '2'], 'instance_noise': ['0.1'], 'gp': ['10'], 'clip': ['0.01'],
               'dropout_critic': ['0.3'], 'kernel': ['4', '5'], 'depth': ['0', '1'], 'checkpoint_every': ['1'], 'n_samples': ['4'],
               'device': ['cpu', 'cuda', 'tpu'], 'recipe': ['dcgan', 'wgan', 'dcgna'], 'opt': ['adam', 'sgd'], 'betas': ["'0.5,0.999'", "'1.5,0.9'"],
               'score_every': ['0']}
STUDY_TOP = {'seeds': ['1', '2', '[0, 1]', '[0, 0]', '[1.5]'], 'n_score': ['50', '200', '2', '1'], 'min_seeds': ['2', '3'], 'alpha': ['0.05', '1', '2'],
             'scores': ['[none]', '[domain]', 'none', '[fidd]'], 'test': ['welch', 'permutation', 'ttest'], 'compare': ['base', 'none', 'lr=1e-3', 'nocell']}
STUDY_TEMPLATE = "name: fuzz\nbase: {{{base}}}\ngrid:\n  lr: [{lr}]\n{top}"


# Python's default warning filters (`python -c "import warnings; print(warnings.filters)"`), last applied first
PYTHON_FILTERS = [('ignore', ResourceWarning), ('ignore', ImportWarning), ('ignore', PendingDeprecationWarning), ('ignore', DeprecationWarning)]

class CaseTimeout(BaseException): "A case ran past CASE_SECONDS (a BaseException, so the CLI's `except Exception` does not swallow it)."

def _alarm(signum, frame): raise CaseTimeout()


def snapshot(folder):
    "Every file under `folder` (relative path → size, mtime_ns, sha1); {} when it does not exist."
    folder = Path(folder)
    if not folder.exists(): return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob('*')) if p.is_file()}

def changes(before, after):
    "What changed between two snapshots: changed, removed and added files (lock files aside: taking a lock is not a change)."
    before, after = ({f: v for f, v in s.items() if not f.endswith('.lock')} for s in (before, after))
    changed = [f for f in before if f in after and before[f] != after[f]]
    removed = [f for f in before if f not in after]
    added = [f for f in after if f not in before]
    return changed, removed, added


class Fuzz:
    "The fixed material cases draw from: a trained run, a conditional run on data with a test split, a run folder stopped before its first checkpoint, real images, a finished study."
    def __init__(self, root:Path):
        self.root = root
        from fastgan_study.data import load_images
        from fastgan_study.synthetic import save_split
        d = load_images('digits', size=16)
        np.savez(root/'real.npz', x=d.images[:40].numpy(), y=np.array(d.vocab)[d.labels[:40].numpy()].astype(np.int64))
        save_split(root/'pool.npz', 'digits', n_test=300)
        assert cli('train', *opts(TRAIN_BASE), *TRAIN_FLAGS, '--out', root/'run')[0] == 0
        assert cli('train', *opts(dict(TRAIN_BASE, data=str(root/'pool.npz'), classes=None, recipe='cdcgan')), *TRAIN_FLAGS,
                        '--out', root/'cond')[0] == 0
        (root/'norun').mkdir(); shutil.copy(root/'run'/'config.yaml', root/'norun')      # a run that stopped before its first checkpoint
        (root/'study.yaml').write_text(study_text({}, {}, '2e-4'))
        assert cli('study', root/'study.yaml', '--out', root/'study', '--no-report')[0] == 0

def cli(*argv):
    "main(argv) here, under the warning filters of a fresh `fastgan_study` process (pytest's show DeprecationWarnings): (exit status, seconds)."
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in PYTHON_FILTERS: warnings.filterwarnings(action, category=category)
        try: rc = main([str(a) for a in argv])
        except SystemExit as e: rc = e.code                        # argparse's own errors end in SystemExit(2)
    return rc, time.perf_counter() - t

def opts(d): return [x for k, v in d.items() if v is not None for x in (f"--{k.replace('_', '-')}", v)]

def study_text(base_changes:dict, top:dict, lrs:str):
    base = ', '.join(f"{k}: {v}" for k, v in {**STUDY_BASE, **base_changes}.items())
    top = {'seeds': '1', 'scores': '[none]', **top}
    return STUDY_TEMPLATE.format(base=base, lr=lrs, top=''.join(f"{k}: {v}\n" for k, v in top.items()))

def value(rng, name, valid, p_bad=0.6):
    "A right value of option `name` (from `valid`) or, with probability p_bad, a wrong one."
    if valid and rng.random() > p_bad: return rng.choice(valid)
    pool = [h for h in HOSTILE if not (name in NO_HUGE and h == str(10**12))] + EXTRA.get(name, [])
    return rng.choice(pool)


class Case:
    "One fuzz case: argv, the folder it must leave alone (unless it goes ahead), and how to judge it."
    def __init__(self, i, fz:Fuzz):
        self.i, self.fz, self.rng = i, fz, random.Random(f'{SEED}:{i}')
        self.dir = fz.root/'cases'/str(i); self.dir.mkdir(parents=True)
        self.watch, self.new_out, self.may_change, self.study_out, self.dry = [], None, False, None, False
        self.cmd = self.rng.choice(['train'] * 4 + ['study'] * 2 + ['fid', 'interpolate', 'explore', 'augment'])
        self.mutated = []
        self.argv = getattr(self, self.cmd)()
        self.argv = [self.fill(a) for a in self.argv]

    def fill(self, a):
        "An argument with its {placeholders} filled in (a copy of the folder stopped before its first checkpoint made only when used)."
        if not (isinstance(a, str) and '{' in a): return str(a)
        r, m = self.fz.root, dict(case=self.dir, pool=self.fz.root/'pool.npz')
        if '{real}' in a: m['real'] = shutil.copy(r/'real.npz', self.dir/'real.npz')        # copies: --out may write over them
        if '{config}' in a: m['config'] = shutil.copy(r/'run'/'config.yaml', self.dir/'config.yaml')   # a copy: --out may write over it
        if '{norun}' in a: m['norun'] = self.copy('norun')
        if '{garbled}' in a: m['garbled'] = self.copy('run', 'garbled'); shutil.copy(r/'run'/'samples'/'final.png', m['garbled']/'config.yaml')
        return a.format(**m)

    def copy(self, name, as_name=None):
        "A fresh copy of one of the fixture's folders in this case's folder, watched for changes."
        dst = self.dir/(as_name or name)
        if not dst.exists(): shutil.copytree(self.fz.root/name, dst); self.watch.append(dst)
        return dst

    def mutate(self, base:dict, options:dict, k=None):
        "`base` with 1–2 options of `options` set to random right or wrong values."
        out = dict(base)
        for name in self.rng.sample(sorted(options), k or self.rng.choice([1, 1, 2])):
            out[name] = value(self.rng, name, options[name]); self.mutated.append(name)
        return [x for n, v in out.items() for x in (f'--{n}', v)]

    def positional(self, good):
        if self.rng.random() < 0.75: return self.copy(good)
        self.mutated.append('RUN'); return self.rng.choice(POSITIONAL_BAD)

    def train(self):
        mode = self.rng.choice(['new', 'new', 'resume', 'resume', 'existing', 'norun'])
        base = {k.replace('_', '-'): v for k, v in TRAIN_BASE.items()}
        if mode in ('resume', 'norun'): base['epochs'] = '2'
        argv = ['train', *self.mutate(base, TRAIN_OPTS), *TRAIN_FLAGS]
        if mode == 'new': self.new_out = self.dir/'new'; return argv + ['--out', self.new_out]
        run = self.copy('norun' if mode == 'norun' else 'run')
        extra = ['--resume'] if mode in ('resume', 'norun') else (['--force'] if self.rng.random() < 0.3 else [])
        self.may_change = bool(extra)                       # with --resume or --force the run may go ahead and rewrite its folder
        self.mutated.append(mode)
        return argv + ['--out', run] + extra

    def study(self):
        base, top, lrs = {}, {}, '2e-4'
        for _ in range(self.rng.choice([1, 1, 2])):
            where = self.rng.choice(['base', 'base', 'grid', 'top'])
            if where == 'base':
                k = self.rng.choice(sorted(STUDY_KNOBS)); base[k] = self.rng.choice(STUDY_KNOBS[k] + YAML_HOSTILE); self.mutated.append(f'base.{k}')
            elif where == 'grid':
                lrs = ', '.join(self.rng.choice(['2e-4', '1e-3'] + YAML_HOSTILE) for _ in range(self.rng.choice([1, 2]))); self.mutated.append('grid.lr')
            else:
                k = self.rng.choice(sorted(STUDY_TOP)); top[k] = self.rng.choice(STUDY_TOP[k] + YAML_HOSTILE); self.mutated.append(k)
        if 'n_score' in top and self.rng.random() < 0.7: top['scores'] = '[domain]'
        f = self.dir/'s.yaml'; f.write_text(study_text(base, top, lrs))
        self.dry = self.rng.random() < 0.5
        jobs = value(self.rng, 'jobs', ['1', '2'] if self.dry else ['1'])
        if not self.dry and jobs not in ('0', '-1', '-7', 'nan', 'NaN', 'inf', '-inf', '', 'abc', '0.5', '1e30', '-1e30', '1e-30'): jobs = '1'  # never spawn N processes
        out = self.copy('study') if self.rng.random() < 0.5 else self.dir/'new-study'
        self.study_out, self.may_change, self.new_out = out, not self.dry, None if out.name == 'study' else out
        argv = ['study', f, '--out', out, '--jobs', jobs] + (['--dry-run'] if self.dry else []) + self.rng.choice([['--no-report'], ['--no-report', '--no-verbose'], ['--retry-failed', '--no-report']])
        if jobs != '1': self.mutated.append('jobs')
        return argv

    def fid(self):
        a = self.fz.root/'real.npz' if self.rng.random() < 0.8 else (self.mutated.append('A') or self.rng.choice(POSITIONAL_BAD))
        b = self.positional('run') if self.rng.random() < 0.8 else self.fz.root/'real.npz'
        flags = [f for f in ('--kid', '--pr', '--allow-few') if self.rng.random() < (0.9 if f == '--allow-few' else 0.3)]
        return ['fid', a, b, *self.mutate(dict(dims='64', n='20', device='cpu'), FID_OPTS), *flags]

    def interpolate(self):
        return ['interpolate', self.positional('run'), *self.mutate(dict(steps='3', rows='2'), INTERP_OPTS)]

    def explore(self):
        return ['explore', self.positional(self.rng.choice(['run', 'cond'])), *self.mutate(dict(n='40'), EXPLORE_OPTS)]

    def augment(self):
        flags = [f for f in ('--quality-filter', '--pretrain', '--source-channel') if self.rng.random() < 0.2]
        base = dict(real='0,20', generated='0,20', seeds='1', steps='5', device='cpu')
        return ['augment', self.positional('cond' if self.rng.random() < 0.8 else 'run'), *self.mutate(base, AUGMENT_OPTS), '--no-progress', *flags]

    def run(self, capsys):
        "Run the case; the problems found, as (kind, detail) pairs."
        before = {f: snapshot(f) for f in self.watch}
        capsys.readouterr()
        old = signal.signal(signal.SIGALRM, _alarm); signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try: rc, self.seconds = cli(*self.argv)
        except CaseTimeout: rc, self.seconds = 'timeout', CASE_SECONDS
        finally: signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)
        out, err = capsys.readouterr()
        self.rc, problems = rc, []
        lines = [l for l in err.splitlines() if l.strip()]
        ahead = rc == 0 or (rc == 3 and self.cmd == 'train')
        if rc == 'timeout': problems.append(('hang', f"still running after {CASE_SECONDS:.0f}s"))
        elif 'unexpected error' in err: problems.append((f'unexpected error, exit {rc}', next(l for l in lines if 'unexpected error' in l)))
        elif not ahead and rc != 2: problems.append((f'exit {rc}', lines[-1] if lines else '(no stderr)'))
        if 'Traceback' in out + err: problems.append(('traceback', err.strip().splitlines()[-1] if err.strip() else out.strip()[-200:]))
        if rc == 2 and len(lines) != 1:
            kind = 'argparse usage + error' if lines and lines[0].startswith('usage:') else 'several stderr lines on exit 2'
            problems.append((kind, f"{len(lines)} lines: " + ' | '.join(lines)[-300:]))
        if ahead and any(not l.startswith('warning:') for l in lines):   # `warning: ...` lines are fine on a run that went ahead, each one line
            problems.append(('stderr line that is not a warning, on success', next(l for l in lines if not l.startswith('warning:'))[:200]))
        for folder, snap in before.items():
            if rc == 'timeout' or (ahead and self.may_change): continue     # a run that went ahead (train --resume/--force, a study) may write
            changed, removed, added = changes(snap, snapshot(folder))
            if ahead and self.cmd != 'study': added = []                                # fid, interpolate, explore, augment add their outputs (RUN/explore, ...)
            if changed or removed or added:
                problems.append(('touched an existing folder', f"exit {rc}: {folder.name}: changed {changed[:4]} removed {removed[:4]} added {added[:4]}"))
        if self.new_out is not None and rc != 'timeout' and (not ahead or self.dry) and self.new_out.exists() and any(self.new_out.rglob('*')):
            cfg = self.new_out/'config.yaml'
            status = f", config.yaml status {yaml.safe_load(cfg.read_text()).get('status')!r}" if cfg.exists() else ''
            problems.append(('refused run wrote files', f"exit {rc}: {sorted(str(p.relative_to(self.new_out)) for p in self.new_out.rglob('*'))[:6]}{status}"))
        if self.cmd == 'study' and rc == 0 and not self.dry and (self.study_out/'results.csv').exists():
            res = pd.read_csv(self.study_out/'results.csv')
            failed = res[res.status == 'failed']
            if len(failed): problems.append(('study trial failed after the up-front check', str(failed.error.iloc[0])[:200]))
        return problems


def test_capture_sees_what_the_cli_prints(capsys, tmp_path):
    "capsys sees rich's stderr Console (it looks up sys.stderr at print time) and argparse's messages: the fuzz below can trust what it reads."
    rc, _ = cli('fid', tmp_path/'nowhere', tmp_path/'nowhere2', '--dims', '64', '--device', 'cpu')
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith('error: ') and 'nowhere' in err, (rc, out, err)
    rc, _ = cli('interpolate', tmp_path, '--steps', 'x')
    assert rc == 2 and 'invalid int value' in capsys.readouterr().err


@pytest.fixture(scope='module')
def fuzz(tmp_path_factory): return Fuzz(tmp_path_factory.mktemp('fuzz'))

def test_fuzz_cli_options(fuzz, capsys, monkeypatch):
    t0, kinds, outcomes, slow = time.perf_counter(), defaultdict(list), defaultdict(int), []
    fixed = lambda: {f: v for f, v in snapshot(fuzz.root).items() if not f.startswith('cases/')}
    fixture = fixed()
    cases = ONLY or range(N_CASES)
    for i in cases:
        case = Case(i, fuzz)
        monkeypatch.chdir(case.dir)                        # what a case writes to a relative path (runs/..., --out 0) goes with its folder
        for kind, detail in case.run(capsys):     # one kind: what went wrong, in which command, with which options changed
            what = '' if kind == 'argparse usage + error' else ' '.join(sorted(set(case.mutated)))
            if case.cmd == 'study': detail += '\n      s.yaml: ' + ' | '.join((case.dir/'s.yaml').read_text().splitlines())
            kinds[(kind, case.cmd, what)].append((i, detail, case.argv))
        outcomes[f'{case.cmd} exit {case.rc}'] += 1
        slow.append((case.seconds, i, case.cmd))
        shutil.rmtree(case.dir, ignore_errors=True)
    dt = time.perf_counter() - t0
    assert fixed() == fixture, "a case wrote into the fixture's files (cases must get copies)"
    report = [f"fuzz: {len(cases)} cases (seed {SEED}) in {dt:.0f}s; outcomes: {dict(sorted(outcomes.items()))}",
              f"slowest: {', '.join(f'#{i} {c} {s:.1f}s' for s, i, c in sorted(slow, reverse=True)[:5])}"]
    for (kind, cmd, what), hits in sorted(kinds.items()):
        i, detail, argv = hits[0]
        report.append(f"FAIL [{kind}] {cmd}{f' ({what})' if what else ''}: {len(hits)} case(s), e.g. #{i}: fastgan_study {' '.join(map(repr, argv))}\n      {detail}")
    with capsys.disabled(): print('\n' + '\n'.join(report))
    n = len(cases)
    assert not kinds, f"{len(kinds)} kinds of failure in {n} fuzz cases:\n" + '\n'.join(report)
    if ONLY: return
    assert sum(outcomes[k] for k in outcomes if k.endswith('exit 0')) >= n // 10, f"too few cases went ahead ({n} cases): {dict(outcomes)}"
    assert sum(outcomes[k] for k in outcomes if k.endswith('exit 2')) >= n // 4, f"too few cases were refused ({n} cases): {dict(outcomes)}"


def _torch_loading(pid):
    "Whether process `pid` has started loading torch's C++ library (so it is inside `import torch`)."
    try: return 'libtorch' in Path(f'/proc/{pid}/maps').read_text()
    except OSError: return False

@pytest.mark.parametrize('moment', ['torch import', '1s'])
def test_ctrl_c_while_starting_prints_one_line(tmp_path, moment):
    "Ctrl-C in the first second of `fastgan_study train` (its imports; torch's takes seconds): exit 130, one line on stderr, no traceback."
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    p = subprocess.Popen([str(Path(sys.executable).parent/'fastgan_study'), 'train', *opts(TRAIN_BASE), *TRAIN_FLAGS, '--out', str(tmp_path/'run')],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    t0 = time.monotonic()
    if moment == '1s': time.sleep(1.0)
    else:
        while not _torch_loading(p.pid) and p.poll() is None and time.monotonic() - t0 < 30: time.sleep(0.002)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    lines = [l for l in err.splitlines() if l.strip()]
    assert p.returncode == 130 and len(lines) == 1 and 'Traceback' not in err, \
        f"SIGINT at {time.monotonic() - t0:.2f}s: exit {p.returncode}, {len(lines)} stderr lines:\n{err[-1500:]}"
