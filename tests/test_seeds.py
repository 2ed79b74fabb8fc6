"The seeds' studies (studies/seeds/): each at its report's real scale, each passing --dry-run on a machine without its data, and still checked."
import math, re, socket, warnings
from pathlib import Path
import pytest, yaml
from fastgan_study.core import FastGANError
from fastgan_study.datasets import DATASETS, dataset_present
from fastgan_study import study as S
from fastgan_study.cli import main

pytestmark = pytest.mark.usefixtures('one_thread')
ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted((ROOT/'studies'/'seeds').glob('*.yaml'))
SIZE = dict(celeba=64, lsun_bedroom=64, mnist=32, cifar10=32, fashion_mnist=32)   # the DCGAN architecture's size for each seed data set

@pytest.fixture
def no_data(tmp_path, monkeypatch):
    "A machine without any data set: the data folders are an empty folder."
    empty = tmp_path/'data'; empty.mkdir()
    monkeypatch.setenv('FASTGAN_STUDY_DATA', str(empty)); monkeypatch.setenv('FASTAI_HOME', str(empty))
    return empty

def expected_trials(d:dict): # a study file's YAML
    "The trials a study file asks for, counted from the file: the grid's combinations (and, with an ablation, the base and each value) × seeds."
    grid = math.prod(len(v) for v in d['grid'].values()) if d.get('grid') else 0
    ablate = 1 + sum(len(v) for v in d['ablate'].values()) if d.get('ablate') else 0
    return ((grid + ablate) or 1) * (d['seeds'] if isinstance(d['seeds'], int) else len(d['seeds']))

def header(f): return '\n'.join(l for l in f.read_text().splitlines() if l.startswith('#'))

def test_one_seed_study_per_ready_study():
    "Each toy study in studies/ (tiny aside) has its seed report's study in studies/seeds/."
    assert {f.stem for f in SEEDS} == {f.stem for f in (ROOT/'studies').glob('*.yaml')} - {'tiny'}

@pytest.mark.parametrize('f', SEEDS, ids=lambda f: f.stem)
def test_seed_study_dry_runs_without_its_data(f, no_data, tmp_path, capsys):
    "`fastgan_study study FILE --dry-run` on a machine without the data: every trial listed as pending, one line naming the data set and the stand-in, nothing written."
    d, out = yaml.safe_load(f.read_text()), tmp_path/'out'
    name = d['base']['data']
    assert name in DATASETS and not dataset_present(name)
    assert main(['study', str(f), '--out', str(out), '--dry-run']) == 0
    printed, said = capsys.readouterr()
    n = expected_trials(d)
    assert f"\n{n} trials: {n} pending" in printed and len(re.findall(r'_seed=\d+ +\S+ +\d+ +pending', printed)) == n, printed
    notes = [l for l in said.splitlines() if 'not on this machine' in l]
    assert len(notes) == 1 and notes[0].startswith(f"warning: {name} is not on this machine") and 'stand-in' in notes[0], said
    assert f"{DATASETS[name]['n_train']:,} training images" in notes[0]
    assert not out.exists(), 'a dry run writes nothing'

@pytest.mark.parametrize('f', SEEDS, ids=lambda f: f.stem)
def test_seed_study_is_at_its_real_scale(f):
    "The seed's data set at the DCGAN size for it, Inception FID (or its spread over draws) on at least 10,000 images (the n_score axes of the spread studies aside), 3 or more seeds, and a header with N, the GPU time and the commands."
    s, text, top = S.parse_study(yaml.safe_load(f.read_text()), str(f)), f.read_text(), header(f)
    name = s['base']['data']
    assert s['base']['size'] == SIZE[name] and s['scores'][0] in ('fid', 'fid_spread') and len(s['seeds']) >= 3
    ns = {t['n_score'] for t in S.trials(s)}
    assert min(ns) >= 10_000 if 'n_score' not in s['axes'] else min(ns) > S.SCORE_DIMS['fid'] and max(ns) >= 10_000
    assert re.search(r'N = [\d,]+ generated images' if 'n_score' not in s['axes'] else r'N generated images', top), 'the header states N'
    assert re.search(r'estimated.*about (\d+ h ?)?(\d+ min(utes)?)? on one H100', top), 'the header states the expected GPU time'
    assert f"= {expected_trials(yaml.safe_load(text))} trials" in top
    assert f"fastgan_study study studies/seeds/{f.name} --out runs/{f.stem}" in top
    assert re.search(rf"RAY_ADDRESS=\S+ fastgan_study study studies/seeds/{f.name} --out \S+ --engine ray", top)

def seed_copy(tmp_path, name, edit):
    "A copy of seed study `name` with `edit` applied to its text."
    f = tmp_path/f'{name}.yaml'; f.write_text(edit((ROOT/'studies'/'seeds'/f'{name}.yaml').read_text())); return f

@pytest.mark.parametrize('name, edit, message', [
    ('label_smoothing', lambda t: t.replace('bn_critic: [on, off]', 'bn_critik: [on, off]'), r"label_smoothing.yaml, line \d+: unknown key 'bn_critik' \(not a train setting\)"),
    ('critic_design', lambda t: t.replace('size: 64', 'size: 100'), r"critic_design.yaml, line \d+: cell critic_out=logit,n_features=32,depth=0: the dcgan model cannot make 100×100"),
    ('n_steps', lambda t: t.replace('recipe: dcgan', 'recipe: cdcgan'), r"n_steps.yaml, line \d+: cell n_crit=1,n_gen=1: a conditional GAN needs images of at least 2 classes; celeba \(stand-in\) has one"),
    ('label_tricks', lambda t: t.replace('scores: [fid]', 'scores: [domain]'), r"scores: domain needs labelled data .* celeba \(stand-in\) has one"),
    ('lr_optimizer', lambda t: t.replace('n_score: 10000', 'n_score: 1000'), r"scores: fid is a Fréchet distance on 2048 feature dimensions and this cell scores 1000 images"),
])
def test_a_bad_seed_file_is_refused_without_its_data(tmp_path, no_data, name, edit, message):
    "The stand-in keeps every check: a bad key, a size the networks cannot make, a score the data cannot give, too few scored images."
    f = seed_copy(tmp_path, name, edit)
    with pytest.raises(FastGANError) as e, warnings.catch_warnings():
        warnings.simplefilter('ignore'); S.run_study(f, tmp_path/'out', dry_run=True)
    assert re.search(message, str(e.value)) and '\n' not in str(e.value), str(e.value)

def test_the_stand_in_says_what_it_used(no_data, monkeypatch):
    "One warning per data set, naming it, the stand-in's channels and classes, and the training images the score check counted: DATASETS' n_train."
    with pytest.warns(UserWarning) as said: s = S.load_study(ROOT/'studies'/'seeds'/'lr_optimizer.yaml')
    notes = [str(w.message) for w in said if 'not on this machine' in str(w.message)]
    assert len(notes) == 1 and len(S.cells(s)) == 12, notes
    assert all(w in notes[0] for w in ('mnist is not on this machine', 'stand-in', 'blank 1-channel images', '10 classes', "mnist's 60,000 training images")), notes[0]
    monkeypatch.setitem(DATASETS, 'mnist', dict(DATASETS['mnist'], n_train=2000))      # fewer real digits than FID's 2,048 dimensions
    with pytest.raises(FastGANError, match=r"this cell scores 2000 images \(all of its data\)"), warnings.catch_warnings():
        warnings.simplefilter('ignore'); S.load_study(ROOT/'studies'/'seeds'/'lr_optimizer.yaml')

def test_a_real_run_without_the_data_stops_in_one_line(tmp_path, no_data, monkeypatch):
    "Not a dry run: the check loads the data as the trials would, so an offline machine without it stops in one line before any trial."
    def offline(*a, **k): raise OSError('network is unreachable (test)')
    monkeypatch.setattr(socket.socket, 'connect', offline)
    out = tmp_path/'out'
    with pytest.raises(FastGANError) as e: S.run_study(ROOT/'studies'/'seeds'/'lr_optimizer.yaml', out, verbose=False)
    msg = str(e.value)
    assert re.search(r"lr_optimizer.yaml, line \d+: cell .*\bmnist\b", msg) and '\n' not in msg and 'stand-in' not in msg, msg
    assert not out.exists()
