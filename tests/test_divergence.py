"`callbacks.DivergenceGuard` on a tiny real `GANLearner`: each fault stops the fit with its reason, a healthy fit is untouched, one host read per check."
import math, sys
from contextlib import contextmanager
import pytest, torch
from fastai.callback.core import Callback
import fastgan_study.callbacks as callbacks
from fastgan_study.callbacks import DivergenceGuard
from fastgan_study.speed import host_reads
from fastgan_study.learner import tiny_gan_learner
from fastgan_study.core import set_seed, FastGANError

N = 22   # training batches per epoch: the 179 sevens of digits in batches of 8; critic and generator alternate, the critic first

pytestmark = pytest.mark.usefixtures('one_thread')

class Batches(Callback):
    "Count the training batches of each epoch; note whether `after_fit` ran."
    def before_fit(self): self.per_epoch, self.fit_ended = [], False
    def before_train(self): self.per_epoch.append(0)
    def after_batch(self):
        if self.training: self.per_epoch[-1] += 1
    def after_fit(self): self.fit_ended = True

class At(Callback):
    "Call `f(learn)` before training batch `batch` (from 1) of epoch `ep` (from 1)."
    def __init__(self, ep, batch, f): self.ep, self.batch, self.f = ep, batch, f
    def before_batch(self):
        if self.training and (self.epoch + 1, self.iter + 1) == (self.ep, self.batch): self.f(self.learn)

def fit(cbs=(), epochs=1, fault=None, recipe='dcgan', seed=1):
    "A tiny learner (digits sevens, 16×16, width 8, CPU), broken by `fault(learn)`, fitted for `epochs`."
    set_seed(seed)
    learn = tiny_gan_learner(recipe, classes=['7'], cbs=[Batches(), *cbs])
    if fault: fault(learn)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def state(learn): return {f'{k}.{n}': t.clone() for k in ('generator', 'critic') for n, t in getattr(learn.model, k).state_dict().items()}

def check_stopped(learn, reason, epoch, batch):
    d = learn.diverged
    assert (d['reason'], d['epoch'], d['iter']) == (reason, epoch, batch), d
    assert f'epoch {epoch}, batch {batch}/{N}' in d['message'] and '\n' not in d['message']
    assert learn.batches.fit_ended
    return d

def test_nan_in_critic_weights_stops_at_the_next_check():
    poison = lambda learn: next(learn.model.critic.parameters()).data.fill_(math.nan)
    learn = fit([DivergenceGuard(check_every=4), At(2, 10, poison)], epochs=3)
    d = check_stopped(learn, 'nan', 2, 10)
    assert 'loss is nan' in d['message'] and math.isnan(d['value'])
    assert learn.batches.per_epoch == [N, 12]          # read at batch 12, the first check after batch 10; epoch 3 never ran

@pytest.mark.parametrize('bad', [math.nan, math.inf])
def test_nan_or_inf_generator_loss_is_named(bad):
    def break_loss(learn):
        f, calls = learn.loss_func.gen_loss_func, [0]
        def loss(*args):
            calls[0] += 1
            return f(*args) * (bad if calls[0] == 15 else 1)   # the 15th generator step: epoch 2, batch 8
        learn.loss_func.gen_loss_func = loss
    d = check_stopped(fit([DivergenceGuard()], epochs=2, fault=break_loss), 'nan', 2, 8)
    assert f'the generator loss is {bad}' in d['message']

def test_nan_in_a_buffer_no_loss_sees_is_caught_at_epoch_end():
    "BatchNorm's running variance is used only in evaluation mode: only the end-of-epoch look at every tensor sees it."
    def poison(learn):
        name = next(n for n, _ in learn.model.generator.named_buffers() if n.endswith('running_var'))
        learn.model.generator.get_buffer(name).fill_(math.inf)
        poison.name = name
    learn = fit([DivergenceGuard(check_every=1), At(1, 3, poison)], epochs=2)
    d = check_stopped(learn, 'nan', 1, N)
    assert f"the generator's {poison.name} holds NaN or Inf" in d['message']

def test_constant_generator_is_collapse():
    black = lambda learn: learn.model.generator.register_forward_hook(lambda m, args, out: 0 * out - 1)
    d = check_stopped(fit([DivergenceGuard(check_every=4)], fault=black), 'collapse', 1, 4)
    assert d['value'] == 0 and 'collapsed' in d['message']
    assert fit([DivergenceGuard(check_every=4, min_std=0)], fault=black).diverged is None

def zero_critic_loss(every=0):
    "A fault: the critic's loss is 0 (1 on every `every`-th critic step), with its gradients flowing."
    def fault(learn):
        calls = [0]
        def loss(real_pred, fake_pred, **targets):
            calls[0] += 1
            return 0 * (real_pred.sum() + fake_pred.sum()) + (every and calls[0] % every == 0)
        learn.loss_func.crit_loss_func = loss
    return fault

def test_critic_loss_stuck_at_zero_is_critic_wins_after_patience():
    learn = fit([DivergenceGuard(patience=30)], epochs=3, fault=zero_critic_loss())
    check_stopped(learn, 'critic_wins', 3, 15)           # 11 critic steps per epoch: the 30th is the 8th of epoch 3, batch 15
    assert learn.batches.per_epoch == [N, N, N]            # read at the end of epoch 3's training (check_every 25 > 22)

def test_critic_wins_needs_steps_in_a_row_and_a_loss_with_a_floor():
    assert fit([DivergenceGuard(patience=10)], epochs=2, fault=zero_critic_loss(every=10)).diverged is None
    assert fit([DivergenceGuard(patience=3, crit_zero=None)], fault=zero_critic_loss()).diverged is None
    assert fit([DivergenceGuard(patience=3)], fault=zero_critic_loss(), recipe='wgan').diverged is None

def test_healthy_run_is_untouched():
    guarded, plain = fit([DivergenceGuard(check_every=3)], epochs=2), fit(epochs=2)
    assert guarded.diverged is None and guarded.batches.per_epoch == [N, N]
    a, b = state(guarded), state(plain)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('check_every, reads_per_epoch', [(5, N // 5 + 1), (25, 1)])
def test_one_host_read_per_check(check_every, reads_per_epoch):
    with host_reads(callbacks) as calls: learn = fit([DivergenceGuard(check_every=check_every)], epochs=2)
    assert learn.diverged is None
    guard = [c for c in calls if c[0] == 'check']
    assert guard == [('check', 'tolist')] * 2 * reads_per_epoch
    assert len(calls) - len(guard) <= 2 * 2                               # the rest: GANMetrics' two means per epoch

def test_refuses_a_zero_interval():
    with pytest.raises(FastGANError, match='at least 1'): DivergenceGuard(check_every=0)
    with pytest.raises(FastGANError, match='at least 1'): DivergenceGuard(patience=0)
