"""Fixed-budget quality runs anyone can reproduce: DCGAN, WGAN-GP and the zoo's conditional DCGAN on MNIST, trained and scored alike.

Each model is trained with `fastgan_study.learner.train` (score 'none': nothing is measured during training) on the training
split, then its final generator is scored against the first N images of the test split:

- Inception FID (pytorch-fid's network, pool3 unless --dims) of N generated images, as mean ± std over --draws noise seeds (0, 1, …);
- the domain classifier's scores (`domain.domain_scores`, one draw, seed 0): a LeNet trained once on the training split (its held-out
  accuracy is printed above the table) gives the Fréchet distance of its features (domain FD), its Inception-style score (domain IS,
  10 for a perfect, balanced digit generator), the digit classes covered (modes) and, for the conditional model, the share of images
  it reads as the digit asked for (cond. acc);
- wall time of training (the whole `train` call) and of scoring (FID draws and domain scores), and the optimizer updates of the
  generator and the critic (the last row of the run's metrics.csv).

The models: `dcgan` (the DCGAN recipe), `wgan-gp` (DCGAN nets without batch norm in the critic, gradient penalty, 5 critic steps)
and `cdcgan`, the configuration `nbs/07_zoo.ipynb` trains at full length (the conditional DCGAN, sampled class by class) — the zoo
names no "best" model; this is its headline run. The first row, `real`, is the floor: N training images (3 random draws) scored
exactly like a model against the same N test images — FID at this N is biased upward, and no generator can be expected below it.

THE DEFAULTS ARE A GPU BUDGET, aimed at the issue's goal, MNIST FID ≤ 5 within 20 minutes of an H100 per model: width 64, batches
of 64, 30 epochs of dcgan and cdcgan (938 steps an epoch, alternating: about 14,000 generator updates), 60 of wgan-gp (its critic
takes 5 of every 6 steps: about 9,400 generator and 47,000 critic updates),
N = 10,000 against the 10,000 test digits, 3 draws. They are untested on a GPU here; on a 2-core CPU they take days. --quick is the
CPU preset (1 epoch each, width 16, N = 200 with 2 draws: FID on 200 images is far above its large-sample value and only shows the
pipeline works; a few minutes). Flags given beside --quick override it.

    python benchmarks/quality.py [--quick] [--models dcgan,wgan-gp,cdcgan] [--data ../shared/data/mnist.npz] [--test SOURCE]
                                 [--epochs E] [--n-features W] [--n N] [--draws D] [--dims 2048] [--device cuda] [--out DIR]
                                 [--precision bf16] [--channels-last] [--compile]   (the precision modes' effect on quality)
"""
import argparse, csv, math, tempfile, time, warnings
from pathlib import Path
import torch
from fastgan_study.core import device_name
from fastgan_study.data import ImageSet, load_images
from fastgan_study.domain import domain_classifier, domain_scores
from fastgan_study.learner import train
from fastgan_study.metrics import InceptionFeatures, measure, real_features

MNIST = Path(__file__).resolve().parents[2]/'shared'/'data'/'mnist.npz'
MODELS = {'dcgan': dict(recipe='dcgan', epochs=30),
          'wgan-gp': dict(recipe='wgan-gp', epochs=60),
          'cdcgan': dict(recipe='cdcgan', epochs=30)}
GPU = dict(epochs=None, n_features=64, bs=64, n=10_000, draws=3)               # epochs None: each model's own (MODELS)
QUICK = dict(epochs=1, n_features=16, bs=64, n=200, draws=2)
COLUMNS = ('model', 'recipe', 'epochs', 'fid', 'fid_std', 'domain_fd', 'domain_is', 'modes', 'cond_acc', 'train_s', 'score_s',
           'gen_updates', 'crit_updates')

def first(s:ImageSet, n): return ImageSet(s.images[:n], s.labels[:n], s.vocab, s.source)

def last_row(run):
    "The last row of a run's metrics.csv."
    with open(Path(run)/'metrics.csv') as f: return list(csv.DictReader(f))[-1]

def run_model(name, data, test, clf, extractor, runs, size=28, epochs=None, n_features=64, bs=64, n=10_000, draws=3, seed=42, device=None, **speed):
    "Train model `name` of `MODELS`, score its final generator against `test`; returns one table row (a dict)."
    cfg = MODELS[name]; epochs = epochs or cfg['epochs']
    t = time.perf_counter()
    learn = train(data, size=size, recipe=cfg['recipe'], epochs=epochs, bs=bs, n_features=n_features, seed=seed, out=Path(runs)/name,
                  force=True, score='none', device=device, progress=False, **speed)   # speed: precision, channels_last, compile
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    fid = measure(test, learn, scores=('fid',), extractor=extractor, n=n, draws=draws, allow_few=n < extractor.dims)['fid']
    dom = domain_scores(test, learn, classifier=clf, n=n, seed=0, allow_few=n < clf.dims)
    score_s = time.perf_counter() - t
    row = last_row(learn.path)
    return dict(model=name, recipe=cfg['recipe'], epochs=epochs, fid=fid.value, fid_std=fid.std or 0., domain_fd=dom['domain_fd'].value,
                domain_is=dom['domain_is'].value, modes=dom['modes'].value, cond_acc=dom['accuracy'].value if 'accuracy' in dom else math.nan,
                train_s=train_s, score_s=score_s, gen_updates=int(row['gen_updates']), crit_updates=int(row['crit_updates']), run=str(learn.path))

def real_row(train_set, test, clf, extractor, n=10_000, draws=3, seed=0):
    "The floor: N training images (random draws) scored like a model against the same N test images; FID's small-sample bias at this N."
    t = time.perf_counter()
    fid = measure(test, train_set.images, scores=('fid',), extractor=extractor, n=n, draws=draws, seed=seed, allow_few=n < extractor.dims)['fid']
    pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))[:n]
    dom = domain_scores(test, train_set.images[pick], classifier=clf, allow_few=n < clf.dims)
    return dict(model='real (train split)', recipe='—', epochs=0, fid=fid.value, fid_std=fid.std or 0., domain_fd=dom['domain_fd'].value,
                domain_is=dom['domain_is'].value, modes=dom['modes'].value, cond_acc=math.nan, train_s=0., score_s=time.perf_counter() - t,
                gen_updates=0, crit_updates=0, run='')

def _cell(k, r):
    v = r[k]
    if k == 'fid': return f"{v:.2f} ± {r['fid_std']:.2f}"
    if isinstance(v, float): return '—' if math.isnan(v) else f"{v:.1f}" if k.endswith('_s') else f"{v:.3f}"
    return str(v)

def markdown(rows, header=''):
    "The rows as one Markdown table (FID as mean ± std), after `header`."
    cols = [c for c in COLUMNS if c != 'fid_std']
    names = dict(fid='FID (mean ± std)', domain_fd='domain FD', domain_is='domain IS', cond_acc='cond. acc', train_s='train s',
                 score_s='score s', gen_updates='gen updates', crit_updates='critic updates')
    lines = ['| ' + ' | '.join(names.get(c, c) for c in cols) + ' |', '|' + '---|' * len(cols)]
    lines += ['| ' + ' | '.join(_cell(c, r) for c in cols) + ' |' for r in rows]
    return (header + '\n\n' if header else '') + '\n'.join(lines)

def main(models=('real', *MODELS), data=MNIST, test=None, size=28, epochs=None, n_features=64, bs=64, n=10_000, draws=3, dims=2048,
         device=None, seed=42, out=None, **speed):
    "Train and score each of `models`; prints the table and returns its rows (writes quality.csv and quality.md in `out` when given)."
    for m in models:
        if m not in (*MODELS, 'real'): raise SystemExit(f"unknown model {m!r}: choose from {', '.join(MODELS)} or real")
    device = device_name(device)
    train_set = load_images(data, size=size, split='train')
    test_set = first(load_images(test or data, size=size, n_channels=train_set.images.shape[1], split='test'), n)
    t = time.perf_counter()
    clf = domain_classifier(train_set)                    # trained once (and cached), shared by every model
    clf_s = time.perf_counter() - t
    extractor = InceptionFeatures(dims, device=device)
    t = time.perf_counter()
    real_features(test_set, extractor)                    # the reference side, once (and cached), so no model's scoring pays for it
    real_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(out)/'runs' if out else Path(tmp)
        rows = [real_row(train_set, test_set, clf, extractor, n, draws) if m == 'real' else
                run_model(m, data, test_set, clf, extractor, runs, size, epochs, n_features, bs, n, draws, seed, device, **speed) for m in models]
    gpu = f" ({torch.cuda.get_device_name(torch.device(device))})" if device.startswith('cuda') else f" ({torch.get_num_threads()} threads)"
    header = (f"Quality at a fixed budget: {Path(str(data)).name} {size}x{size}, width {n_features}, batch {bs}, seed {seed}, device {device}{gpu}, "
              f"{' '.join(f'{k} {v}' for k, v in speed.items()) or 'fp32'}; "
              f"FID: Inception dims {dims}, {n} generated vs the first {len(test_set)} test images ({test_set.source}), {draws} draw(s); "
              f"their features computed or loaded in {real_s:.1f} s; domain classifier {clf.name}, held-out accuracy {clf.accuracy:.4f} "
              f"(trained or loaded in {clf_s:.1f} s)")
    table = markdown(rows, header)
    print(table)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out)/'quality.md').write_text(table + '\n')
        with open(Path(out)/'quality.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=[*COLUMNS, 'run']); w.writeheader(); w.writerows(rows)
    return rows

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='the CPU preset: 1 epoch each, width 16, N 200, 2 draws')
    p.add_argument('--models', default=','.join(('real', *MODELS)),
                   help=f"comma-separated subset of real (the floor: training images scored like a model), {', '.join(MODELS)}")
    p.add_argument('--data', default=str(MNIST), help='training data: any source train() accepts (mnist.npz, cifar10, a folder, an .npz)')
    p.add_argument('--test', help="the reference set (its 'test' split; default: --data's test split, or all of it when it has none)")
    p.add_argument('--size', type=int, default=28, help='image height and width')
    p.add_argument('--epochs', type=int, help="epochs of every model (default: each model's GPU budget; --quick: 1)")
    p.add_argument('--n-features', type=int, help='network width (default 64; --quick 16)')
    p.add_argument('--bs', type=int, help='batch size (default 64)')
    p.add_argument('--n', type=int, help='generated images per draw and test images (default 10000; --quick 200)')
    p.add_argument('--draws', type=int, help='FID draws (noise seeds 0, 1, ...; default 3; --quick 2)')
    p.add_argument('--dims', type=int, default=2048, choices=(64, 192, 768, 2048), help='Inception feature size')
    p.add_argument('--device', help='cpu, cuda, cuda:1 (default: the best available)')
    p.add_argument('--seed', type=int, default=42, help='training seed')
    p.add_argument('--out', type=Path, help='keep the runs in OUT/runs and write OUT/quality.csv and OUT/quality.md')
    p.add_argument('--precision', default='fp32', choices=('fp32', 'bf16', 'fp16'), help='training precision (train --precision)')
    p.add_argument('--channels-last', action='store_true', help='channels-last memory (train --channels-last on)')
    p.add_argument('--compile', action='store_true', help='torch.compile both networks (train --compile on)')
    a = p.parse_args()
    preset = QUICK if a.quick else GPU
    kw = {k: getattr(a, k) if getattr(a, k) is not None else v for k, v in preset.items()}
    warnings.filterwarnings('ignore', category=FutureWarning)
    speed = {k: v for k, v in dict(precision=a.precision, channels_last=a.channels_last, compile=a.compile).items() if v not in ('fp32', False)}
    main(tuple(a.models.split(',')), a.data, a.test, a.size, dims=a.dims, device=a.device, seed=a.seed, out=a.out, **kw, **speed)
