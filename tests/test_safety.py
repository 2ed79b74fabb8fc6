"Safe loading and output folders: files that would run code are refused, YAML is plain data, outputs stay where they were asked to go."
import os, shutil
from pathlib import Path
from unittest import mock
import pytest, torch
from conftest import TINY, cli
from fastgan_study.core import FastGANError, load_weights, load_yaml, check_writable, inside

class Evil:
    "Unpickling this runs a shell command that leaves a file behind."
    def __init__(self, sentinel): self.sentinel = str(sentinel)
    def __reduce__(self): return (os.system, (f'touch {self.sentinel}',))

def _err(r, status=2):
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:'), r.stderr
    return lines[0]

def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    torch.save({'generator': {'w': torch.ones(1)}, 'x': Evil(tmp_path/'pwned')}, tmp_path/'model.pth')
    with pytest.raises(FastGANError, match='refusing to load'): load_weights(tmp_path/'model.pth')
    assert not (tmp_path/'pwned').exists()

def test_truncated_and_foreign_checkpoints_name_themselves(tmp_path):
    torch.save({'w': torch.randn(100)}, tmp_path/'ok.pth')
    (tmp_path/'cut.pth').write_bytes((tmp_path/'ok.pth').read_bytes()[:200])
    (tmp_path/'text.pth').write_text('not a checkpoint')
    for f in ('cut.pth', 'text.pth'):
        with pytest.raises(FastGANError, match=f'{f} is not a readable checkpoint'): load_weights(tmp_path/f)
    with pytest.raises(FastGANError, match='no checkpoint'): load_weights(tmp_path/'missing.pth')

def test_fid_on_a_run_with_a_malicious_model_refuses_it(tmp_path):
    run = tmp_path/'run'; run.mkdir()
    torch.save({'generator': {}, 'config': {}, 'x': Evil(tmp_path/'pwned')}, run/'model.pth')
    line = _err(cli('fid', 'digits', run, '--n', 8, '--allow-few'))
    assert 'refusing to load' in line and not (tmp_path/'pwned').exists()

def test_superres_resume_refuses_a_malicious_stage_checkpoint(tmp_path):
    from fastgan_study.superres import load_state
    torch.save({'w': torch.ones(1), 'x': Evil(tmp_path/'pwned')}, tmp_path/'gen_pretrained.pth')
    with pytest.raises(FastGANError, match='refusing to load'): load_state(tmp_path/'gen_pretrained.pth')
    assert not (tmp_path/'pwned').exists()

def test_yaml_python_tags_are_refused(tmp_path):
    f = tmp_path/'config.yaml'
    f.write_text(f"seed: 42\nrecipe: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n")
    with pytest.raises(FastGANError, match='config.yaml, line 2'): load_yaml(f)
    assert not (tmp_path/'pwned').exists()

def test_names_cannot_escape_the_output_folder(tmp_path):
    assert inside(tmp_path, 'lr=0.001/seed=1') == (tmp_path/'lr=0.001'/'seed=1').resolve()
    for bad in ('../x', 'a/../../x', '/tmp/x'):
        with pytest.raises(FastGANError, match='would write outside'): inside(tmp_path, bad)
    (tmp_path/'link').symlink_to(tmp_path.parent)
    with pytest.raises(FastGANError, match='would write outside'): inside(tmp_path, 'link/x')

def test_unwritable_or_full_output_is_refused_before_training(tmp_path):
    (tmp_path/'file').write_text('x')
    with pytest.raises(FastGANError, match='cannot write to'): check_writable(tmp_path/'file'/'run')
    with mock.patch('shutil.disk_usage', return_value=shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20)):
        with pytest.raises(FastGANError, match='only 1 MB free'): check_writable(tmp_path/'run')

def test_cli_output_under_a_file_is_one_line(tmp_path):
    (tmp_path/'file').write_text('x')
    line = _err(cli('train', *TINY, '--out', tmp_path/'file'/'run'))
    assert 'file' in line and '--out' in line
    assert (tmp_path/'file').read_text() == 'x'
