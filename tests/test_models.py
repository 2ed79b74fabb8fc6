"Every architecture of `models`: shapes at every supported size and channel count, labels, class heads, option errors, one training step."
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastgan_study.core import FastGANError
from fastgan_study.models import ARCHS, gan_nets, generate, count_params, describe_nets, is_conditional, arch_options

NZ, W, K = 16, 8, 3   # noise size, width and number of classes of the small nets used here
SIZES = {'mlp': (16, 28, 32, 64), 'infogan': (16, 28, 32, 64), 'dcgan': (16, 28, 32, 64), 'sngan': (16, 28, 32, 64),
         'dcgan28': (28,), 'msggan': (16, 28, 32, 64), 'basic': (16, 32, 64), 'fastai': (16, 32, 64),
         'cdcgan': (16, 28, 32, 64), 'cdcgan-embed': (16, 28, 32, 64), 'cgan': (16, 28, 32, 64)}
UNSUPPORTED = {'infogan': 30, 'dcgan': 30, 'dcgan28': 32, 'msggan': 24 * 3, 'basic': 28, 'fastai': 8, 'cdcgan': 30}

def test_every_arch_listed(): assert sorted(SIZES) == sorted(ARCHS)

def nets(arch, size=16, n_channels=1, n_features=W, **options):
    "Small nets of `arch`, with K classes when it is conditional."
    return gan_nets(arch, size, n_channels, NZ, n_features, n_classes=K if is_conditional(arch) or options.get('aux') else 0, **options)

def batch(G, n=4, size=16, n_channels=1):
    "Noise, real-looking images in [-1, 1] and the label args (empty for an unconditional G)."
    y = torch.arange(n) % K
    return torch.randn(n, NZ), torch.rand(n, n_channels, size, size) * 2 - 1, ((y,) if G.n_classes else ())

def last(out): return out[-1] if isinstance(out, list) else out

@pytest.mark.parametrize('arch,size,n_channels', [(a, s, c) for a, ss in SIZES.items() for s in ss for c in (1, 3)])
def test_shapes(arch, size, n_channels):
    G, D = nets(arch, size, n_channels)
    z, x, labels = batch(G, 2, size, n_channels)
    fake = G(z, *labels)
    assert last(fake).shape == (2, n_channels, size, size)
    assert D(fake, *labels).shape == (2,) and D(x, *labels).shape == (2,)
    assert (G.nz, G.n_classes, G.out_range) == (NZ, K if is_conditional(arch) else 0, (-1, 1))
    assert (D.n_classes, D.aux, D.output) == (K if is_conditional(arch) else 0, False, 'logit')

@pytest.mark.parametrize('arch', UNSUPPORTED)
def test_unsupported_size(arch):
    with pytest.raises(FastGANError, match=f'not {UNSUPPORTED[arch]}|cannot make {UNSUPPORTED[arch]}'): nets(arch, UNSUPPORTED[arch])

@pytest.mark.parametrize('arch', [a for a in ARCHS if is_conditional(a)])
def test_conditional_nets_use_labels(arch):
    G, D = nets(arch)
    z, x, (y,) = batch(G)
    G.eval(); D.eval()
    assert not torch.allclose(G(z, y), G(z, (y + 1) % K)) and not torch.allclose(D(x, y), D(x, (y + 1) % K))
    with pytest.raises(FastGANError, match=r'call it with \(z, labels\)'): G(z)
    with pytest.raises(FastGANError, match=r'call it with \(x, labels\)'): D(x)
    with pytest.raises(FastGANError, match='needs labelled data'): gan_nets(arch, 16, 1, NZ, W)

@pytest.mark.parametrize('arch', ARCHS)
def test_aux_head(arch):
    size = 28 if arch == 'dcgan28' else 16
    G, D = nets(arch, size, aux=True)
    z, x, labels = batch(G, size=size)
    assert G.n_classes == K and D.aux and labels   # an AC-GAN generator is conditional even when its critic is not
    G.eval(); D.eval()
    assert D(G(z, *labels), *labels).shape == (4, 1 + K)
    if not is_conditional(arch): assert torch.equal(D(x), D(x, *labels))   # a critic that only classifies ignores the labels it is given
    with pytest.raises(FastGANError, match='with aux=True needs labelled data' if not is_conditional(arch) else 'needs labelled data'): gan_nets(arch, size, 1, NZ, W, aux=True)

def test_unconditional_arch_ignores_n_classes():
    G, D = gan_nets('dcgan', 16, 1, NZ, W, n_classes=K)
    assert G.n_classes == 0 and D.n_classes == 0 and count_params(G) == count_params(gan_nets('dcgan', 16, 1, NZ, W)[0])
    with pytest.raises(FastGANError, match='unconditional'): G(torch.randn(2, NZ), torch.zeros(2, dtype=torch.long))

@pytest.mark.parametrize('size,n_scales', [(16, 3), (28, 3), (32, 4), (64, 5)])
def test_msggan_scales(size, n_scales):
    G, D = nets('msggan', size)
    G.eval(); D.eval()
    fakes = G(torch.randn(2, NZ))
    assert [f.shape[-1] for f in fakes] == [size >> (n_scales - 1 - i) for i in range(n_scales)]
    assert torch.allclose(D(fakes[-1]), D([F.avg_pool2d(fakes[-1], 2**i) for i in reversed(range(n_scales))]))
    for i in range(n_scales):   # the critic reads every scale the generator makes, the coarse ones included
        assert not torch.allclose(D(fakes), D([f + (j == i) for j, f in enumerate(fakes)]))
    with pytest.raises(FastGANError, match=f'takes {n_scales} scales'): D(fakes[1:])

@pytest.mark.parametrize('arch', ARCHS)
def test_param_counts_grow_with_width(arch):
    size = 28 if arch == 'dcgan28' else 16
    (G1, D1), (G2, D2) = nets(arch, size, n_features=8), nets(arch, size, n_features=16)
    p1, p2 = describe_nets(G1, D1), describe_nets(G2, D2)
    assert 0 < p1['generator_params'] < p2['generator_params'] and 0 < p1['critic_params'] < p2['critic_params']

def test_dcgan_switches():
    base = describe_nets(*nets('dcgan'))
    G, D = nets('dcgan', kernel=5, depth=2, dropout_critic=0.3, dropout_gen=0.2, bn_gen=False, bn_critic=False)
    assert G(torch.randn(2, NZ)).shape == (2, 1, 16, 16) and D(torch.randn(2, 1, 16, 16)).shape == (2,)
    assert describe_nets(G, D)['critic_params'] > base['critic_params']
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [*G.modules(), *D.modules()])
    assert sum(isinstance(m, nn.Dropout) for m in D.modules()) == 2 + 2 and sum(isinstance(m, nn.Dropout) for m in G.modules()) == 1 + 1 + 2
    G, D = nets('dcgan', critic_out='prob', gen_out='sigmoid')
    fake = G(torch.randn(4, NZ))
    assert G.out_range == (0, 1) and D.output == 'prob' and 0 <= fake.min() and fake.max() <= 1
    p = D(fake)
    assert 0 < p.min() and p.max() < 1

def test_spectral_norm():
    _, D = nets('sngan')
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(nn.utils.parametrize.is_parametrized(m, 'weight') for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert all(abs(torch.linalg.matrix_norm(m.weight.flatten(1), 2) - 1) < 0.1 for m in convs)
    _, D = nets('dcgan', spectral_norm=True, bn_critic=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())

@pytest.mark.parametrize('arch,options,msg', [
    ('mlp', dict(kernel=5), "unknown option 'kernel' for the mlp architecture: its options are aux"),
    ('basic', dict(dropout_gen=0.1), 'its options are aux, depth'),
    ('dcgan', dict(kernel=3), "unknown kernel size '3'"),
    ('dcgan', dict(critic_out='probs'), "did you mean 'prob'"),
    ('dcgan', dict(gen_out='relu'), 'unknown generator output'),
    ('sngan', dict(label_in='maps'), "unknown option 'label_in'")])
def test_option_errors(arch, options, msg):
    with pytest.raises(FastGANError, match=msg): gan_nets(arch, 16, 1, NZ, W, **options)

def test_arch_errors():
    with pytest.raises(FastGANError, match="did you mean 'cdcgan'"): gan_nets('cdcgn')
    assert arch_options('dcgan')['bn_critic'] is None and arch_options('sngan')['spectral_norm'] is True

def changed(before, m): return [not torch.equal(b, p) for b, p in zip(before, m.parameters())]

def snapshot(m): return [p.detach().clone() for p in m.parameters()]

def detach(out): return [o.detach() for o in out] if isinstance(out, list) else out.detach()

@pytest.mark.parametrize('arch,options', [(a, {}) for a in ARCHS] + [('dcgan', dict(aux=True)), ('dcgan', dict(critic_out='prob'))])
def test_one_training_step(arch, options):
    "One BCE step of the critic, then of the generator: finite losses, the stepped network's weights change and only its own."
    torch.manual_seed(0)
    size = 28 if arch == 'dcgan28' else 16
    G, D = nets(arch, size, **options)
    z, x, labels = batch(G, 8, size)
    adv = F.binary_cross_entropy if D.output == 'prob' else F.binary_cross_entropy_with_logits
    def loss(pred, target):
        if not D.aux: return adv(pred, torch.full_like(pred, target))
        return adv(pred[:, 0], torch.full_like(pred[:, 0], target)) + F.cross_entropy(pred[:, 1:], labels[0])
    opt_d, opt_g = torch.optim.Adam(D.parameters(), 1e-3), torch.optim.Adam(G.parameters(), 1e-3)
    g0, d0 = snapshot(G), snapshot(D)
    crit_loss = loss(D(x, *labels), 1.) + loss(D(detach(G(z, *labels)), *labels), 0.)
    opt_d.zero_grad(); crit_loss.backward(); opt_d.step()
    moved = [g is not None and g.abs().sum() > 0 for g in (p.grad for p in D.parameters())]
    assert torch.isfinite(crit_loss) and any(moved) and changed(d0, D) == moved and not any(changed(g0, G))
    d1 = snapshot(D)
    gen_loss = loss(D(G(z, *labels), *labels), 1.)
    opt_g.zero_grad(); gen_loss.backward(); opt_g.step()
    moved = [g is not None and g.abs().sum() > 0 for g in (p.grad for p in G.parameters())]
    assert torch.isfinite(gen_loss) and any(moved) and changed(g0, G) == moved and not any(changed(d1, D))

@pytest.mark.parametrize('gen_out', ['tanh', 'sigmoid'])
def test_generate_range(gen_out):
    G, _ = nets('dcgan', gen_out=gen_out)
    z = torch.randn(16, NZ)
    imgs = generate(G, z)
    assert G.training and imgs.shape == (16, 1, 16, 16) and 0 <= imgs.min() and imgs.max() <= 1
    G.eval()
    raw = G(z)
    assert torch.allclose(imgs, (raw + 1) / 2 if gen_out == 'tanh' else raw)

def test_generate_msggan_gives_full_size(): assert generate(nets('msggan', 32)[0], torch.randn(2, NZ)).shape == (2, 1, 32, 32)

@pytest.mark.parametrize('arch,options', [('cdcgan', {}), ('cdcgan-embed', {}), ('cgan', {}), ('dcgan', dict(aux=True))])
def test_generate_with_labels(arch, options):
    G, _ = nets(arch, **options)
    z = torch.randn(6, NZ)
    y = torch.tensor([2, 0, 1, 2, 2, 1])
    a, b = generate(G, z, y), generate(G, z, y)
    assert torch.equal(a, b) and not torch.equal(a, generate(G, z, (y + 1) % K))
    assert torch.equal(generate(G, z), generate(G, z, torch.arange(6) % K))   # default: balanced labels
    assert torch.equal(generate(G, z, 2), generate(G, z, [2] * 6))
    with pytest.raises(FastGANError, match='labels must be in 0..2'): generate(G, z, 3)

def test_generate_labels_need_conditional_generator():
    with pytest.raises(FastGANError, match='conditional generator'): generate(nets('dcgan')[0], torch.randn(2, NZ), 1)
