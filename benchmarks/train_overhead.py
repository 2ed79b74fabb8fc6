"""Training overhead of our `dcgan` recipe (a fastai `GANLearner`) against a hand-written PyTorch loop and against raw fastai.

All three train the same DCGAN nets (same init, same seed) on the same data with the same batch size, Adam settings and number of
optimizer updates, alternating critic and generator updates one batch each:
- ours: `gan_learner(dls, 'dcgan')` (its `GANMetrics` and fit-table losses) with the `DivergenceGuard` `train` adds;
- hand: a minimal PyTorch loop over slices of one shuffled tensor on the device (`hand`);
- fastai: a stock `GANLearner` (fastai's `GANTrainer`, `Recorder`, `FixedGANSwitcher` and event dispatch) with the same nets and losses.
Each is warmed up for one epoch, then timed over `--epochs` (CUDA: synchronised); the best of `--repeats`, alternating, is kept.
Prints the three times, ms/update and the ratios ours/hand and fastai/hand (goal: ours ≤ 1.05× the hand loop).
`tests/test_benchmarks.py` checks that, fed the same batches, ours and the hand loop end with the same weights, so the ratio compares
equal work. `--modes` adds the precision table: ours in fp32, bf16, fp16, channels-last and compiled, images/s and peak memory.

    python benchmarks/train_overhead.py                    # CPU: 32×32, bs 64, width 64 (the issue's CPU setting)
    python benchmarks/train_overhead.py --device cuda      # GPU: 64×64, bs 128, width 64 (the issue's GPU setting)
    python benchmarks/train_overhead.py --device cuda --modes
"""
import argparse, time, torch
from fastai.learner import Learner
from fastai.vision.gan import GANLearner, FixedGANSwitcher
from fastgan_study.core import set_seed
from fastgan_study.data import gan_dls
from fastgan_study.models import gan_nets
from fastgan_study.losses import gan_crit_loss, nsgan_gen_loss
from fastgan_study.learner import gan_learner, torch_opt
from fastgan_study.callbacks import DivergenceGuard

def make_dls(size, bs, seed, device='cpu', data='digits'):
    set_seed(seed)
    return gan_dls(data, size=size, bs=bs, device=device)

def ours(dls, epochs, n_features=64, **speed):
    "Train through the `dcgan` recipe with train's per-batch callbacks (and `gan_learner`'s speed switches); returns the learner."
    learn = gan_learner(dls, 'dcgan', n_features=n_features, cbs=[DivergenceGuard()], **speed)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

class RawGANLearner(GANLearner):
    "A stock fastai `GANLearner`: fastai's own event dispatch (our package sorts callbacks once; this one sorts at every event)."
    _call_one = Learner._call_one

def raw_fastai(dls, epochs, n_features=64, lr=2e-4, betas=(0.5, 0.999)):
    "The same nets, losses and optimizer in a stock fastai `GANLearner`; returns the learner."
    x = dls.images.images
    G, D = gan_nets('dcgan', x.shape[-1], x.shape[1], dls.noise.nz, n_features)
    learn = RawGANLearner(dls, G, D, lambda fake_pred, output, target: nsgan_gen_loss(fake_pred), gan_crit_loss,
                          switcher=FixedGANSwitcher(n_crit=1, n_gen=1), opt_func=torch_opt('adam', betas), lr=lr, switch_eval=False, show_img=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def tensor_batches(images, bs, nz, device='cpu'):
    "One epoch of (noise, real) batches the way a hand-written loop makes them: a permutation and slices of one tensor on the device."
    x = images.to(device).float() / 127.5 - 1
    perm = torch.randperm(len(x), device=device)
    for i in range(0, len(x) - bs + 1, bs): yield torch.randn(bs, nz, device=device), x[perm[i:i+bs]]

def hand(epochs, batches, size, n_channels, nz=100, n_features=64, lr=2e-4, betas=(0.5, 0.999), device='cpu'):
    "A minimal PyTorch GAN loop: `batches()` gives one epoch of (noise, real); returns (G, D)."
    G, D = (m.to(device) for m in gan_nets('dcgan', size, n_channels, nz, n_features))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr, betas=betas), torch.optim.Adam(D.parameters(), lr, betas=betas)
    gen_mode = False   # one critic step, one generator step, alternating across epoch boundaries (our BalanceSwitcher)
    for epoch in range(epochs):
        for z, real in batches():
            if gen_mode:
                loss = nsgan_gen_loss(D(G(z)))
                opt_g.zero_grad(set_to_none=True); loss.backward(); opt_g.step()
            else:
                with torch.no_grad(): fake = G(z)
                loss = gan_crit_loss(D(real), D(fake))
                opt_d.zero_grad(set_to_none=True); loss.backward(); opt_d.step()
            gen_mode = not gen_mode
    return G, D

def _sync(device):
    if str(device).startswith('cuda'): torch.cuda.synchronize()

def timed(f, device='cpu'):
    "Seconds `f()` takes, the device's queued work included; and the peak device memory (bytes; CPU: None)."
    cuda = str(device).startswith('cuda')
    if cuda: torch.cuda.reset_peak_memory_stats()
    _sync(device); t = time.perf_counter(); f(); _sync(device)
    return time.perf_counter() - t, torch.cuda.max_memory_allocated() if cuda else None

def main(size=32, bs=64, n_features=64, epochs=3, repeats=3, seed=0, device='cpu', data='digits', modes=False):
    dls = make_dls(size, bs, seed, device, data)
    x, updates = dls.images.images, epochs * len(dls.train)
    fit_ours = lambda: ours(make_dls(size, bs, seed, device, data), epochs, n_features)
    fit_fastai = lambda: raw_fastai(make_dls(size, bs, seed, device, data), epochs, n_features)
    fit_hand = lambda: (set_seed(seed), hand(epochs, lambda: tensor_batches(x, bs, 100, device), size, x.shape[1], n_features=n_features, device=device))
    for f in (lambda: ours(make_dls(size, bs, seed, device, data), 1, n_features), fit_hand): f()   # warm up: kernels, caches, allocator
    t = {k: [] for k in ('ours', 'fastai', 'hand')}
    for _ in range(repeats):   # alternate, and keep each side's best, so all see the same machine load
        for k, f in (('ours', fit_ours), ('hand', fit_hand), ('fastai', fit_fastai)): t[k].append(timed(f, device)[0])
    o, h, r = (min(t[k]) for k in ('ours', 'hand', 'fastai'))
    where = torch.cuda.get_device_name() if str(device).startswith('cuda') else f"CPU, {torch.get_num_threads()} threads"
    print(f"DCGAN {size}x{size}, bs {bs}, n_features {n_features}, {data}, {updates} optimizer updates, {where}")
    print(f"ours (dcgan recipe + train's per-batch callbacks): {o:7.2f} s  ({1000*o/updates:.2f} ms/update)")
    print(f"hand-written PyTorch loop:                         {h:7.2f} s  ({1000*h/updates:.2f} ms/update)")
    print(f"raw fastai GANLearner:                             {r:7.2f} s  ({1000*r/updates:.2f} ms/update)")
    print(f"ratio ours/hand: {o/h:.3f}   fastai/hand: {r/h:.3f}   ours/fastai: {o/r:.3f}")
    if modes: precision_table(size, bs, n_features, epochs, seed, device, data, updates)
    return o / h

MODES = [('fp32', {}), ('bf16', dict(precision='bf16')), ('fp16', dict(precision='fp16')),
         ('fp32 channels-last', dict(channels_last=True)), ('bf16 channels-last', dict(precision='bf16', channels_last=True)),
         ('fp32 compiled', dict(compile=True)), ('bf16 channels-last compiled', dict(precision='bf16', channels_last=True, compile=True))]

def precision_table(size, bs, n_features, epochs, seed, device, data, updates):
    "Ours in each precision / memory / compile mode: images/s through the updates, peak memory, speed relative to fp32 (Markdown)."
    print("\n| mode | s | images/s | peak memory | × fp32 |\n|---|---:|---:|---:|---:|")
    base, cpu = None, not str(device).startswith('cuda')
    for name, kw in MODES:
        if cpu and kw.get('precision') == 'fp16':   # CPUs have no fast fp16 convolutions: minutes per epoch (7x fp32 on tiny nets)
            print(f"| {name} | — | — | — | skipped on the CPU |"); continue
        learn = ours(make_dls(size, bs, seed, device, data), 1, n_features, **kw)          # the first epoch compiles
        with learn.no_bar(), learn.no_logging(): s, mem = timed(lambda: learn.fit(epochs), device)
        base = base or s
        m = f"{mem / 2**20:,.0f} MiB" if mem is not None else "—"
        print(f"| {name} | {s:.2f} | {updates * bs / s:,.0f} | {m} | {base / s:.2f} |")

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cpu'); p.add_argument('--data', default='digits')
    p.add_argument('--size', type=int); p.add_argument('--bs', type=int)
    p.add_argument('--n-features', type=int, default=64); p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3); p.add_argument('--modes', action='store_true', help='also the precision table')
    a = p.parse_args()
    gpu = a.device.startswith('cuda')
    main(a.size or (64 if gpu else 32), a.bs or (128 if gpu else 64), a.n_features, a.epochs, a.repeats, device=a.device, data=a.data, modes=a.modes)
