"""Training overhead of our `dcgan` recipe (a fastai `GANLearner`) against a minimal hand-written PyTorch loop.

Both train the same DCGAN nets (same init, same seed) on the same data with the same batch size, Adam settings and number of
optimizer updates, alternating critic and generator updates as fastai's `GANTrainer` does (one batch per update). Prints both
times and the ratio ours/hand. `tests/test_benchmarks.py` checks that, fed the same batches, the two loops end with the same weights,
so the ratio compares equal work.

    python benchmarks/train_overhead.py [--size 32] [--bs 64] [--n-features 64] [--epochs 3] [--repeats 3]
"""
import argparse, time, torch
from fastgan_study.core import set_seed
from fastgan_study.data import gan_dls
from fastgan_study.models import gan_nets
from fastgan_study.losses import gan_crit_loss, nsgan_gen_loss
from fastgan_study.learner import gan_learner

def make_dls(size, bs, seed):
    set_seed(seed)
    return gan_dls('digits', size=size, bs=bs, device='cpu')

def ours(dls, epochs, n_features=64):
    "Train through the `dcgan` recipe; returns the learner."
    learn = gan_learner(dls, 'dcgan', n_features=n_features)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def tensor_batches(images, bs, nz):
    "One epoch of (noise, real) batches the way a hand-written loop makes them: a permutation and slices of one tensor."
    x = images.float() / 127.5 - 1
    perm = torch.randperm(len(x))
    for i in range(0, len(x) - bs + 1, bs): yield torch.randn(bs, nz), x[perm[i:i+bs]]

def hand(epochs, batches, size, n_channels, nz=100, n_features=64, lr=2e-4, betas=(0.5, 0.999)):
    "A minimal PyTorch GAN loop: `batches()` gives one epoch of (noise, real); returns (G, D)."
    G, D = gan_nets('dcgan', size, n_channels, nz, n_features)
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

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def main(size=32, bs=64, n_features=64, epochs=3, repeats=3, seed=0):
    dls = make_dls(size, bs, seed)
    x = dls.images.images
    updates = epochs * len(dls.train)
    t_ours, t_hand = [], []
    for _ in range(repeats):   # alternate, and keep each side's best, so both see the same machine load
        t_ours.append(timed(lambda: ours(make_dls(size, bs, seed), epochs, n_features)))
        set_seed(seed)
        t_hand.append(timed(lambda: hand(epochs, lambda: tensor_batches(x, bs, 100), size, x.shape[1], n_features=n_features)))
    o, h = min(t_ours), min(t_hand)
    print(f"DCGAN {size}x{size}, bs {bs}, n_features {n_features}, {updates} optimizer updates, {torch.get_num_threads()} threads, CPU")
    print(f"ours (dcgan recipe, fastai GANLearner): {o:7.2f} s  ({1000*o/updates:.1f} ms/update)")
    print(f"hand-written PyTorch loop:              {h:7.2f} s  ({1000*h/updates:.1f} ms/update)")
    print(f"ratio ours/hand: {o/h:.3f}")
    return o / h

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=32); p.add_argument('--bs', type=int, default=64)
    p.add_argument('--n-features', type=int, default=64); p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3)
    a = p.parse_args()
    main(a.size, a.bs, a.n_features, a.epochs, a.repeats)
