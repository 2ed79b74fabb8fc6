"GAN losses: closed forms, gradients, the gradient penalty, AC-GAN, label tricks, labels through both networks, one WGAN-GP training run."
import math
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastai.vision.gan import GANLearner, GANModule, basic_generator, basic_critic
from fastgan_study.core import FastGANError
from fastgan_study.losses import (LOSSES, GANLossWithTricks, KeepReal, gan_loss, gradient_penalty, critic_targets, gan_crit_loss,
                                  nsgan_gen_loss, minimax_gen_loss)

N_CLASSES, NZ = 3, 4

class CondG(nn.Module):
    "Conditional linear generator (noise + one-hot label → 1×4×4) that records the labels it gets."
    def __init__(self, msg=False):
        super().__init__(); self.nz, self.n_classes, self.out_range, self.msg, self.seen = NZ, N_CLASSES, (-1, 1), msg, []
        self.lin = nn.Linear(NZ + N_CLASSES, 16)
    def forward(self, z, labels):
        self.seen.append(labels)
        x = self.lin(torch.cat([z, F.one_hot(labels, N_CLASSES).float()], 1)).tanh().view(-1, 1, 4, 4)
        return [F.avg_pool2d(x, 2), x] if self.msg else x

class CondD(nn.Module):
    "Conditional linear critic (image + label embedding); `aux` adds class logits; accepts an MSG-GAN list."
    def __init__(self, aux=False, output='logit'):
        super().__init__(); self.n_classes, self.aux, self.output, self.seen = N_CLASSES, aux, output, []
        self.lin, self.emb = nn.Linear(16 + 4, 1 + N_CLASSES * aux), nn.Embedding(N_CLASSES, 1 + N_CLASSES * aux)
    def forward(self, x, labels):
        self.seen.append(labels)
        xs = x if isinstance(x, list) else [F.avg_pool2d(x, 2), x]
        out = self.lin(torch.cat([t.flatten(1) for t in xs], 1)) + self.emb(labels)
        return torch.sigmoid(out) if self.output == 'prob' else out

def batch(n=8):
    return torch.rand(n, 1, 4, 4) * 2 - 1, torch.randn(n, NZ), torch.arange(n) % N_CLASSES

@pytest.mark.parametrize('shape', [(6,), (6, 1)])
def test_closed_forms(shape):
    r, f = torch.full(shape, 2.), torch.full(shape, -1.)
    sp = lambda v: math.log1p(math.exp(v)) # softplus: BCE(ℓ, 0) = softplus(ℓ), BCE(ℓ, 1) = softplus(−ℓ)
    cases = {'bce': (sp(-2) + sp(-1), sp(1)), 'minimax': (sp(-2) + sp(-1), -sp(-1)), 'wgan': (3., -1.), 'wgan-gp': (3., -1.),
             'hinge': (0. + 0., 1.), 'lsgan': ((1 + 1) / 2, 4 / 2)}
    for name, (crit, gen) in cases.items():
        g, c = LOSSES[name]
        assert c(r, f).item() == pytest.approx(crit, abs=1e-6), name
        assert g(f).item() == pytest.approx(gen, abs=1e-6), name
    assert gan_crit_loss(torch.zeros(shape), torch.zeros(shape)).item() == pytest.approx(2 * math.log(2))
    assert LOSSES['hinge'][1](torch.zeros(shape), torch.zeros(shape)).item() == 2.
    assert LOSSES['lsgan'][1](torch.full(shape, .5), torch.full(shape, .5)).item() == pytest.approx(.25)

def test_prob_critic_matches_logits():
    l = torch.linspace(-4, 4, 9)
    assert gan_crit_loss(l.sigmoid(), l.flip(0).sigmoid(), from_probs=True).item() == pytest.approx(gan_crit_loss(l, l.flip(0)).item(), rel=1e-5)
    assert minimax_gen_loss(l.sigmoid(), from_probs=True).item() == pytest.approx(minimax_gen_loss(l).item(), rel=1e-5)
    loss = gan_loss('bce', GANModule(CondG(), CondD(output='prob')))
    x, z, y = batch()
    assert torch.isfinite(loss.critic(loss.gan_model.critic(x, y), z, y))
    with pytest.raises(FastGANError, match='outputs logits'): gan_loss('wgan', GANModule(CondG(), CondD(output='prob')))

def test_minimax_gradient_vanishes_when_critic_confident():
    def grad(f, v):
        p = torch.full((8,), v, requires_grad=True); f(p).backward(); return p.grad.abs().sum().item()
    assert grad(minimax_gen_loss, -8.) < 1e-3 < 0.99 < grad(nsgan_gen_loss, -8.)
    assert grad(minimax_gen_loss, 0.) == pytest.approx(grad(nsgan_gen_loss, 0.))

def test_gradient_penalty_on_linear_critics():
    real, fake = torch.randn(16, 1, 4, 4), torch.randn(16, 1, 4, 4)
    lin = nn.Linear(16, 1, bias=False)
    with torch.no_grad(): lin.weight /= lin.weight.norm()
    D = lambda x: lin(x.flatten(1))
    assert gradient_penalty(D, real, fake).item() == pytest.approx(0, abs=1e-6)
    with torch.no_grad(): lin.weight *= 2.5
    gp = gradient_penalty(D, real, fake)
    assert gp.item() == pytest.approx(1.5 ** 2, rel=1e-4)
    gp.backward() # create_graph=True: the penalty's gradient reaches the weights and shrinks ‖w‖ towards 1
    assert (lin.weight.grad * lin.weight).sum().item() == pytest.approx(2 * 1.5 * 2.5, rel=1e-3)

def test_gradient_penalty_msg_lists_and_labels():
    G, D = CondG(msg=True), CondD(aux=True)
    x, z, y = batch()
    loss = gan_loss('wgan-gp', GANModule(G, D), gp=10.)
    with pytest.raises(FastGANError, match='KeepReal'): loss.critic(D(x, y), z, y)
    loss.real, G.seen, D.seen = x, [], []
    crit = loss.critic(D(x, y), z, y)
    assert isinstance(loss.fake, list) and [f.shape[-1] for f in loss.fake] == [2, 4] and not loss.fake[1].requires_grad
    assert loss.last_gp.item() > 0 and not loss.last_gp.requires_grad
    crit.backward()
    assert D.lin.weight.grad.abs().sum() > 0
    assert all(s is y for s in G.seen + D.seen) # G once, D on real, fakes and interpolates
    assert len(D.seen) == 3

def test_ac_term_is_cross_entropy():
    G, D = CondG(), CondD(aux=True)
    x, z, y = batch()
    plain = GANLossWithTricks(*LOSSES['bce'], GANModule(G, D), aux_weight=0.)
    ac = GANLossWithTricks(*LOSSES['bce'], GANModule(G, D), aux_weight=0.7)
    real_pred = D(x, y)
    c0, c1 = plain.critic(real_pred, z, y), ac.critic(real_pred, z, y)
    fake_pred = D(ac.fake, y)
    expected = 0.7 * (F.cross_entropy(real_pred[:, 1:], y) + F.cross_entropy(fake_pred[:, 1:], y))
    assert (c1 - c0).item() == pytest.approx(expected.item(), rel=1e-5)
    fake = G(z, y)
    g1, g0 = ac.generator(fake, x, y), plain.generator(fake, x, y)
    assert (g1 - g0).item() == pytest.approx(0.7 * F.cross_entropy(D(fake, y)[:, 1:], y).item(), rel=1e-5)
    assert g0.item() == pytest.approx(nsgan_gen_loss(D(fake, y)[:, 0]).item(), rel=1e-6)
    with pytest.raises(FastGANError, match='needs class labels'): ac.generator(fake, x)

def test_labels_reach_both_networks():
    G, D = CondG(), CondD()
    x, z, y = batch()
    loss = gan_loss('hinge', GANModule(G, D))
    loss.generator(G(z, y), x, y)
    loss.critic(D(x, y), z, y)
    assert len(G.seen) == 2 and len(D.seen) == 3 and all(s is y for s in G.seen + D.seen)
    assert loss.gen_loss is not None and loss.crit_loss is not None

def critic_step(name, n=8, **kw):
    G, D = CondG(), CondD()
    x, z, y = batch(n)
    loss = gan_loss(name, GANModule(G, D), **kw)
    loss.critic(D(x, y), z, y)
    return loss

@pytest.mark.parametrize('name', ['bce', 'minimax', 'lsgan'])
def test_smoothing_changes_only_real_targets(name):
    loss = critic_step(name, smooth=0.2)
    assert torch.allclose(loss.last_targets['real'], torch.full((8,), 0.8)) and (loss.last_targets['fake'] == 0).all()
    G, D = loss.gan_model.generator, loss.gan_model.critic
    x, z, y = batch()
    torch.manual_seed(3); smoothed = loss.critic(D(x, y), z, y)
    torch.manual_seed(3); plain = gan_loss(name, loss.gan_model).critic(D(x, y), z, y)
    assert smoothed.item() != pytest.approx(plain.item())
    assert critic_step(name).last_targets is None

def test_label_noise_and_flips():
    a, b = 1., 9.
    loss = critic_step('bce', n=4000, label_noise=(a, b))
    real, fake = loss.last_targets['real'], loss.last_targets['fake']
    assert ((fake >= 0) & (fake <= 1) & (real >= 0) & (real <= 1)).all()
    assert fake.mean().item() == pytest.approx(a / (a + b), abs=0.01) and (1 - real).mean().item() == pytest.approx(a / (a + b), abs=0.01)
    loss = critic_step('lsgan', n=4000, flip=0.25)
    assert loss.last_targets['fake'].mean().item() == pytest.approx(0.25, abs=0.03)
    assert (1 - loss.last_targets['real']).mean().item() == pytest.approx(0.25, abs=0.03)
    real, fake = critic_targets(2000, smooth=0.1, flip=0.5)
    assert torch.allclose(real.unique(), torch.tensor([0., 0.9])) and torch.allclose(fake.unique(), torch.tensor([0., 0.9]))

@pytest.mark.parametrize('kw, match', [
    (dict(name='hinj'), "did you mean 'hinge'"),
    (dict(name='wgan', smooth=0.1), 'need a loss with targets'),
    (dict(name='wgan-gp', label_noise=(1, 9)), 'need a loss with targets'),
    (dict(name='hinge', flip=0.1), 'need a loss with targets'),
    (dict(name='bce', smooth=0.6), r'smooth must be in \[0, 0.5\]'),
    (dict(name='bce', smooth=-0.1), r'smooth must be in \[0, 0.5\]'),
    (dict(name='bce', flip=0.51), r'flip must be in \[0, 0.5\]'),
    (dict(name='bce', label_noise=(1, 0)), r'pair \(α, β\)'),
    (dict(name='bce', label_noise=0.1), r'pair \(α, β\)'),
    (dict(name='wgan-gp', gp=-1.), 'must be ≥ 0'),
    (dict(name='bce', aux_weight=-1.), 'must be ≥ 0')])
def test_bad_knobs(kw, match):
    name = kw.pop('name')
    with pytest.raises(FastGANError, match=match): gan_loss(name, GANModule(CondG(), CondD()), **kw)

def test_wgan_gp_trains_in_a_gan_learner():
    from fastgan_study.data import gan_dls
    torch.manual_seed(0)
    dls = gan_dls('digits', size=16, bs=8, classes=['7'], device='cpu')
    learn = GANLearner(dls, basic_generator(16, 1, 100, 8), basic_critic(16, 1, 8), *LOSSES['wgan'])
    learn.loss_func = gan_loss('wgan-gp', learn.model)
    learn.add_cb(KeepReal())
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-4)
    t = learn.gan_trainer
    assert len(t.crit_losses) > 0 and len(t.gen_losses) > 0
    assert all(math.isfinite(float(v)) for v in t.crit_losses + t.gen_losses)
    assert learn.loss_func.real is not None and learn.loss_func.last_gp.item() > 0
