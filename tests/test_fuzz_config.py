"Seeded fuzzing of configurations: every random configuration either builds (and a sample of them trains) or is refused with a FastGANError."
import random, time, warnings
import pytest, torch
from fastgan_study.core import FastGANError
from fastgan_study.learner import recipe_settings, needs_labels, train, RECIPES
from fastgan_study.models import gan_nets, ARCHS

pytestmark = pytest.mark.usefixtures('one_thread')

CHOICES = dict(   # valid values mixed with the mistakes people make
    arch=list(ARCHS) + ['dcgna', 'resnet', None], loss=['bce', 'minimax', 'wgan', 'wgan-gp', 'hinge', 'lsgan', 'hinje', None],
    opt=['adam', 'rmsprop', 'sgd', 'adma', None], lr=[2e-4, 1e-3, 5e-5, 0, -1e-3, None], lr_gen=[None, 1e-4, 0.], lr_crit=[None, 4e-4, -1.],
    betas=[None, '0.5,0.999', '0,0.9', '0.9', '1.5,0.9', 'a,b'], n_crit=[1, 2, 5, 0, None], n_gen=[1, 2, 0, None],
    switcher=['fixed', 'adaptive', 'adaptve', None], critic_thresh=[None, 0.65], label_smoothing=[0., 0.1, 0.3, 0.7, -0.1, None],
    label_noise=[None, '1,20', 'x'], label_flip=[0., 0.05, 0.9, None], instance_noise=[0., 0.1, -1., None], ema=[0., 0.999, 1.5, None],
    clip=[None, 0.01, -0.01], gp=[None, 10., -1.], bn_critic=[None, 'on', 'off', 'maybe'], kernel=[None, 4, 5, 3], depth=[None, 0, 1],
    critic_out=[None, 'logit', 'prob', 'softmax'], gen_out=[None, 'tanh', 'sigmoid', 'relu'], spectral_norm=[None, 'on', 'off'],
    dropout_critic=[None, 0.3], aux=[None, 'on', 'off'])
SIZES, RECIPE_NAMES = [8, 16, 28, 30, 32], list(RECIPES) + ['dcgan ', 'wgn']

def random_config(rng):
    kw = {k: rng.choice(v) for k, v in CHOICES.items() if rng.random() < 0.1}
    return rng.choice(RECIPE_NAMES), rng.choice(SIZES), kw

def build(recipe, size, kw):
    "Validate the settings and build the nets, as `train` does before it touches the data or the disk."
    s = recipe_settings(recipe, **kw)
    opts = {k: s[k] for k in ('bn_critic', 'bn_gen', 'dropout_critic', 'dropout_gen', 'kernel', 'depth', 'critic_out', 'gen_out', 'spectral_norm', 'aux')
            if s[k] is not None}
    G, D = gan_nets(s['arch'], size, 1, 16, 8, n_classes=10 if needs_labels(s) else 0, **opts)
    return s, G, D

def test_random_configurations_build_or_are_refused():
    rng, outcomes, t0 = random.Random(0), dict(built=0, refused=0), time.perf_counter()
    for i in range(400):
        recipe, size, kw = random_config(rng)
        try:
            with warnings.catch_warnings(): warnings.simplefilter('ignore'); build(recipe, size, kw)
            outcomes['built'] += 1
        except FastGANError as e:
            assert len(str(e).splitlines()) == 1, (recipe, size, kw, str(e))
            outcomes['refused'] += 1
        except Exception as e: pytest.fail(f"case {i}: {recipe!r} size {size} {kw} raised {e.__class__.__name__}: {e}")
    print(f"400 random configurations in {time.perf_counter() - t0:.1f}s: {outcomes}")
    assert outcomes['built'] > 50 and outcomes['refused'] > 50      # the fuzzer reaches both sides

def test_random_valid_configurations_train(tmp_path):
    "Twelve random configurations that build are trained for one epoch on the ones and sevens: each ends done or diverged, never with a crash."
    rng, done, t0 = random.Random(1), [], time.perf_counter()
    while len(done) < 12:
        recipe, size, kw = random_config(rng)
        if size not in (8, 16, 32): continue
        try:
            with warnings.catch_warnings(): warnings.simplefilter('ignore'); build(recipe, size, kw)
        except FastGANError: continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                learn = train('digits', size=size, recipe=recipe, epochs=1, bs=16, n_features=8, classes='1,7', out=tmp_path/str(len(done)),
                              progress=False, score='none', n_samples=4, device='cpu', **kw)
        except FastGANError as e: done.append(('refused', str(e))); continue
        except Exception as e: pytest.fail(f"{recipe!r} size {size} {kw} raised {e.__class__.__name__}: {e}")
        done.append(('diverged' if learn.diverged else 'done', recipe))
    print(f"12 random runs in {time.perf_counter() - t0:.1f}s:", [d[0] for d in done])
    assert sum(d[0] in ('done', 'diverged') for d in done) >= 8
