"kill -9 at random moments (the first one during the FIRST checkpoint write), resumed each time: the run ends as the uninterrupted one (tests/kill_loop.py, small)."
import subprocess, sys
from pathlib import Path

def test_kill_loop_resumes_to_the_uninterrupted_run(tmp_path):
    script = Path(__file__).with_name('kill_loop.py')
    r = subprocess.run([sys.executable, str(script), '--kills', '4', '--epochs', '8', '--seed', '0', '--dir', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert 'during the FIRST checkpoint write' in out, out         # the kill the loop exists for landed
    assert r.returncode == 0 and '\nPASS: 4 kills' in out, out
