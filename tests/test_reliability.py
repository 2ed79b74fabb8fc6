"""Issue 19's classes of failure, one test each (every one failed before the fix): two writers on one folder, a failed resume that
touched files, values that reached PyTorch, advice that led nowhere, and runs stopped by Ctrl-C or SIGTERM."""
import contextlib, hashlib, io, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch, yaml
from fastgan_study.cli import main
from fastgan_study.core import FolderLock
from conftest import cli

FAST = ['--classes', '7', '--bs', '16', '--n-features', '8', '--score', 'none', '--no-report', '--no-progress', '--device', 'cpu']

def run(*argv):
    "`fastgan_study ARGV` in this process: (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()

def snapshot(folder):
    "Every file under `folder` (hidden ones included) with its content hash and mtime."
    return {str(f.relative_to(folder)): (hashlib.sha1(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
            for f in sorted(Path(folder).rglob('*')) if f.is_file() and f.name != '.lock'}

def one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in err, err
    return lines[0]

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A finished 2-epoch run (width 8) and one of width 16, to copy per test."
    d = tmp_path_factory.mktemp('runs')
    for name, width in (('w8', '8'), ('w16', '16')):
        rc, _, err = run('train', '--epochs', 2, '--out', d/name, *FAST[:5], width, *FAST[6:])
        assert rc == 0, err
    return d

def copy_run(trained, name, to):
    shutil.copytree(trained/name, to); return to

# 2. one writer per folder -------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def held_by_another_process(folder):
    "`folder` locked by a separate Python process for the duration."
    p = subprocess.Popen([sys.executable, '-c', f"import sys, time; from fastgan_study.core import FolderLock; FolderLock({str(folder)!r}, 'a test'); "
                          "print('held', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == 'held'
        yield p
    finally: p.kill(); p.wait()

def test_a_second_writer_is_refused_and_changes_nothing(trained, tmp_path):
    run_folder = copy_run(trained, 'w8', tmp_path/'run')
    before = snapshot(run_folder)
    with held_by_another_process(run_folder) as p:
        for argv in (['train', '--epochs', 3, '--out', run_folder, '--resume', *FAST],      # the case of the issue: train, then train --resume
                     ['train', '--epochs', 2, '--out', run_folder, '--force', *FAST],
                     ['report', run_folder], ['interpolate', run_folder]):
            rc, _, err = run(*argv)
            assert rc == 2 and f'is being written by pid {p.pid} (a test)' in one_error_line(err), (argv, err)
        assert snapshot(run_folder) == before
    rc, _, err = run('train', '--epochs', 3, '--out', run_folder, '--resume', *FAST)       # once it is let go, the resume goes ahead
    assert rc == 0, err

def test_two_train_processes_on_one_folder(tmp_path):
    "A real `fastgan_study train --out X` and, while it trains, `train --out X --resume`: the second is refused and changes nothing."
    out = tmp_path/'run'
    first = subprocess.Popen([str(Path(sys.executable).parent/'fastgan_study'), 'train', '--epochs', '500', '--out', str(out), *FAST],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not (out/'model.pth').exists():
            assert time.time() - t0 < 240 and first.poll() is None, first.stderr.read() if first.poll() is not None else 'slow'
            time.sleep(0.1)
        second = cli('train', '--epochs', '500', '--out', out, '--resume', *FAST)
        assert first.poll() is None, 'the first run ended before the second tried'
        assert second.returncode == 2 and f'is being written by pid {first.pid}' in second.stderr, second.stderr
        assert 'resumed' not in yaml.safe_load((out/'config.yaml').read_text())
    finally:
        first.send_signal(signal.SIGTERM); first.communicate(timeout=120)
    assert first.returncode == 130 and yaml.safe_load((out/'config.yaml').read_text())['status'] == 'interrupted'

def test_a_study_folder_takes_the_same_lock(tmp_path):
    f = tmp_path/'s.yaml'; f.write_text("base: {classes: '7', epochs: 1, bs: 16, n_features: 8, size: 16}\nseeds: 1\nscores: [none]\n")
    with held_by_another_process(tmp_path/'study'):
        rc, _, err = run('study', f, '--out', tmp_path/'study')
    assert rc == 2 and 'is being written by' in one_error_line(err)

# 3. a failed resume loses nothing -----------------------------------------------------------------------------------------

def test_resume_from_a_checkpoint_of_other_networks_changes_no_file(trained, tmp_path):
    run_folder = copy_run(trained, 'w8', tmp_path/'run')
    shutil.copy(trained/'w16'/'model.pth', run_folder/'model.pth')            # another run's checkpoint
    before = snapshot(run_folder)
    rc, _, err = run('train', '--epochs', 4, '--out', run_folder, '--resume', *FAST)
    line = one_error_line(err)
    assert rc == 2 and 'model.pth was trained with other settings than its config.yaml (n_features)' in line, line
    assert snapshot(run_folder) == before

def test_resume_whose_networks_do_not_fit_is_refused_before_any_write(trained, tmp_path):
    "The checkpoint's own config agrees with config.yaml, but its tensors do not fit the networks the settings build."
    run_folder = copy_run(trained, 'w8', tmp_path/'run')
    state = torch.load(run_folder/'model.pth', weights_only=True)
    state['generator'] = {k: torch.zeros(3, *v.shape[1:]) if v.ndim else v for k, v in state['generator'].items()}
    torch.save(state, run_folder/'model.pth')
    before = snapshot(run_folder)
    rc, _, err = run('train', '--epochs', 4, '--out', run_folder, '--resume', *FAST)
    assert rc == 2 and 'does not fit these settings' in one_error_line(err), err
    assert snapshot(run_folder) == before

# 4. values checked before they reach PyTorch ------------------------------------------------------------------------------

@pytest.mark.parametrize('argv, says', [
    (['train', '--nz', '0'], 'nz must be a whole number from 1'),
    (['train', '--nz', '-3'], 'nz must be a whole number from 1'),
    (['train', '--lr', 'nan'], 'NaN and infinity are not values'),
    (['train', '--lr', '1e30'], 'lr must be a number above 0 and at most 10'),
    (['train', '--epochs', '10000000'], 'epochs must be a whole number from 1 to 1000000'),
    (['train', '--seed', '-1'], 'seed must be a whole number from 0'),
    (['train', '--ema', 'inf'], 'NaN and infinity'),
    (['train', '--device', 'gpu'], "unknown device 'gpu'"),
    (['fid', 'digits', 'digits', '--n', '0'], 'n must be a whole number from 1'),
    (['fid', 'digits', 'digits', '--n', '-5'], 'n must be a whole number from 1'),
    (['fid', 'digits', 'digits', '--dims', '100'], 'Inception feature size'),
    (['study', 'no.yaml', '--jobs', '0'], 'jobs must be a whole number from 1'),
])
def test_bad_values_are_one_line_before_anything_is_written(tmp_path, argv, says):
    out = tmp_path/'out'
    rc, _, err = run(*argv, *(['--out', out] if argv[0] == 'train' else []))
    assert rc == 2 and says in one_error_line(err), err
    assert not out.exists()

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_on_a_machine_without_it(tmp_path):
    for argv in (['train', '--out', tmp_path/'r'], ['fid', 'digits', 'digits', '--extractor', 'domain']):
        rc, _, err = run(*argv, '--device', 'cuda')
        assert rc == 2 and 'no CUDA GPU' in one_error_line(err), err
    assert not (tmp_path/'r').exists()

def test_networks_larger_than_memory_are_refused_before_they_are_built(tmp_path, monkeypatch):
    import fastgan_study.core as core
    monkeypatch.setattr(core, 'available_memory', lambda device=None: 2**30)   # 1 GB free
    t0 = time.time()
    rc, _, err = run('train', '--n-features', '2048', '--out', tmp_path/'r', '--device', 'cpu')
    assert rc == 2 and 'lower --n-features, --nz, --size or --bs' in one_error_line(err), err
    assert time.time() - t0 < 30 and not (tmp_path/'r').exists()

# 5. advice that leads somewhere -------------------------------------------------------------------------------------------

def test_a_run_killed_in_its_first_checkpoint_write_resumes_from_epoch_0(trained, tmp_path):
    "What a kill during the first model.pth write leaves: config.yaml (running), the epoch-0 grid, a temporary file, no model.pth."
    out = copy_run(trained, 'w8', tmp_path/'run')
    (out/'model.pth').rename(out/'.model.pth.abc123.tmp')
    for f in ('metrics.csv', 'losses.png', 'warnings.yaml', 'samples/final.png', 'samples/epoch_001.png', 'samples/epoch_002.png'):
        (out/f).unlink(missing_ok=True)
    c = yaml.safe_load((out/'config.yaml').read_text()); c['status'] = 'running'; (out/'config.yaml').write_text(yaml.safe_dump(c))
    rc, _, err = run('train', '--epochs', 2, '--out', out, *FAST)                 # a new run: told to resume, not sent in a loop
    assert rc == 2 and 'pass --resume to start it again' in one_error_line(err)
    rc, _, err = run('train', '--epochs', 2, '--out', out, '--resume', *FAST)
    assert rc == 0, err
    assert 'stopped before its first checkpoint' in err and not list(out.glob('.*.tmp'))
    c = yaml.safe_load((out/'config.yaml').read_text())
    assert c['status'] == 'done' and torch.load(out/'model.pth', weights_only=True)['epoch'] == 2
    same = lambda f: hashlib.sha1((out/f).read_bytes()).digest() == hashlib.sha1((trained/'w8'/f).read_bytes()).digest()
    assert same('samples/epoch_002.png')                                        # the same run as the uninterrupted one

def test_wgan_with_a_probability_critic_names_the_flag(tmp_path):
    rc, _, err = run('train', '--loss', 'wgan', '--critic-out', 'prob', '--out', tmp_path/'r')
    line = one_error_line(err)
    assert rc == 2 and '--critic-out logit' in line and "output='logit'" not in line

def test_a_failed_trial_says_how_long_it_ran_not_0s(tmp_path, monkeypatch, capsys):
    import fastgan_study.study as study
    def fail(**kw): time.sleep(1.2); raise RuntimeError('the disk went away')
    monkeypatch.setattr(study, 'train', fail)
    f = tmp_path/'s.yaml'; f.write_text("base: {classes: '7', epochs: 1, bs: 16, n_features: 8, size: 16}\nseeds: 1\nscores: [none]\n")
    res = study.run_study(f, tmp_path/'study', report=False)
    line = [l for l in capsys.readouterr().out.splitlines() if 'failed' in l][0]
    assert res.status.tolist() == ['failed'] and '0s training' not in line and 'after 1s' in line, line

# 6. runs stopped by Ctrl-C or SIGTERM --------------------------------------------------------------------------------------

def test_sigterm_mid_run_marks_it_interrupted_and_says_how_to_go_on(tmp_path):
    out = tmp_path/'run'
    p = subprocess.Popen([str(Path(sys.executable).parent/'fastgan_study'), 'train', '--epochs', '200', '--out', str(out), *FAST],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (out/'model.pth').exists() or torch.load(out/'model.pth', weights_only=True)['epoch'] < 1:
        assert time.time() - t0 < 240 and p.poll() is None; time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'Traceback' not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('interrupted by SIGTERM: ') and '--resume' in lines[0], err
    c = yaml.safe_load((out/'config.yaml').read_text())
    assert (c['status'], c['reason']) == ('interrupted', 'stopped by SIGTERM') and c['checkpoint_epoch'] >= 1
    assert not (out/'.lock').exists()                                               # let go as the run stopped

def test_ctrl_c_during_imports_is_one_line(tmp_path):
    p = subprocess.Popen([str(Path(sys.executable).parent/'fastgan_study'), 'train', '--out', str(tmp_path/'r')],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4); p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.strip().splitlines() == ['interrupted'], err

@pytest.mark.skipif(torch.cuda.is_available() or (os.cpu_count() or 1) >= 64, reason='needs a machine without GPUs and with fewer than 64 cores')
def test_more_cpu_processes_than_cores_is_refused(tmp_path):
    rc, _, err = run('train', '--gpus', 64, '--out', tmp_path/'r')
    assert rc == 2 and 'give --gpus' in one_error_line(err) and not (tmp_path/'r').exists()

@pytest.mark.parametrize('line, says', [('nz: .inf', 'nz: expected a whole number, got inf'), ('betas: .nan', 'betas: expected numbers'),
                                        ('betas: 1.0e+30', 'betas: expected numbers'), ('n_crit: -.inf', 'n_crit: expected a whole number')])
def test_study_values_the_fuzz_found(tmp_path, line, says):
    f = tmp_path/'s.yaml'; f.write_text(f"base: {{classes: '7', epochs: 1, bs: 16, n_features: 8, size: 16, {line}}}\nseeds: 1\n")
    rc, _, err = run('study', f, '--out', tmp_path/'study')
    assert rc == 2 and says in one_error_line(err), err
    assert not (tmp_path/'study').exists()

def test_a_run_whose_config_is_binary_is_one_line(trained, tmp_path):
    out = copy_run(trained, 'w8', tmp_path/'run'); (out/'config.yaml').write_bytes(bytes(range(256)) * 4)
    for argv in (['explore', out], ['report', out], ['train', '--epochs', 3, '--out', out, '--resume', *FAST]):
        rc, _, err = run(*argv)
        assert rc == 2 and 'is not a text file' in one_error_line(err), (argv, err)

def test_fid_domain_on_a_folder_of_mixed_sizes(tmp_path):
    "fid has no size option, so it resizes a folder of mixed sizes itself (the card says so) instead of asking for one."
    from PIL import Image
    import numpy as np
    d = tmp_path/'mixed'; d.mkdir()
    for i in range(200): Image.fromarray((np.random.default_rng(i).random((16 + 8 * (i % 2),) * 2) * 255).astype('uint8')).save(d/f'{i}.png')
    rc, out, err = run('fid', 'digits', d, '--extractor', 'domain')
    assert rc == 0 and 'pass a size' not in err and 'fake_resize to 16×16' in out, (out, err)

def test_a_fit_refused_before_run_folder_opens_keeps_its_own_error(tmp_path):
    "A callback that refuses in before_fit ahead of RunFolder: the user sees that refusal (not RunFolder's failure to record a run it never opened)."
    from fastai.callback.tracker import SaveModelCallback
    from fastgan_study.learner import tiny_gan_learner, RunFolder
    from fastgan_study.core import FastGANError
    learn = tiny_gan_learner()
    with learn.no_bar(), learn.no_logging(), pytest.raises(FastGANError, match="SaveModelCallback monitors 'valid_loss'"):
        learn.fit(1, cbs=[SaveModelCallback(), RunFolder(tmp_path/'r')])
    assert not (tmp_path/'r').exists()
