"The one file walk (`data.folder_files`): links are followed into data sets linked in, never round in circles, and no file is read twice."
import os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pytest, yaml
from PIL import Image
from fastgan_study.data import crappify_folder, folder_files, load_images

pytestmark = pytest.mark.usefixtures('one_thread')

def _forty(root, n=40):
    "`n` 8×8 gray PNGs in two class folders, each image a different shade."
    for i in range(n):
        (root/'ab'[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 5 * i, np.uint8)).save(root/'ab'[i % 2]/f'{i:02d}.png')
    return root

def _load(path, **kw):
    "load_images at 8×8, recording warnings: (ImageSet, [warning texts])."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        s = load_images(path, size=8, **kw)
    return s, [str(x.message) for x in w]

def _in_subprocess(code, timeout=180):
    "Run `code` in a fresh Python with a time limit, so that a walk that loops fails the test instead of hanging the suite."
    try: return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout, env=dict(os.environ, PYTHONWARNINGS='always'))
    except subprocess.TimeoutExpired: pytest.fail(f"did not finish in {timeout}s: the walk goes round in circles")

def test_two_links_back_to_the_top_return_promptly_with_each_image_once(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'a'/'loop').symlink_to('..'); (d/'b'/'loop').symlink_to('..')       # os.walk(followlinks=True) never ends here
    r = _in_subprocess(f"from fastgan_study.data import load_images; print(len(load_images({str(d)!r}, size=8)))")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == '40'
    assert r.stderr.count('skipped 2 links') == 1 and 'a/loop, b/loop' in r.stderr

def test_one_loop_link_reads_each_file_once_and_warns_once(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'a'/'loop').symlink_to('..')                                          # fastai's get_files listed each file 41 times
    s, w = _load(d)
    assert len(s) == 40 and s.skipped == []
    assert sorted(s.images[:, 0, 0, 0].tolist()) == [5 * i for i in range(40)]
    assert len(w) == 1 and '\n' not in w[0], w
    assert w[0] == f"skipped 1 link in {d} that leads to folders already read (a/loop): the files there were read once"

def test_a_folder_linked_in_is_read_once_under_the_link_name(tmp_path):
    d, outside = _forty(tmp_path/'data'), tmp_path/'elsewhere'/'cats'
    outside.mkdir(parents=True)
    for i in range(5): Image.fromarray(np.full((8, 8), 250 - i, np.uint8)).save(outside/f'{i}.png')
    (d/'cats').symlink_to(outside)
    s, w = _load(d)
    assert len(s) == 45 and w == [] and s.vocab == ['a', 'b', 'cats']
    assert sorted(s.images[s.labels == 2, 0, 0, 0].tolist()) == [246, 247, 248, 249, 250]
    (d/'more_cats').symlink_to(outside)                                      # the same folder twice: read once, the second link named
    s, w = _load(d)
    assert len(s) == 45 and len(w) == 1 and '(more_cats)' in w[0]

def test_a_real_folder_keeps_its_own_name_over_a_link_to_it(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'0_shortcut').symlink_to('b')                                         # sorts before 'b', but 'b' is the folder itself
    s, w = _load(d)
    assert len(s) == 40 and s.vocab == ['a', 'b'] and len(w) == 1 and '(0_shortcut)' in w[0]

def test_a_link_to_a_file_already_listed_is_skipped(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'a'/'also_01.png').symlink_to('../b/01.png')
    (d/'a'/'new.png').symlink_to(tmp_path/'new.png'); Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path/'new.png')
    s, w = _load(d)
    assert len(s) == 41 and len(w) == 1 and 'to files already read (a/also_01.png)' in w[0]
    assert folder_files(d) == sorted(folder_files(d))                       # sorted, the same on every call

def test_broken_links_are_skipped_and_named(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'a'/'gone.png').symlink_to(tmp_path/'nowhere.png'); (d/'a'/'gone_folder').symlink_to(tmp_path/'nowhere')
    (d/'a'/'round.png').symlink_to('round.png')                              # a link to itself
    s, w = _load(d)
    assert len(s) == 40 and len(w) == 1
    assert '2 broken (a/gone.png: a link to' in w[0] and 'a/round.png' in w[0], w
    assert sorted(n for n, kind, _ in s.skipped if kind == 'broken') == ['a/gone.png', 'a/round.png']

def test_hidden_files_and_clutter_stay_out(tmp_path):
    d = _forty(tmp_path/'data')
    for f in ('.hidden.png', 'a/Thumbs.db', 'b/desktop.ini', '.cache/x.png'):
        (d/f).parent.mkdir(exist_ok=True); (d/f).write_bytes(b'\0junk')
    (d/'.snapshot').symlink_to('.')                                          # a hidden link is not followed either
    assert [f.relative_to(d).as_posix() for f in folder_files(d)] == [f"{'ab'[i % 2]}/{i:02d}.png" for i in sorted(range(40), key=lambda i: (i % 2, i))]

def test_crappify_never_deletes_through_a_link_in_its_folder(tmp_path):
    src, keep = _forty(tmp_path/'data', n=8), tmp_path/'keep'
    keep.mkdir(); Image.fromarray(np.zeros((8, 8), np.uint8)).save(keep/'precious.png')
    dst = crappify_folder(src, tmp_path/'crappy', size=8)
    (dst/'linked').symlink_to(keep)
    crappify_folder(src, dst, size=16)                                       # other settings: rewrites its own files
    assert (keep/'precious.png').exists()

def test_cli_train_on_a_folder_that_links_back_to_itself(tmp_path):
    d = _forty(tmp_path/'data')
    (d/'a'/'loop').symlink_to('..'); (d/'b'/'loop').symlink_to('..')
    exe = Path(sys.executable).parent/'fastgan_study'
    try:
        r = subprocess.run([str(exe), 'train', '--data', str(d), '--epochs', '1', '--size', '16', '--bs', '8', '--n-features', '8', '--score', 'none',
                            '--no-report', '--no-progress', '--device', 'cpu', '--out', str(tmp_path/'run')], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired: pytest.fail("train did not finish in 300s: the walk goes round in circles")
    assert r.returncode == 0, r.stderr[-2000:]
    assert yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())['n_images'] == 40
    assert [l for l in r.stderr.splitlines() if 'skipped 2 links' in l] == [f"warning: skipped 2 links in {d} that lead to folders already read (a/loop, b/loop): the files there were read once"]
