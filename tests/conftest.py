import atexit, os, shutil, subprocess, sys
from pathlib import Path
import pytest, tempfile, torch

# tests never read or fill the user's cache of features and domain classifiers; the cache goes when the session ends
os.environ['FASTGAN_STUDY_CACHE'] = tempfile.mkdtemp(prefix='fastgan_cache_')
atexit.register(shutil.rmtree, os.environ['FASTGAN_STUDY_CACHE'], ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent/'shared'/'data'
# a tiny but real run: two epochs on the sevens of digits, width 8
TINY = ['--classes', '7', '--epochs', '2', '--bs', '16', '--n-features', '8', '--no-progress', '--device', 'cpu']

def cli(*args, cwd=None):
    "Run the installed `fastgan_study` command; returns the CompletedProcess."
    exe = Path(sys.executable).parent/'fastgan_study'
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)

@pytest.fixture
def run_cli(): return cli

@pytest.fixture(scope='module')
def one_thread():
    "One torch thread for a test module (the build machine is shared; tiny tensors train faster on one thread); restored after."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
