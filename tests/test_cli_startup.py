"What `fastgan_study` imports before it answers: the top-level help and --version need no torch, `train --help` only `learner`."
import subprocess, sys
import fastgan_study
from conftest import cli

HEAVY = {'torch', 'torchvision', 'fastai', 'timm', 'matplotlib', 'numpy', 'pandas', 'scipy', 'sklearn'}

def _imports(code:str):
    "Run `code` in a fresh Python: its CompletedProcess and the modules it imported (from `-X importtime`)."
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', code], capture_output=True, text=True, timeout=600)
    return r, {l.rsplit('|', 1)[1].strip() for l in r.stderr.splitlines() if l.startswith('import time:')}

def _main(*argv): return f"import sys; from fastgan_study.cli import main; sys.exit(main({list(argv)!r}))"

def _ours(mods): return {m for m in mods if m.startswith('fastgan_study.')}

def test_top_level_help_imports_no_torch():
    r, mods = _imports(_main('--help'))
    assert r.returncode == 0 and 'commands:' in r.stdout, r.stderr[-2000:]
    assert not {m.split('.')[0] for m in mods} & HEAVY, sorted({m.split('.')[0] for m in mods} & HEAVY)
    assert _ours(mods) == {'fastgan_study.cli'}               # not even core: it imports torch

def test_train_help_imports_only_what_train_needs():
    _, learner = _imports("import fastgan_study.learner")
    r, mods = _imports(_main('train', '--help'))
    assert r.returncode == 0 and '--no-progress' in r.stdout, r.stderr[-2000:]
    assert _ours(mods) - _ours(learner) == {'fastgan_study.cli'}, sorted(_ours(mods) - _ours(learner))

def test_help_and_version_as_a_user_types_them():
    r = cli('--help')
    assert r.returncode == 0 and r.stdout.startswith('usage: fastgan_study COMMAND [options]'), r.stdout
    r = cli('--version')
    assert r.returncode == 0 and r.stdout == f"fastgan_study {fastgan_study.__version__}\n", (r.stdout, r.stderr)
