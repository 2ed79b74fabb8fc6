"The same seed on the CPU gives the same training, bit for bit; a different seed does not."
import csv
from conftest import TINY, cli

LOSSES = ('epoch', 'gen_loss', 'crit_loss', 'gen_updates', 'crit_updates')   # every column but the wall times

def losses(run):
    return [tuple(r[k] for k in LOSSES) for r in csv.DictReader(open(run/'metrics.csv'))]

def test_same_seed_same_metrics(tmp_path):
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        r = cli('train', *TINY, '--seed', seed, '--out', tmp_path/name)
        assert r.returncode == 0, r.stderr
    assert losses(tmp_path/'a') == losses(tmp_path/'b')
    assert losses(tmp_path/'a') != losses(tmp_path/'c')
    assert (tmp_path/'a'/'samples'/'final.png').read_bytes() == (tmp_path/'b'/'samples'/'final.png').read_bytes()
