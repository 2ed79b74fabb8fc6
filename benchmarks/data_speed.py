"""Data loading speed: ours (the decoded-image cache of `fastgan_study.data`) against torchvision's `ImageFolder` + `DataLoader`.

A folder of N JPEGs of CelebA's size (218×178 RGB, quality 90, made on the fly: smooth random shapes and noise, so they decode
like photographs, not like flat colour) is read at 64×64 by both sides with the same resize (centre square crop, bilinear with
antialiasing: torchvision's Resize(64) + CenterCrop(64) and our Pillow resize keep the same square):

- peer: `DataLoader(ImageFolder(root, Resize(64), CenterCrop(64), PILToTensor()), bs, shuffle=True, num_workers=cores, drop_last=True)`,
  each batch scaled to [-1, 1] as training would; timed to its first batch and over one epoch (it decodes every file every epoch);
- ours, cold: `gan_dls(folder, size=64)` with an empty cache (decodes every file once, in parallel, into the cache), then its first
  batch; and one epoch;
- ours, warm: the same with the cache built (a new run, a study's next trial): first batch, one epoch;
- ours, mapped: warm, with a memory budget below the set's size, so batches are gathered from the memory-mapped cache file;
- the model: one `dcgan` training step at 64×64 (width 64, the DCGAN paper's networks), to say whether an epoch is bounded by data
  or by the model (the share of a training epoch that goes to data).

Prints each time, and the ratios the issue sets as goals: cold ≤ the peer's epoch; the peer's epoch ≥ 20× our warm epoch.
On a GPU, `--device cuda` also puts the set on the GPU (`gan_dls` does when it fits), so a batch is gathered there:

    python benchmarks/data_speed.py --n 200000 --device cuda

`tests/test_benchmarks.py` runs it on a few hundred images and checks that both sides read the same pixels.

    python benchmarks/data_speed.py [--n 20000] [--size 64] [--bs 128] [--workers CORES] [--device cpu] [--keep DIR] [--model-steps 3]
"""
import argparse, os, platform, shutil, tempfile, time
from pathlib import Path
import numpy as np, torch
from PIL import Image

def make_folder(d:Path, n:int, seed:int=0):
    "N JPEGs of 218×178 under d/faces/: smooth shapes plus grain, a new image each from one seed."
    out = d/'faces'; out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    have = len(list(out.glob('*.jpg')))
    for i in range(have, n):
        low = rng.integers(0, 256, (7, 6, 3), dtype=np.uint8)
        im = Image.fromarray(low).resize((178, 218), Image.BICUBIC)
        a = np.asarray(im, np.int16) + rng.integers(-12, 13, (218, 178, 3), dtype=np.int16)
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(out/f'{i:06d}.jpg', quality=90)
    return d

def peer_loader(root, size, bs, workers):
    from torchvision import datasets, transforms as T
    ds = datasets.ImageFolder(str(root), T.Compose([T.Resize(size), T.CenterCrop(size), T.PILToTensor()]))
    return torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=False)

def time_epoch(batches, scale=None):
    "Seconds to the first batch and for the whole epoch of the iterable `batches`; the number of batches."
    t0 = time.perf_counter(); first, n = None, 0
    for b in batches:
        if scale is not None: scale(b)
        if first is None: first = time.perf_counter() - t0
        n += 1
    return first, time.perf_counter() - t0, n

def ours(root, size, bs, cache, device, budget=None, on_device=None):
    "Our loaders: seconds to build them and reach the first batch, the epoch, batches."
    from fastgan_study.data import gan_dls
    t0 = time.perf_counter()
    dls = gan_dls(root, size=size, bs=bs, device=device, cache_dir=cache, memory_budget=budget, on_device=on_device)
    built = time.perf_counter() - t0
    first, epoch, n = time_epoch(dls.train)
    return dls, built + first, epoch, n

def model_step_seconds(dls, device, steps=3, n_features=64):
    "Seconds per training batch (one critic or generator update) of the dcgan recipe through `fit`, after one warm-up batch."
    from fastai.callback.core import Callback, CancelFitException
    from fastgan_study.learner import gan_learner
    sync = lambda: torch.cuda.synchronize() if str(device).startswith('cuda') else None
    class Timer(Callback):
        order, i, t0, seconds = 100, 0, None, None
        def after_batch(self):
            self.i += 1; sync()
            if self.i == 1: self.t0 = time.perf_counter()
            elif self.i == steps + 1: self.seconds = (time.perf_counter() - self.t0) / steps; raise CancelFitException
    learn, timer = gan_learner(dls, 'dcgan', n_features=n_features), Timer()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=timer)
    return timer.seconds

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=20_000); p.add_argument('--size', type=int, default=64); p.add_argument('--bs', type=int, default=128)
    p.add_argument('--workers', type=int, default=os.cpu_count()); p.add_argument('--device', default='cpu')
    p.add_argument('--keep', default=None, help='make (and keep) the JPEG folder here; reused when run again')
    p.add_argument('--model-steps', type=int, default=3, help='training steps timed for the model share (0: skip)')
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix='data_speed_'))
    root = Path(a.keep) if a.keep else work/'data'
    try:
        t0 = time.perf_counter(); make_folder(root, a.n); made = time.perf_counter() - t0
        print(f"{a.n:,} JPEGs of 218×178 in {root} (made in {made:.0f}s), read at {a.size}×{a.size}, batch {a.bs}, {a.workers} loader "
              f"workers / {os.cpu_count()} cores, device {a.device}; {platform.processor() or platform.machine()}, torch {torch.__version__}")
        scale = lambda b: b[0].to(a.device, non_blocking=True).float().div_(127.5).sub_(1)
        pf, pe, pn = time_epoch(peer_loader(root, a.size, a.bs, a.workers), scale)
        cache = work/'cache'
        _, cf, ce, n = ours(root, a.size, a.bs, cache, a.device)
        dls, wf, we, _ = ours(root, a.size, a.bs, cache, a.device)
        nbytes = dls.images.images.nbytes
        mdls, mf, me, _ = ours(root, a.size, a.bs, cache, a.device, budget=nbytes // 4, on_device=False)   # batches from the map, even on a GPU
        assert mdls.images.mapped and not dls.images.mapped
        rows = [('torchvision ImageFolder + DataLoader', pf, pe, pn), ('ours, cold (builds the cache)', cf, ce, n),
                ('ours, warm (from the cache, in RAM)', wf, we, n), (f'ours, mapped (budget {nbytes // 4 / 2**20:.0f} MB < set {nbytes / 2**20:.0f} MB)', mf, me, n)]
        print(f"\n{'':42} {'first batch':>12} {'epoch':>9} {'batches':>8} {'images/s':>10}")
        for name, f, e, k in rows: print(f"{name:42} {f:11.2f}s {e:8.2f}s {k:8d} {k * a.bs / e:10,.0f}")
        print(f"\ncold (build + first batch {cf:.2f}s) / the peer's epoch {pe:.2f}s = {cf / pe:.2f}  (goal ≤ 1)")
        print(f"the peer's epoch / our warm epoch = {pe / we:.1f}×  (goal ≥ 20×); / our mapped epoch = {pe / me:.1f}×")
        from fastgan_study.data import load_images
        t0 = time.perf_counter(); load_images(root, size=a.size, cache_dir=cache, memory_budget=1024); t1 = time.perf_counter()
        print(f"warm load (list the folder, stat every file, map the cache): {t1 - t0:.2f}s for {len(dls.images):,} images = "
              f"{(t1 - t0) / len(dls.images) * 1e5:.2f}s per 100,000 (goal: well under 1s); with the copy into RAM and the loaders, first batch {wf:.2f}s")
        if a.model_steps:
            step = model_step_seconds(dls, a.device, a.model_steps)
            data = we / n
            print(f"model: one dcgan update at {a.size}×{a.size} (width 64, batch {a.bs}) takes {step * 1e3:.0f} ms; a batch of our data "
                  f"{data * 1e3:.2f} ms: data is {data / (data + step):.1%} of a training epoch (the peer's: {pe / pn / (pe / pn + step):.1%})")
    finally: shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
