"""Quality parity: does our `dcgan` recipe, trained through fastai's `GANLearner` and our callbacks, learn as well as PyTorch's hand-written DCGAN?

Two sides, trained on the MNIST training split for the same number of optimizer updates, `--seeds` seeds each (0, 1, …):

- canonical: PyTorch examples' dcgan/main.py (github.com/pytorch/examples/blob/main/dcgan/main.py) written out as a loop (`train_canonical`):
  Adam(2e-4, betas (0.5, 0.999)) per network, BCELoss on a sigmoid output, batch 128, nz 100, N(0, 1) noise, per batch one D step on
  real (label 1) + fake (label 0), then one G step with label 1 on the same fake; `weights_init` (conv N(0, 0.02), BatchNorm weight
  N(1, 0.02), bias 0); shuffled batches with the last, short one kept (a DataLoader's default). Its nets are main.py's adapted to
  32×32 by one layer fewer: G = ConvT(nz→4w, 4×4) → ConvT(4w→2w) → ConvT(2w→w) → ConvT(w→1) + tanh, D = Conv(1→w) → Conv(w→2w) →
  Conv(2w→4w) → Conv(4w→1, 4×4) + sigmoid, BatchNorm and ReLU / LeakyReLU(0.2) as in main.py, no biases.
- ours: `gan_learner(gan_dls(...), 'dcgan')` fitted with the `DivergenceGuard` that `train` adds (`train_ours`). fastai's switcher spends
  one batch per network step, so ours fits 2 × updates batches; the counts in `learn.gan_metrics` are asserted equal to the canonical's.

The same nets on both sides (--nets): our `dcgan` nets at 32×32 have main.py's layers but a bias in D's first convolution and in G's
last (65 parameters more at width 64). 'canonical' (default) puts main.py's nets on both sides (ours gets them as the bodies of its
`Generator` / `Critic`, D without its sigmoid: our loss takes logits, BCE with logits = BCELoss of the sigmoid); 'ours' gives both sides
`gan_nets('dcgan')` (the canonical loop adds the sigmoid). The script asserts equal parameter counts.

Data on both sides: `load_images(mnist.npz, size=32)` (28→32 bilinear with antialias, rounded to uint8), scaled x/127.5 − 1 into [-1, 1]
(`core.to_signed`, main.py's Normalize(0.5, 0.5)). Scores of each final generator, against the first N images of the test split:
Inception FID (pytorch-fid's weights, pool3, N generated vs N test; below N = 2048 allow_few, the covariance is rank-deficient and FID
biased upward: compare sides at one N only) and the domain LeNet's scores (`domain.domain_scores`, trained on the training split): domain
FD, domain IS (10: perfect, balanced digits) and modes (classes covered). Each side is sampled as it samples itself: ours in eval mode
(BatchNorm running statistics, as `learn.sample` and every fastgan_study score), the canonical with BatchNorm batch statistics over
batches of --bs (main.py never calls eval). A cross-check scores domain FD of both sides in both modes.

Prints per-seed rows, then mean ± std per side, ours − canonical with its 95% Welch-t confidence interval, and a verdict.
--quick is a CPU smoke preset (width 16, 20 updates, 2 seeds, N 64): it shows the pipeline works, not who is better.

    python benchmarks/quality_parity.py [--quick] [--updates U] [--seeds S] [--n N] [--n-features W] [--bs B] [--nets canonical|ours]
                                        [--dims 2048|0] [--device cuda] [--data ../shared/data/mnist.npz] [--out DIR]
    python benchmarks/quality_parity.py --updates 10000 --seeds 3 --n 10000 --device cuda          # the full budget (a GPU)
    OMP_NUM_THREADS=1 python benchmarks/quality_parity.py --updates 300 --seeds 3 --n 500          # ~30 min on a shared 2-core CPU
(on a CPU shared with other jobs one torch thread trained 3× faster than two here: 0.86 against 2.8 s per update at width 64)
"""
import argparse, copy, csv, math, time, warnings
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from scipy import stats
from fastai.callback.core import Callback, CancelTrainException
from fastgan_study.core import FastGANError, set_seed, device_name, to_signed, signed_to_uint8
from fastgan_study.data import gan_dls, load_images
from fastgan_study.models import gan_nets, count_params
from fastgan_study.learner import gan_learner
from fastgan_study.callbacks import DivergenceGuard
from fastgan_study.domain import domain_classifier, domain_scores
from fastgan_study.metrics import InceptionFeatures, measure, real_features
from quality import MNIST, first, real_row

FULL = dict(updates=10_000, seeds=3, n=10_000, n_features=64, bs=128)   # the GPU budget: main.py's ~21 epochs of MNIST
QUICK = dict(updates=20, seeds=2, n=64, n_features=16, bs=128)
SIDES = ('canonical', 'ours')
SCORES = dict(fid=('Inception FID', -1), domain_fd=('domain FD', -1), domain_is=('domain IS', 1), modes=('modes', 1))  # (label, +1: higher is better)

def weights_init(m):
    "main.py's initialisation: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02) and biases 0."
    if 'Conv' in type(m).__name__: nn.init.normal_(m.weight, 0.0, 0.02)
    elif 'BatchNorm' in type(m).__name__: nn.init.normal_(m.weight, 1.0, 0.02); nn.init.zeros_(m.bias)

def canonical_nets(nc=1, nz=100, nf=64):
    "main.py's netG and netD with one layer fewer (32×32): (G taking (n, nz, 1, 1) noise, D ending in a sigmoid), initialised."
    G = nn.Sequential(nn.ConvTranspose2d(nz, nf*4, 4, 1, 0, bias=False), nn.BatchNorm2d(nf*4), nn.ReLU(True),       # 4×4
                      nn.ConvTranspose2d(nf*4, nf*2, 4, 2, 1, bias=False), nn.BatchNorm2d(nf*2), nn.ReLU(True),     # 8×8
                      nn.ConvTranspose2d(nf*2, nf, 4, 2, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU(True),         # 16×16
                      nn.ConvTranspose2d(nf, nc, 4, 2, 1, bias=False), nn.Tanh())                                   # 32×32
    D = nn.Sequential(nn.Conv2d(nc, nf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),                     # 16×16
                      nn.Conv2d(nf, nf*2, 4, 2, 1, bias=False), nn.BatchNorm2d(nf*2), nn.LeakyReLU(0.2, inplace=True),
                      nn.Conv2d(nf*2, nf*4, 4, 2, 1, bias=False), nn.BatchNorm2d(nf*4), nn.LeakyReLU(0.2, inplace=True),
                      nn.Conv2d(nf*4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return G.apply(weights_init), D.apply(weights_init)

def bodies(nets='canonical', nc=1, nz=100, nf=64, size=32):
    "Freshly initialised (generator: (n, nz) noise → images, critic: images → (n, 1) logits) of the chosen structure."
    if nets == 'ours':
        G, D = gan_nets('dcgan', size, nc, nz, nf)
        return G.body, D.body
    if nets != 'canonical': raise FastGANError(f"nets must be canonical or ours, not {nets!r}")
    if size != 32: raise FastGANError(f"the canonical nets are main.py's adapted to 32×32, not {size}×{size}: use --nets ours")
    G, D = canonical_nets(nc, nz, nf)
    return nn.Sequential(nn.Unflatten(1, (nz, 1, 1)), *G), nn.Sequential(*D[:-1], nn.Flatten())

def train_canonical(train_set, # `ImageSet` of the training split (uint8)
                    updates:int, # generator (and critic) updates
                    nets='canonical', n_features=64, bs=128, nz=100, lr=2e-4, beta1=0.5, seed=0, device='cpu'):
    "PyTorch examples' dcgan/main.py loop; returns a dict with the generator (on (n, nz) noise), parameter counts, updates and seconds."
    torch.manual_seed(seed)
    G, D = bodies(nets, train_set.images.shape[1], nz, n_features, train_set.images.shape[-1])
    G, D = G.to(device), nn.Sequential(*D, nn.Sigmoid()).to(device)          # main.py's D outputs probabilities for BCELoss
    criterion = nn.BCELoss()
    optD, optG = (torch.optim.Adam(m.parameters(), lr=lr, betas=(beta1, 0.999)) for m in (D, G))
    x, g_up, d_up, t = train_set.images.to(device), 0, 0, time.perf_counter()
    while g_up < updates:
        for idx in torch.randperm(len(x)).split(bs):                           # shuffle=True, last short batch kept
            if g_up == updates: break
            real = to_signed(x[idx.to(device)])
            D.zero_grad()                                                      # (1) D: log D(x) + log(1 − D(G(z)))
            label = torch.full((len(real),), 1., device=device)
            errD_real = criterion(D(real).view(-1), label); errD_real.backward()
            fake = G(torch.randn(len(real), nz, device=device))
            label.fill_(0.)
            errD_fake = criterion(D(fake.detach()).view(-1), label); errD_fake.backward()
            optD.step(); d_up += 1
            G.zero_grad()                                                      # (2) G: log D(G(z)), on the same fake
            label.fill_(1.)
            errG = criterion(D(fake).view(-1), label); errG.backward()
            optG.step(); g_up += 1
    if str(device).startswith('cuda'): torch.cuda.synchronize()
    return dict(G=G, gen_params=count_params(G), crit_params=count_params(D), gen_updates=g_up, crit_updates=d_up,
                train_s=time.perf_counter() - t, diverged='')

class UpdateBudget(Callback):
    "End training after `batches` training batches (the last epoch is cut short), so a fit makes an exact number of updates."
    order = 100
    def __init__(self, batches:int): self.batches = batches
    def before_fit(self): self.done = 0
    def after_batch(self):
        if not self.training: return
        self.done += 1
        if self.done >= self.batches: raise CancelTrainException

def train_ours(data, # the data source (the .npz), as `gan_dls` takes it
               updates:int, nets='canonical', n_features=64, bs=128, nz=100, seed=0, device='cpu'):
    "The `dcgan` recipe through `gan_learner` + fit, with `train`'s `DivergenceGuard`; the same dict as `train_canonical` (and the learner)."
    set_seed(seed)                                                             # as `train` does, before the data and the nets
    dls = gan_dls(data, size=32, bs=bs, nz=nz, device=device)
    learn = gan_learner(dls, 'dcgan', n_features=n_features)
    if nets == 'canonical': learn.model.generator.body, learn.model.critic.body = bodies(nets, dls.images.images.shape[1], nz, n_features)
    batches = 2 * updates                                                      # one batch per network step, alternating
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(math.ceil(batches / len(dls.train)), cbs=[DivergenceGuard(), UpdateBudget(batches)])
    if str(device).startswith('cuda'): torch.cuda.synchronize()
    last = learn.gan_metrics.rows[-1]
    return dict(G=learn.model.generator, gen_params=count_params(learn.model.generator), crit_params=count_params(learn.model.critic),
                gen_updates=last['gen_updates'], crit_updates=last['crit_updates'], train_s=time.perf_counter() - t,
                diverged=(learn.diverged or {}).get('message', ''), learn=learn)

@torch.no_grad()
def generated(G:nn.Module, # a generator of (n, nz) noise → images in [-1, 1]
              n:int, nz:int=100, seed:int=0,
              bn:str='eval', # 'eval': BatchNorm running statistics; 'batch': statistics of each batch of `bs` (train mode)
              bs:int=128):
    "`n` uint8 images from noise seeded with `seed`; `G` itself (mode, running statistics) is left untouched."
    if bn not in ('eval', 'batch'): raise FastGANError(f"bn must be eval or batch, not {bn!r}")
    G = copy.deepcopy(G).train(bn == 'batch')                                  # batch statistics would move a copy's running ones only
    z, dev = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed)), next(G.parameters()).device
    return torch.cat([signed_to_uint8(G(z[i:i + bs].to(dev))).cpu() for i in range(0, n, bs)])

NATURAL = dict(canonical='batch', ours='eval')   # how each side samples itself

def score(run:dict, side:str, test, clf, extractor=None, n:int=1000, nz:int=100, bs:int=128):
    "Scores of one trained generator: Inception FID (when `extractor`), domain FD / IS / modes, and domain FD in the other BatchNorm mode."
    t, out = time.perf_counter(), {}
    for bn in ('eval', 'batch'):
        x = generated(run['G'], n, nz, seed=0, bn=bn, bs=bs)
        dom = domain_scores(test, x, classifier=clf, allow_few=n < clf.dims)
        out[f'domain_fd_{bn}'] = dom['domain_fd'].value
        if bn != NATURAL[side]: continue
        out.update(domain_fd=dom['domain_fd'].value, domain_is=dom['domain_is'].value, modes=dom['modes'].value, fid=math.nan)
        if extractor is not None: out['fid'] = measure(test, x, scores=('fid',), extractor=extractor, allow_few=n < extractor.dims)['fid'].value
    return dict(out, score_s=time.perf_counter() - t)

def welch(ours, canon, level=0.95):
    "ours − canonical: (difference of means, CI low, CI high, p) from Welch's t (unequal variances)."
    a, b = np.asarray(ours, float), np.asarray(canon, float)
    d, va, vb = a.mean() - b.mean(), a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0: return d, d, d, (1. if d == 0 else 0.)
    df = (va + vb)**2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    h = stats.t.ppf((1 + level) / 2, df) * se
    return d, d - h, d + h, float(stats.ttest_ind(a, b, equal_var=False).pvalue)

def verdict(lo, hi, sign):
    "Within noise when the CI holds 0; else better or worse for ours, by the score's direction (`sign` +1: higher is better)."
    if lo <= 0 <= hi: return 'within noise'
    return 'ours better' if (lo > 0) == (sign > 0) else 'ours worse'

def _ms(v): return f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"

def summary(rows, keys=None):
    "Markdown table: per score, mean ± std per side, ours − canonical with its 95% Welch CI, p and verdict; and the rows as dicts."
    keys = keys or [k for k in SCORES if not all(math.isnan(r[k]) for r in rows)]
    lines = ['| score | canonical (mean ± std) | ours (mean ± std) | ours − canonical | 95% CI (Welch t) | p | verdict |', '|---|---|---|---|---|---|---|']
    out = []
    for k in keys:
        label, sign = SCORES.get(k, (k, -1))
        v = {s: [r[k] for r in rows if r['side'] == s] for s in SIDES}
        d, lo, hi, p = welch(v['ours'], v['canonical'])
        out.append(dict(score=k, diff=d, lo=lo, hi=hi, p=p, verdict=verdict(lo, hi, sign)))
        lines.append(f"| {label} | {_ms(v['canonical'])} | {_ms(v['ours'])} | {d:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {p:.3f} | {out[-1]['verdict']} |")
    return '\n'.join(lines), out

COLUMNS = ('side', 'seed', 'fid', 'domain_fd', 'domain_is', 'modes', 'domain_fd_eval', 'domain_fd_batch', 'gen_updates', 'crit_updates',
           'gen_params', 'crit_params', 'train_s', 'score_s', 'diverged')

def _cell(k, v):
    if isinstance(v, float): return '—' if math.isnan(v) else f"{v:.1f}" if k.endswith('_s') else f"{v:.3f}"
    return str(v) if v != '' else '—'

def per_seed(rows):
    "The per-seed rows as a Markdown table."
    return '\n'.join(['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)] + ['| ' + ' | '.join(_cell(c, r[c]) for c in COLUMNS) + ' |' for r in rows])

def main(updates=10_000, seeds=3, n=10_000, n_features=64, bs=128, nets='canonical', dims=2048, device=None, data=MNIST, out=None,
         classifier=None): # a trained `DomainClassifier` (None: trained, or loaded from the cache, on the training split)
    "Train both sides `seeds` times for `updates` updates, score them, print the tables; returns (per-seed rows, summary rows, text)."
    if seeds < 2: raise FastGANError(f"--seeds {seeds}: a spread and a confidence interval need at least 2 seeds per side")
    device, t0 = device_name(device), time.perf_counter()
    train_set = load_images(data, size=32, split='train')
    test = first(load_images(data, size=32, n_channels=train_set.images.shape[1], split='test'), n)
    if len(test) < n: raise FastGANError(f"the test split of {data} has {len(test)} images, fewer than --n {n}: lower --n")
    clf = classifier or domain_classifier(train_set)
    extractor = InceptionFeatures(dims, device=device) if dims else None
    if extractor is not None: real_features(test, extractor)                # the reference side once (and cached)
    rows = []
    for seed in range(seeds):
        for side in SIDES:                                                     # alternate sides: both see the same machine load
            run = (train_canonical(train_set, updates, nets, n_features, bs, seed=seed, device=device) if side == 'canonical' else
                   train_ours(data, updates, nets, n_features, bs, seed=seed, device=device))
            rows.append(dict(side=side, seed=seed, **{k: v for k, v in run.items() if k not in ('G', 'learn')},
                             **score(run, side, test, clf, extractor, n, bs=bs)))
            print(f"seed {seed} {side:9}: {run['gen_updates']} G / {run['crit_updates']} D updates in {run['train_s']:.1f} s, "
                  f"FID {rows[-1]['fid']:.2f}, domain FD {rows[-1]['domain_fd']:.2f} (eval {rows[-1]['domain_fd_eval']:.2f}, batch {rows[-1]['domain_fd_batch']:.2f})", flush=True)
    for k in ('gen_params', 'crit_params', 'gen_updates', 'crit_updates'):
        got = {r[k] for r in rows if not r['diverged']}
        assert len(got) == 1, f"the sides differ in {k}: {got}"
    floor = real_row(train_set, test, clf, extractor, n, draws=1) if extractor else None
    table, summ = summary(rows)
    cross, cross_summ = summary(rows, ['domain_fd_eval', 'domain_fd_batch'])
    r0, where = rows[0], (torch.cuda.get_device_name(torch.device(device)) if device.startswith('cuda') else f"CPU, {torch.get_num_threads()} threads")
    mean_s = {s: np.mean([r['train_s'] for r in rows if r['side'] == s]) for s in SIDES}
    fid_note = (f"Inception FID: pool3 ({dims}-d), {n} generated vs the first {n} test images" +
                (f" — N < {dims}: allow_few, FID biased upward at this N (compare the sides, not with published FIDs)" if n < dims else '')
                if extractor else "Inception FID: off (--dims 0)")
    text = '\n'.join([
        f"Quality parity, {Path(str(data)).name} 32×32 (28→32 bilinear + antialias, uint8, then x/127.5 − 1 on both sides), {nets} nets on both "
        f"sides (width {n_features}: G {r0['gen_params']:,} / D {r0['crit_params']:,} parameters), batch {bs}, nz 100, Adam 2e-4 (0.5, 0.999), BCE; "
        f"{updates} generator and {updates} critic updates per run, seeds 0..{seeds - 1} per side; device {device} ({where})",
        f"{fid_note}; domain scores: {clf.name} (held-out accuracy {clf.accuracy:.4f}), {n} images; sampling: ours in eval mode (BatchNorm "
        f"running statistics, as learn.sample), canonical with batch statistics over batches of {bs} (main.py never calls eval)",
        f"train s per run: canonical {mean_s['canonical']:.1f}, ours {mean_s['ours']:.1f} (ours/canonical {mean_s['ours'] / mean_s['canonical']:.2f}); "
        f"total wall {time.perf_counter() - t0:.0f} s",
        f"Floor: {n} training images scored like a generator: FID {floor['fid']:.3f}, domain FD {floor['domain_fd']:.3f}, domain IS "
        f"{floor['domain_is']:.3f}, modes {floor['modes']}" if floor else "Floor: not measured (Inception off)", '', per_seed(rows), '', table, '',
        "Cross-check: domain FD of both sides sampled both ways (eval: running statistics; batch: batch statistics)", '', cross, '',
        "Verdict (Inception FID): " + next((s['verdict'] for s in summ if s['score'] == 'fid'), 'not measured') +
        "; (domain FD): " + next(s['verdict'] for s in summ if s['score'] == 'domain_fd'),
        f"Full budget on a GPU: python benchmarks/quality_parity.py --updates {FULL['updates']} --seeds {FULL['seeds']} --n {FULL['n']} --device cuda"])
    print(text)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out)/'parity.md').write_text(text + '\n')
        with open(Path(out)/'parity.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS); w.writeheader(); w.writerows([{c: r[c] for c in COLUMNS} for r in rows])
    return rows, summ + cross_summ, text

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='CPU smoke preset: width 16, 20 updates, 2 seeds, N 64')
    p.add_argument('--updates', type=int, help=f"generator (= critic) updates per run (default {FULL['updates']})")
    p.add_argument('--seeds', type=int, help=f"seeds per side, 0..S-1 (default {FULL['seeds']})")
    p.add_argument('--n', type=int, help=f"generated and test images scored (default {FULL['n']})")
    p.add_argument('--n-features', type=int, help='width of both networks (default 64)')
    p.add_argument('--bs', type=int, help='batch size (default 128)')
    p.add_argument('--nets', default='canonical', choices=('canonical', 'ours'), help="both sides' networks: main.py's (default) or our dcgan nets")
    p.add_argument('--dims', type=int, default=2048, choices=(0, 64, 192, 768, 2048), help='Inception feature size (0: domain scores only)')
    p.add_argument('--device', help='cpu, cuda, cuda:1 (default: the best available)')
    p.add_argument('--data', default=str(MNIST), help='an .npz with x_train/y_train/x_test/y_test (MNIST)')
    p.add_argument('--out', type=Path, help='write OUT/parity.md and OUT/parity.csv')
    a = p.parse_args()
    kw = {k: getattr(a, k) if getattr(a, k) is not None else v for k, v in (QUICK if a.quick else FULL).items()}
    warnings.filterwarnings('ignore', category=FutureWarning)
    warnings.filterwarnings('ignore', message='You are shadowing an attribute')   # fastai's GANTrainer, at every fit
    main(**kw, nets=a.nets, dims=a.dims, device=a.device, data=a.data, out=a.out)
