"The decoded-image cache, data larger than the memory budget, and data kept on the training device (`fastgan_study.data`)."
import os, signal, subprocess, sys, time, textwrap
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
import fastgan_study.data as D
from fastgan_study.core import FastGANError
from fastgan_study.data import (ImageSet, cache_entries, clear_cache, device_set, folder_images, gan_dls, load_images, _read_image)

def make_folder(d:Path, n:int, side:int=24, seed:int=0, gray_every:int=5):
    "n small images in two class folders, some grayscale, some JPEG: a folder like a user's."
    rng = np.random.default_rng(seed)
    for i in range(n):
        cls = d/('a' if i % 2 else 'b'); cls.mkdir(parents=True, exist_ok=True)
        if i % gray_every == 0: Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(cls/f'{i:05d}.png')
        else: Image.fromarray(rng.integers(0, 256, (side + 6, side, 3), dtype=np.uint8)).save(cls/f'{i:05d}.jpg', quality=90)
    return d

def expected(d:Path, size:int):
    "The images as the reader decodes them one by one, grayscale repeated into three channels: what the cache must hold."
    files = D.folder_files(d)
    return torch.from_numpy(np.stack([np.dstack([a] * 3) if a.ndim == 2 else a for a in (_read_image(f, size) for f in files)])).permute(0, 3, 1, 2)

def test_parallel_decode_equals_reading_each_file(tmp_path):
    d = make_folder(tmp_path/'imgs', 700)                       # 3 chunks of 256: the forked workers run
    s = folder_images(d, size=16, cache_dir=tmp_path/'c')
    assert torch.equal(s.images, expected(d, 16))
    assert s.vocab == ['a', 'b'] and s.labels.tolist() == [0] * 350 + [1] * 350   # files in sorted order: a/ then b/
    [e] = cache_entries(tmp_path/'c'); assert e['images'] == 700 and e['source'] == str(d)

def test_warm_load_decodes_nothing(tmp_path, monkeypatch):
    d = make_folder(tmp_path/'imgs', 40)
    first = folder_images(d, size=16, cache_dir=tmp_path/'c')
    monkeypatch.setattr(D, '_decode_all', lambda *a, **k: pytest.fail('decoded again'))
    again = load_images(d, size=16, cache_dir=tmp_path/'c')
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)

def test_key_follows_files_size_and_channels(tmp_path):
    d, c = make_folder(tmp_path/'imgs', 30), tmp_path/'c'
    folder_images(d, size=16, cache_dir=c); folder_images(d, size=8, cache_dir=c); folder_images(d, size=8, n_channels=1, cache_dir=c)
    assert len(cache_entries(c)) == 3
    f = sorted((d/'a').iterdir())[0]
    Image.fromarray(np.full((24, 24), 7, np.uint8)).save(f.with_suffix('.png')); f.unlink()   # one file replaced
    s = folder_images(d, size=16, cache_dir=c)
    assert len(cache_entries(c)) == 3                              # rebuilt, and the stale entry of size 16 removed
    assert torch.equal(s.images, expected(d, 16))
    os.utime(sorted((d/'b').iterdir())[0], (1, 1))                  # only a modification time changes: built again
    before = {e['key'] for e in cache_entries(c)}
    folder_images(d, size=16, cache_dir=c)
    assert {e['key'] for e in cache_entries(c)} != before and len(cache_entries(c)) == 3

def test_skipped_files_are_remembered(tmp_path):
    d = make_folder(tmp_path/'imgs', 20)
    (d/'a'/'cut.png').write_bytes(b'\x89PNG\r\n'); (d/'notes.txt').write_text('x')
    with pytest.warns(UserWarning, match='skipped 2 of 22 files'): s = folder_images(d, size=16, cache_dir=tmp_path/'c')
    with pytest.warns(UserWarning, match='skipped 2 of 22 files'): s2 = folder_images(d, size=16, cache_dir=tmp_path/'c')
    assert len(s) == len(s2) == 20 and s.skipped == s2.skipped

BUILD = textwrap.dedent("""
    import sys, time; import fastgan_study.data as D
    decode, read = D._decode_all, D._read_image
    def counted(*a, **k): print('decoded', flush=True); return decode(*a, **k)
    D._decode_all = counted
    if len(sys.argv) > 3: D._read_image = lambda f, size: time.sleep(0.002) or read(f, size)   # slow enough to be killed mid-way
    s = D.folder_images(sys.argv[1], size=32, cache_dir=sys.argv[2], progress=False)
    print(len(s), int(s.images.double().sum()))
""")

def test_a_killed_build_is_never_used(tmp_path):
    d, c = make_folder(tmp_path/'imgs', 3000, side=64, gray_every=10**9), tmp_path/'c'
    p = subprocess.Popen([sys.executable, '-c', BUILD, str(d), str(c), 'slow'], stdout=subprocess.PIPE, text=True)
    t0 = time.time()
    while not list((c/'images').glob('*.tmp-*/raw.npy')) and time.time() - t0 < 60 and p.poll() is None: time.sleep(0.02)
    time.sleep(0.3); p.kill(); p.wait()                            # kill -9 in the middle of decoding
    assert cache_entries(c) == [], 'a build cut short was listed as an entry'
    s = folder_images(d, size=32, cache_dir=c)                      # built again, from scratch
    assert torch.equal(s.images, expected(d, 32))
    assert len(cache_entries(c)) == 1 and not list((c/'images').glob('*.tmp-*'))   # the killed build's folder was removed by the next build
    n, _ = clear_cache(c); assert n == 1 and not any((c/'images').iterdir())

def test_two_processes_share_one_build(tmp_path):
    d, c = make_folder(tmp_path/'imgs', 600), tmp_path/'c'
    ps = [subprocess.Popen([sys.executable, '-c', BUILD, str(d), str(c)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in ps]
    assert all(p.returncode == 0 for p in ps), outs
    assert sum(o.count('decoded') for o in outs) == 1                # one decoded, the other waited and mapped its entry
    res = [o.replace('decoded', '').split() for o in outs]
    assert res[0] == res[1] and res[0][0] == '600'
    assert len(cache_entries(c)) == 1 and not list((c/'images').glob('*.tmp-*'))

def test_cache_problems_are_one_line(tmp_path, monkeypatch):
    d = make_folder(tmp_path/'imgs', 10)
    (tmp_path/'file').write_text('x')
    with pytest.raises(FastGANError, match=r'cannot write the image cache in .*: set --cache-dir'): folder_images(d, size=8, cache_dir=tmp_path/'file')
    monkeypatch.setattr(D.shutil, 'disk_usage', lambda p: type('U', (), dict(free=1000))())
    with pytest.raises(FastGANError, match=r'needs about .* on disk and .* free: set --cache-dir'): folder_images(d, size=64, cache_dir=tmp_path/'c2')
    assert cache_entries(tmp_path/'c2') == []

def test_cache_off_reads_the_same_and_leaves_nothing(tmp_path):
    import tempfile
    d = make_folder(tmp_path/'imgs', 30)
    before = set(Path(tempfile.gettempdir()).glob('fastgan_study-*'))
    off = folder_images(d, size=16, cache_dir='off')
    assert torch.equal(off.images, expected(d, 16)) and D.cache_root('off') is None
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(d/'a'/'odd.png')
    with pytest.raises(FastGANError, match='images differ in size'): folder_images(d, cache_dir='off')   # a load that fails
    assert set(Path(tempfile.gettempdir()).glob('fastgan_study-*')) == before

def test_entries_of_other_file_lists_are_kept(tmp_path):
    from fastgan_study.data import decoded_set
    d, c = make_folder(tmp_path/'imgs', 20), tmp_path/'c'
    files = D.folder_files(d)
    a, b = decoded_set(d, files[:10], size=8, cache_dir=c, part='train'), decoded_set(d, files[10:], size=8, cache_dir=c, part='test')   # two splits of one folder
    assert len(cache_entries(c)) == 2                                # neither is a stale version of the other
    assert torch.equal(decoded_set(d, files[:10], size=8, cache_dir=c, part='train').images, a.images) and len(cache_entries(c)) == 2

def test_memory_budget_reads_text_as_the_command_line_gives_it():
    from fastgan_study.data import memory_budget
    assert memory_budget('0.5') == pytest.approx(memory_budget(0.5), rel=0.05) and memory_budget('3e9') == 3e9
    with pytest.raises(FastGANError, match='is not a size'): load_images('digits', memory_budget='much')   # refused before loading

def test_the_cache_command(tmp_path, run_cli):
    d, e = make_folder(tmp_path/'imgs', 12), make_folder(tmp_path/'other', 6)
    c = tmp_path/'c'
    folder_images(d, size=8, cache_dir=c); folder_images(e, size=8, cache_dir=c)
    r = run_cli('cache', '--cache-dir', c)
    assert r.returncode == 0 and '2 entries' in r.stdout and str(d) in r.stdout and str(e) in r.stdout, r.stdout + r.stderr
    r = run_cli('cache', '--clear', '--source', d, '--cache-dir', c)
    assert r.returncode == 0 and 'removed 1 entry' in r.stdout
    assert [x['source'] for x in cache_entries(c)] == [str(e)]
    r = run_cli('cache', '--cache-dir', 'off')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'the image cache is off' in r.stderr

# Larger than memory: the set stays in its memory-mapped cache file

def test_mapped_training_equals_in_memory(tmp_path):
    from fastgan_study.learner import train
    from fastgan_study.runs import read_metrics
    d = make_folder(tmp_path/'imgs', 96)
    kw = dict(data=str(d), size=16, epochs=2, bs=16, n_features=8, device='cpu', progress=False, score='none', report=False, cache_dir=str(tmp_path/'c'))
    mem = train(**kw, out=str(tmp_path/'mem'))
    mapped = train(**kw, out=str(tmp_path/'mapped'), memory_budget='1KB')
    assert mapped.dls.images.mapped and not mem.dls.images.mapped
    a, b = torch.load(tmp_path/'mem'/'model.pth', weights_only=False), torch.load(tmp_path/'mapped'/'model.pth', weights_only=False)
    for k in ('generator', 'critic'):
        for (n, x), (_, y) in zip(a[k].items(), b[k].items()): assert torch.equal(x, y), n
    cols = ['gen_loss', 'crit_loss']
    assert read_metrics(tmp_path/'mem')[cols].equals(read_metrics(tmp_path/'mapped')[cols])

RSS = textwrap.dedent("""
    import sys, json
    def anon(): return int(next(l for l in open('/proc/self/status') if l.startswith('RssAnon:')).split()[1]) * 1024
    from fastgan_study.data import load_images
    a0 = anon()
    s = load_images(sys.argv[1], size=96, cache_dir=sys.argv[2], memory_budget=sys.argv[3])
    total = sum(int(s.images[i:i + 250].sum()) for i in range(0, len(s), 250))   # every image read, with no copy of the set
    print(json.dumps(dict(mapped=s.mapped, nbytes=s.images.nbytes, anon=anon() - a0, total=total)))
""")

def test_a_mapped_set_stays_out_of_ram(tmp_path):
    import json
    d, c = make_folder(tmp_path/'imgs', 3000, side=96, gray_every=10**9), tmp_path/'c'
    folder_images(d, size=96, cache_dir=c)                           # 3000×3×96×96 = 83 MB
    got = {b: json.loads(subprocess.run([sys.executable, '-c', RSS, str(d), str(c), b], capture_output=True, text=True, check=True).stdout)
           for b in ('10MB', '8GB')}
    small, big = got['10MB'], got['8GB']
    assert small['mapped'] and not big['mapped'] and small['total'] == big['total']
    assert big['anon'] > 0.9 * big['nbytes'], got                    # in RAM: the set is in the process's own memory
    assert small['anon'] < 0.2 * small['nbytes'], got                # mapped: every image was read, from pages the OS can drop

# On the device: batches gathered where they are used

def test_device_set_follows_free_memory(monkeypatch):
    s = load_images('digits', size=8)
    moved = []
    monkeypatch.setattr(ImageSet, 'to', lambda self, d: moved.append(str(d)) or self)
    monkeypatch.setattr(D, 'available_memory', lambda device=None: 4 * s.images.nbytes)
    monkeypatch.setattr(D, 'check_memory', lambda *a, **k: None)
    assert device_set(s, 'cuda') is s and moved == ['cuda']            # a quarter of the free memory: it fits, it moves
    monkeypatch.setattr(D, 'available_memory', lambda device=None: 3 * s.images.nbytes)
    moved.clear(); device_set(s, 'cuda'); assert moved == []          # more than a quarter: it stays
    device_set(s, 'cpu'); device_set(s, 'cuda', on_device=False); assert moved == []
    device_set(s, 'cuda', on_device=True); assert moved == ['cuda']

def test_on_device_batches_are_the_same(monkeypatch):
    from fastgan_study.core import set_seed
    moved = lambda self, d: self.replace(images=self.images.clone(), labels=self.labels.clone())   # a copy, as a GPU's would be
    def epoch(on_device):
        set_seed(0); dls = gan_dls('digits', size=8, bs=16, device='cpu', on_device=on_device)
        return dls, list(dls.train)
    a, ea = epoch(False)
    monkeypatch.setattr(ImageSet, 'to', moved)
    b, eb = epoch(True)
    assert a.feed is a.images and b.feed is not b.images and b.feed.images.data_ptr() != b.images.images.data_ptr()
    assert len(ea) == len(eb) == 1797 // 16
    for (za, xa), (zb, xb) in zip(ea, eb): assert torch.equal(xa, xb) and torch.equal(za, zb)
