"The training tricks of `callbacks`: instance noise, critic/generator balance, the generator's moving average, and no host reads per batch."
import sys
from contextlib import contextmanager
import pytest, torch, torch.nn as nn
from torch.nn.utils import parameters_to_vector
from PIL import Image
from fastai.callback.core import Callback, CancelFitException
import fastai.vision.gan as fastai_gan
from fastai.vision.gan import GANLearner, FixedGANSwitcher, AdaptiveGANSwitcher
import fastgan_study.callbacks as callbacks
from fastgan_study.callbacks import InstanceNoise, BalanceSwitcher, AdaptiveSwitcher, GeneratorEMA, GANMetrics, SampleGrids, save_grid
from fastgan_study.core import set_seed, FastGANError
from fastgan_study.data import gan_dls
from fastgan_study.models import gan_nets, generate
from fastgan_study.losses import LOSSES
from fastgan_study.speed import host_reads

N = 22   # training batches per epoch: the 179 sevens of digits in batches of 8

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "Tensors this small train ~10× faster on one thread than on two busy cores."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def fit(cbs=(), epochs=1, switcher=None, seed=1):
    "A narrow DCGAN trained on the sevens of digits at 16×16 (22 batches per epoch) on the CPU."
    set_seed(seed)
    dls = gan_dls('digits', size=16, bs=8, classes=['7'], device='cpu')
    learn = GANLearner(dls, *gan_nets('dcgan', 16, 1, 100, 8), *LOSSES['bce'], switcher=switcher, switch_eval=False,
                       cbs=list(cbs), show_img=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, 2e-4)
    return learn

def weights(net): return parameters_to_vector(net.parameters()).detach().clone()

@pytest.fixture(scope='module')
def plain():
    "The generator's weights after one epoch with no trick."
    return weights(fit().model.generator)

# ---- instance noise

class CriticInputs(Callback):
    "Pairs (kind, image, what the critic saw): real images in critic steps, generated ones in generator steps."
    def before_fit(self): self.pairs = []; self.h = self.learn.model.critic.register_forward_hook(self.see)
    def see(self, critic, args, out): self.last = args[0].detach().clone()
    def after_pred(self):
        if self.training and not self.learn.gan_trainer.gen_mode: self.pairs.append(('real', self.learn.xb[0].clone(), self.last))
    def after_loss(self):
        if self.training and self.learn.gan_trainer.gen_mode: self.pairs.append(('fake', self.learn.pred.detach().clone(), self.last))
    def after_fit(self): self.h.remove()

def test_instance_noise_reaches_the_critic():
    pairs = fit([InstanceNoise(0.1), CriticInputs()]).critic_inputs.pairs
    for kind in ('real', 'fake'):
        d = torch.cat([seen - x for k, x, seen in pairs if k == kind])
        assert abs(d.std().item() - 0.1) < 0.003, kind
        assert abs(d.mean().item()) < 0.003, kind

def test_zero_instance_noise_trains_bitwise_as_without(plain):
    assert torch.equal(weights(fit([InstanceNoise(0.)]).model.generator), plain)
    assert not torch.equal(weights(fit([InstanceNoise(0.1)]).model.generator), plain)

class Sigmas(Callback):
    "σ of every training batch."
    def __init__(self, noise): self.noise, self.s = noise, []
    def after_loss(self):
        if self.training: self.s.append(self.noise.sigma_now)

def test_instance_noise_anneals_linearly_to_zero():
    noise = InstanceNoise(0.1, anneal=2)
    learn = fit([noise, Sigmas(noise)], epochs=3)
    s = torch.tensor(learn.sigmas.s, dtype=torch.float64)
    assert len(s) == 3 * N and s[0] == 0.1
    assert s[2*N - 1] == 0 and (s[2*N:] == 0).all()        # zero at the last batch of epoch 2, and after
    assert torch.allclose(s[:2*N].diff(), torch.full((2*N - 1,), -0.1 / (2*N - 1), dtype=torch.float64))
    assert len(learn.model.critic._forward_pre_hooks) == 0  # the hook is gone after the fit

class OutsideBatches(Callback):
    "Use the critic and sample between training batches (after training, and after validation) while the noise hook is registered."
    order = 100
    def before_fit(self): self.critic_in, self.samples = [], []; self.x = self.dls.one_batch()[1]; self.z = torch.randn(8, 100)
    def see(self, m, args, out): self.critic_in.append(args[0])
    def use(self):
        h = self.learn.model.critic.register_forward_hook(self.see)
        with torch.no_grad(): self.learn.model.critic(self.x)
        h.remove()
        self.samples += [generate(self.learn.model.generator, self.z), generate(self.learn.model.generator, self.z)]
    def after_train(self): self.use()
    def after_epoch(self): self.use()

def test_instance_noise_only_in_training_batches():
    learn = fit([InstanceNoise(0.5), OutsideBatches()])
    o = learn.outside_batches
    assert len(o.critic_in) == 2 and all(torch.equal(c, o.x) for c in o.critic_in)
    assert torch.equal(o.samples[0], o.samples[1]) and torch.equal(o.samples[2], o.samples[3])

class TwoInputs(nn.Module):
    "A conditional critic stand-in that records what it receives."
    def forward(self, x, labels): self.seen = (x, labels); return labels

def test_instance_noise_on_each_scale_not_on_labels():
    D, noise = TwoInputs(), InstanceNoise(0.2)
    D.register_forward_pre_hook(noise.add_noise)
    pyramid, y = [torch.zeros(64, 1, 8, 8), torch.zeros(64, 1, 16, 16)], torch.arange(64)
    D(pyramid, y)
    assert D.seen[0] is pyramid                       # off outside training batches
    noise.on = True; D(pyramid, y)
    scales, labels = D.seen
    assert labels is y and isinstance(scales, list) and len(scales) == 2
    assert all(abs(s.std().item() - 0.2) < 0.01 for s in scales)
    assert all((p == 0).all() for p in pyramid)       # the inputs themselves are not modified

# ---- critic/generator balance

class Steps(Callback):
    "Which network each training batch updates: c (critic) or G (generator), with | between epochs."
    def before_fit(self): self.s = ''
    def before_train(self): self.s += '|' if self.s else ''
    def after_loss(self):
        if self.training: self.s += 'G' if self.learn.gan_trainer.gen_mode else 'c'

def steps(switcher, epochs): return fit([Steps(), GANMetrics()], epochs, switcher)

def test_fastai_fixed_switcher_restarts_with_the_generator_each_epoch():
    s = steps(FixedGANSwitcher(n_crit=5), 2).steps.s
    assert s == 'cccccG' * 3 + 'cccc|G' + 'cccccG' * 3 + 'ccc'  # a generator step after only 4 critic steps

def test_n_crit_5_gives_five_critic_updates_per_generator_update():
    learn = steps(BalanceSwitcher(n_crit=5), 3)
    assert learn.steps.s.replace('|', '') == 'cccccG' * 11
    assert [(r['crit_updates'], r['gen_updates']) for r in learn.gan_metrics.rows] == [(19, 3), (37, 7), (55, 11)]

def test_n_gen_3_gives_three_generator_updates_per_critic_update():
    learn = steps(BalanceSwitcher(n_gen=3), 2)
    assert learn.steps.s.replace('|', '') == 'cGGG' * 11
    assert learn.gan_metrics.rows[-1]['gen_updates'] == 3 * learn.gan_metrics.rows[-1]['crit_updates']

def test_balance_switcher_refuses_zero_steps():
    with pytest.raises(FastGANError, match='at least 1'): BalanceSwitcher(n_crit=0)

def test_adaptive_switcher_keeps_its_mode_across_epochs():
    assert steps(AdaptiveGANSwitcher(), 2).steps.s.replace('|', '') == 'cG' * 11 + 'Gc' * 11   # fastai's
    assert steps(AdaptiveSwitcher(), 2).steps.s.replace('|', '') == 'cG' * 22

# ---- the generator's moving average

class GenWeights(Callback):
    "The generator's weights before training and after each generator step; stops the fit after `n` generator steps."
    order = GeneratorEMA.order + 1
    def __init__(self, n): self.n = n
    def before_fit(self): self.w = [weights(self.learn.model.generator)]
    def after_step(self):
        if self.learn.gan_trainer.gen_mode: self.w.append(weights(self.learn.model.generator))
        if len(self.w) > self.n: raise CancelFitException

def test_ema_is_the_closed_form_average():
    learn = fit([GeneratorEMA(decay=0.5), GenWeights(2)])
    w0, w1, w2 = learn.gen_weights.w
    assert not torch.equal(w1, w2)
    torch.testing.assert_close(weights(learn.generator_ema), 0.25*w0 + 0.25*w1 + 0.5*w2)
    learn = fit([GeneratorEMA(decay=0.5, start=1), GenWeights(2)])
    w0, w1, w2 = learn.gen_weights.w
    torch.testing.assert_close(weights(learn.generator_ema), 0.5*w1 + 0.5*w2)

def test_ema_with_decay_0_is_the_generator():
    learn = fit([GeneratorEMA(decay=0.)])
    assert torch.equal(weights(learn.generator_ema), weights(learn.model.generator))
    assert all(torch.equal(a, b) for a, b in zip(learn.generator_ema.buffers(), learn.model.generator.buffers()))

def test_ema_differs_leaves_training_alone_and_feeds_the_grids(plain, tmp_path):
    learn = fit([GeneratorEMA(decay=0.9), SampleGrids(tmp_path/'grids', n=16)])
    G, avg, z = learn.model.generator, learn.generator_ema, learn.sample_grids.z
    assert type(avg) is type(G) and not avg.training and not any(p.requires_grad for p in avg.parameters())
    assert not torch.equal(weights(avg), weights(G))
    assert torch.equal(weights(G), plain)
    png = lambda f: Image.open(f).tobytes()
    assert png(tmp_path/'grids'/'epoch_001.png') == png(save_grid(generate(avg, z), tmp_path/'avg.png'))
    assert png(tmp_path/'grids'/'epoch_001.png') != png(save_grid(generate(G, z), tmp_path/'live.png'))

# ---- no host reads per batch


def test_tricks_read_no_tensor_values():
    with host_reads(callbacks) as calls:
        fit([InstanceNoise(0.1, anneal=1), GeneratorEMA()], epochs=2, switcher=BalanceSwitcher(n_crit=2))
    assert calls == []
    with host_reads(fastai_gan) as calls:                          # the detector sees the adaptive rule's comparison
        fit(switcher=AdaptiveSwitcher(gen_thresh=10., critic_thresh=10.))
    assert calls == [('after_batch', '__bool__')] * N
