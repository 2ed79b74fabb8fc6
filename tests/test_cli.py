"`fastgan_study train` as a user runs it: a real subprocess, real files, and the mistakes users make."
import csv, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch, yaml
from PIL import Image
from conftest import TINY, cli
from fastgan_study.cli import COMMANDS

def test_train_writes_a_run_folder(tmp_path):
    r = cli('train', *TINY, '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr
    run = tmp_path/'run'
    for f in ('config.yaml', 'metrics.csv', 'losses.png', 'model.pth', 'samples/final.png', 'samples/epoch_000.png', 'samples/epoch_002.png'):
        assert (run/f).is_file(), f
    for f in ('config.yaml', 'metrics.csv', 'losses.png', 'samples/final.png', 'model.pth', '3 fixed-noise grids'):
        assert f in r.stdout, f                      # the closing summary names what was written
    rows = list(csv.DictReader(open(run/'metrics.csv')))
    assert [int(r['epoch']) for r in rows] == [1, 2]
    assert {'gen_loss', 'crit_loss', 'time', 'gen_updates', 'crit_updates'} <= set(rows[0])
    assert all(np.isfinite(float(r['gen_loss'])) for r in rows)
    cfg = yaml.safe_load((run/'config.yaml').read_text())
    assert cfg['status'] == 'done' and cfg['seed'] == 42 and cfg['device'] == 'cpu' and cfg['versions']['torch']
    assert cfg['recipe'] == 'dcgan' and cfg['lr'] == 2e-4 and cfg['opt'] == 'adam' and cfg['generator_params'] > 0
    state = torch.load(run/'model.pth', weights_only=True)   # plain tensors and data: loads without unpickling code
    assert {'generator', 'critic', 'opt', 'fixed_noise', 'config'} <= set(state)
    assert Image.open(run/'samples'/'epoch_002.png').size[0] >= 384

def test_help_lists_the_options():
    r = cli('train', '--help')
    assert r.returncode == 0
    for opt in ('--data', '--size', '--recipe', '--epochs', '--bs', '--lr', '--opt', '--nz', '--seed', '--out', '--force'):
        assert opt in r.stdout, opt

def test_wgan_recipe_runs(tmp_path):
    r = cli('train', *TINY, '--recipe', 'wgan', '--out', tmp_path/'w')
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load((tmp_path/'w'/'config.yaml').read_text())
    assert (cfg['opt'], cfg['n_crit'], cfg['clip'], cfg['arch']) == ('rmsprop', 5, 0.01, 'basic')

def _err(r):
    "The error of a failed CLI call: exit status 2 and exactly one line on stderr."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:'), r.stderr
    return lines[0]

def test_unknown_data_name(tmp_path):
    assert "did you mean 'digits'" in _err(cli('train', '--data', 'digts', '--out', tmp_path/'r'))

def test_missing_path(tmp_path):
    assert 'does not exist' in _err(cli('train', '--data', tmp_path/'no'/'such.npz', '--out', tmp_path/'r'))

def test_empty_folder(tmp_path):
    (tmp_path/'empty').mkdir()
    assert 'no images found' in _err(cli('train', '--data', tmp_path/'empty', '--out', tmp_path/'r'))

def test_corrupt_image_is_named(tmp_path):
    d = tmp_path/'imgs'/'a'; d.mkdir(parents=True)
    for i in range(20): Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(d/f'{i}.png')
    (d/'truncated.png').write_bytes((d/'0.png').read_bytes()[:30])
    msg = _err(cli('train', '--data', tmp_path/'imgs', '--out', tmp_path/'r'))
    assert 'truncated.png' in msg and 'remove or replace' in msg

def test_size_the_model_cannot_make(tmp_path):
    assert 'cannot make 30×30' in _err(cli('train', '--size', '30', '--out', tmp_path/'r'))

def test_negative_epochs(tmp_path):
    assert 'epochs must be a whole number from 1' in _err(cli('train', '--epochs', '-3', '--out', tmp_path/'r'))

@pytest.mark.parametrize('opt,val,msg', [('--lr', '0', 'lr must be a number above 0'), ('--bs', '0', 'bs must be a whole number from 1'),
                                         ('--recipe', 'dcgna', "did you mean 'dcgan'"), ('--opt', 'adma', "did you mean 'adam'")])
def test_bad_settings(tmp_path, opt, val, msg):
    assert msg in _err(cli('train', opt, val, '--out', tmp_path/'r'))
    assert not (tmp_path/'r').exists()            # refused before anything is written

def test_existing_output_is_refused_then_forced(tmp_path):
    assert cli('train', *TINY, '--out', tmp_path/'run').returncode == 0
    before = (tmp_path/'run'/'model.pth').read_bytes()
    msg = _err(cli('train', *TINY, '--out', tmp_path/'run'))
    assert '--force' in msg
    assert (tmp_path/'run'/'model.pth').read_bytes() == before   # nothing already written was touched
    (tmp_path/'run'/'notes.txt').write_text('mine')
    r = cli('train', *TINY, '--seed', '7', '--out', tmp_path/'run', '--force')
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())['seed'] == 7
    assert (tmp_path/'run'/'notes.txt').read_text() == 'mine'  # --force replaces run files only

def test_default_out_never_overwrites(tmp_path):
    for _ in range(2): assert cli('train', *TINY, cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path/'runs').iterdir()) == ['dcgan-digits-16px', 'dcgan-digits-16px-2']

def test_unknown_command():
    assert "did you mean 'train'" in _err(cli('trian'))


def test_every_setting_is_a_train_option_and_a_flag():
    "One name everywhere: each name in SETTINGS is a keyword of `train`, hence a --flag of `fastgan_study train`."
    import inspect
    from fastcore.script import anno_parser
    from fastgan_study.learner import SETTINGS, train
    params = inspect.signature(train).parameters
    missing = [k for k in SETTINGS if k not in params]
    assert not missing, f"settings without a train option: {missing}"
    flags = anno_parser(train).format_help()
    for k in SETTINGS: assert '--' + k.replace('_', '-') in flags, k

def test_interpolate_and_augment_commands(tmp_path):
    "After training: `interpolate` writes its strip, `augment` its grid of a conditional run on data with a held-out split."
    from fastgan_study.synthetic import save_split
    save_split(tmp_path/'pool.npz', 'digits', n_test=300)
    r = cli('train', '--data', tmp_path/'pool.npz', '--recipe', 'cdcgan', '--epochs', '1', '--n-features', '8', '--out', tmp_path/'run',
            '--no-progress', '--score', 'none')
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'run'/'report.html').exists() and 'report.html' in r.stdout, 'train writes the run report and says so'
    r = cli('interpolate', tmp_path/'run', '--steps', '5', '--rows', '2')
    assert r.returncode == 0 and (tmp_path/'run'/'interpolation.png').exists(), r.stderr
    r = cli('explore', tmp_path/'run', '--n', '100')
    assert r.returncode == 0 and 'held_out: 300' in r.stdout and (tmp_path/'run'/'explore'/'critic.png').exists(), r.stdout + r.stderr
    r = cli('augment', tmp_path/'run', '--real', '0,20', '--generated', '0,50', '--seeds', '1', '--steps', '20', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert '| 20 |' in r.stdout and (tmp_path/'run'/'augment'/'heatmap.png').exists(), r.stdout
    _err(cli('augment', tmp_path/'nowhere'))

def test_command_summaries_are_their_docstrings():
    "The top-level help's line per command, kept in COMMANDS so that help imports nothing, is the first line of the function the command runs."
    from fastgan_study.cli import load_function
    for name, (target, summary) in COMMANDS.items(): assert load_function(target).__doc__.splitlines()[0] == summary, name

@pytest.mark.parametrize('argv', [[n] for n in COMMANDS] + [['train', '--recipe', 'superres']], ids=' '.join)
def test_each_switch_says_what_giving_it_does(argv, capsys, monkeypatch):
    "`--no-x` turns x off and says so (not x's Python comment); plain flags show no default; on/off options show on or off."
    from fastgan_study.cli import main
    monkeypatch.setenv('COLUMNS', '500')                      # one line per option
    with pytest.raises(SystemExit) as e: main(argv + ['--help'])
    assert e.value.code == 0
    opts = {l.split()[0]: l for l in map(str.strip, capsys.readouterr().out.splitlines()) if l.startswith('--')}
    for o, l in opts.items():
        assert '(default: True)' not in l and '(default: False)' not in l, l
        if o.startswith('--no-'): assert ' turn off: ' in l, l
    if argv == ['train']:
        assert opts['--guard'].startswith('--guard (on/off) ') and opts['--guard'].endswith('(default: on)'), opts['--guard']
        assert opts['--channels-last'].endswith('(default: off)') and opts['--no-progress'].endswith('turn off: show a progress bar')

@pytest.mark.parametrize('gpus', ['1', '2'])
def test_train_shows_no_warnings_of_torch_or_fastai(tmp_path, gpus):
    "torch's jit.script notice and fastai's 'shadowing an attribute' are about their code: hidden in one process and in several (--gpus 2)."
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}    # a user's filters, not conftest's 'ignore'
    r = subprocess.run([str(Path(sys.executable).parent/'fastgan_study'), 'train', *TINY, '--gpus', gpus, '--out', str(tmp_path/'run')],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert 'torch.jit.script' not in r.stderr and 'shadowing an attribute' not in r.stderr, r.stderr
