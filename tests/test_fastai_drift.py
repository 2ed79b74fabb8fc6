"""fastai drift: fail, naming what to re-check, when fastai's source of a class we subclass or a method we override or copy differs
from the version recorded when it was last checked.

Our learner is fastai's `GANLearner` extended by subclasses and callbacks, some of which copy a few lines of fastai
(`FastDispatch._call_one`, `FastGANLearner._do_fit`) or rely on what a fastai method does at an event (`GANLossMetric` on
`GANTrainer.after_batch` running before the switchers). A new fastai can change those silently: this test hashes the source
(sha256 of `inspect.getsource`) of each name in `RECHECK` and compares it with `fastai_drift.json`, recorded with the fastai
version it was checked against. It also fails when one of our classes subclasses a fastai class, or overrides a fastai method,
that `RECHECK` does not name, so the table stays complete.

After re-checking what a failure names (read fastai's diff, run tests/test_fastai_habits.py and the speed and learner notebooks),
record the new sources with one command:

    python tests/test_fastai_drift.py --refresh
"""
import hashlib, importlib, inspect, json, pkgutil, sys
from pathlib import Path
import pytest
import fastai, fastai.vision.all, fastai.callback.all   # every fastai module whose classes we extend (and `@patch`ed methods)

MISSING = []   # fastai's modules for tensorboard and wandb, where those packages are not installed: their sources are not checked
for m in ('fastai.callback.tensorboard', 'fastai.callback.wandb'):
    try: importlib.import_module(m)
    except ImportError: MISSING.append(m)

RECORD = Path(__file__).with_name('fastai_drift.json')

# 'module:qualname' of fastai's source → what of ours to re-check when it changes
RECHECK = {
    'fastai.learner:Learner._call_one': "speed.FastDispatch._call_one copies it: the event-name check, the callbacks' order, "
                                        "and every callback's `run` reset at after_fit",
    'fastai.learner:Learner.__call__': "speed.FastDispatch.__call__ (one event name or a list of them)",
    'fastai.learner:Learner.__getstate__': "speed.FastDispatch.__getstate__ drops its dispatch cache from what fastai pickles (export)",
    'fastai.callback.core:Callback': "FastDispatch calls only callbacks whose class defines the event (Callback.__call__ must still "
                                     "just call that method and reset `run` at after_fit); every callback of ours (order, name, "
                                     "attribute delegation to the learner)",
    'fastai.learner:Learner._do_fit': "learner.FastGANLearner._do_fit copies it, starting at `self.epoch` (resume)",
    'fastai.learner:Learner.fit': "learner.FastGANLearner.fit wraps it with fastai's signature copied (n_epoch, lr, wd, cbs, reset_opt, "
                                  "start_epoch): callbacks with fit_failed hear of an exception, and a FastGANError raised in a callback "
                                  "stays one line",
    'fastai.learner:Learner.get_preds': "learner.FastGANLearner.get_preds passes ds_idx (0 when there is no validation set) and dl; "
                                         "the habits table's get_preds() rows",
    'fastai.learner:Learner.show_results': "learner.FastGANLearner.show_results passes ds_idx, dl, max_n, shuffle; the habits table's show_results() rows",
    'fastai.learner:Learner.lr_find': "learner.FastGANLearner.lr_find refuses it for GANs; the habits table's fastai column",
    'fastai.learner:Learner.export': "FastGANLearner.export (refuses parametrized nets), export + load_learner (tests/test_fastai_habits.py), FastDispatch.__getstate__, "
                                     "data.GANDataLoaders.new_empty",
    'fastai.learner:load_learner': "export + load_learner of our learner (tests/test_fastai_habits.py)",
    'fastai.learner:Recorder': "speed.LazyRecorder (smoothed loss kept on the device, `losses` read once per epoch, "
                               "`learn.smooth_loss` a tensor) and the fit table's names with train_metrics on and valid_metrics off",
    'fastai.learner:AvgSmoothLoss': "speed.DeviceSmoothLoss.accumulate (the same moving average, on the device)",
    'fastai.learner:Metric': "speed.GANLossMetric and metrics._LastValue (reset / accumulate / value / name)",
    'fastai.metrics:LossMetric': "speed.lazy_losses finds fastai's gen_loss/crit_loss metrics by this class and its `attr`",
    'fastai.vision.gan:GANTrainer': "speed.LazyGANTrainer (after_batch files the loss under the network it trained, `trained_gen`, "
                                    "before the switchers run; last_gen), callbacks.KeepGANMode and GANMetrics (gen_mode at after_loss)",
    'fastai.vision.gan:GANLearner': "learner.FastGANLearner subclasses it; its __init__ and speed.lazy_losses replace the "
                                    "GANTrainer, Recorder and LossMetrics that GANLearner.__init__ adds",
    'fastai.vision.gan:GANLoss': "losses.GANLossWithTricks (generator / critic signatures and the gen_loss / crit_loss attributes)",
    'fastai.vision.gan:FixedGANSwitcher': "callbacks.BalanceSwitcher replaces it; the fastai reference learner of the habits test",
    'fastai.vision.gan:AdaptiveGANSwitcher': "callbacks.AdaptiveSwitcher subclasses it",
    'fastai.callback.fp16:MixedPrecision': "speed.Precision (autocast on any device, GradScaler, before_step's `skipped`)",
    'fastai.optimizer:OptimWrapper': "learner.torch_opt and its optimizer wrapper (hyper-parameters read from the torch optimizer; "
                                     "TensorBoardCallback logs every one of them)",
    'fastai.callback.tracker:TrackerCallback.before_fit': "learner.CheckCallbacks refuses a monitor the recorder lacks before this "
                                                          "method asserts on it",
    'fastai.learner:Learner.gather_args': "(fastai.callback.wandb) learner.FastGANLearner.gather_args replaces it (fastai's config formatter fails on plain "
                                         "values with fastcore 2.2, fastai/fastai#4173): drop the override once that is fixed",
    'fastai.callback.tensorboard:TensorBoardCallback': "learner.log_callbacks turns trace_model and log_preds off (no validation "
                                                       "batch; the traced model depends on the training mode)",
    'fastai.callback.wandb:WandbCallback': "learner.log_callbacks (log_preds and log_model off; wandb.init before it)",
    'fastai.data.core:TfmdDL': "data.TensorDL (batches built from a tensor of indices)",
    'fastai.data.load:DataLoader.create_batches': "data.TensorDL.create_batches replaces it (shuffled indices, shards)",
    'fastai.data.load:DataLoader.__len__': "data.TensorDL.__len__ (length of a shard)",
    'fastai.data.core:DataLoaders': "data.GANDataLoaders (new_empty keeps noise, labels, pixels, n_classes through export)",
    'fastai.torch_core:Module': "models' networks (fastai's Module: no super().__init__() call needed)",
}

def resolve(name):
    "The object named 'module:qualname'."
    mod, qual = name.split(':')
    obj = importlib.import_module(mod)
    for part in qual.split('.'): obj = getattr(obj, part)
    return obj

def source_hash(name):
    "sha256 of the source of the object `name`: its class, function, or a property's getter (None: its optional package is missing)."
    try: obj = resolve(name)
    except (ImportError, AttributeError):
        if MISSING: return None   # from a module of MISSING (or patched in by one)
        raise
    if isinstance(obj, property): obj = obj.fget
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()

def recorded(): return json.loads(RECORD.read_text())

def our_classes():
    "Every class defined in a fastgan_study module."
    import fastgan_study
    mods = [importlib.import_module(f'fastgan_study.{m.name}') for m in pkgutil.iter_modules(fastgan_study.__path__) if not m.name.startswith('_')]
    return [c for m in mods for c in vars(m).values() if inspect.isclass(c) and c.__module__ == m.__name__]

def is_fastai(c): return c.__module__.split('.')[0] == 'fastai'
def key(c, attr=None): return f"{c.__module__}:{c.__qualname__}" + (f".{attr}" if attr else '')
_NOT_CODE = {'__module__', '__doc__', '__qualname__', '__signature__', '__dict__', '__weakref__', '__annotations__', '__firstlineno__', '__static_attributes__'}

def extended():
    "What our classes take from fastai: {fastai name: why}, for each fastai class subclassed directly and each fastai method overridden."
    found = {}
    for c in our_classes():
        for b in c.__bases__:
            if is_fastai(b): found.setdefault(key(b), f"{c.__module__}.{c.__qualname__} subclasses it")
        mro = c.__mro__
        for i, ours in enumerate(mro):
            if is_fastai(ours) or ours is object: continue
            for attr, v in vars(ours).items():
                if attr in _NOT_CODE or not (callable(v) or isinstance(v, (property, classmethod, staticmethod))): continue
                owner = next((b for b in mro[i + 1:] if is_fastai(b) and attr in vars(b)), None)
                if owner is not None: found.setdefault(key(owner, attr), f"{ours.__module__}.{ours.__qualname__}.{attr} overrides it")
    return found

def test_fastai_sources_are_the_ones_we_checked():
    rec = recorded()
    now = {n: source_hash(n) for n in RECHECK}
    changed = [n for n, h in now.items() if h is not None and rec['sha256'].get(n) != h]
    msg = '\n'.join(f"- {n}: {'not recorded yet' if n not in rec['sha256'] else 'source changed'}; re-check {RECHECK[n]}" for n in changed)
    assert not changed, (f"fastai {fastai.__version__} differs from fastai {rec['fastai']}, against which these were last checked:\n{msg}\n"
                         f"When re-checked, record them: python tests/test_fastai_drift.py --refresh")

def test_every_fastai_class_we_extend_is_recorded():
    "A new subclass or override of fastai must join RECHECK (with what to re-check), or its drift goes unseen."
    names = set(RECHECK)
    covered = lambda n: n in names or n.rsplit('.', 1)[0] in names   # a method is covered by its class's whole source
    missing = {n: why for n, why in extended().items() if not covered(n)}
    assert not missing, "fastai names we extend that RECHECK does not record:\n" + '\n'.join(f"- {n} ({why})" for n, why in missing.items()) + \
        "\nadd each to RECHECK in tests/test_fastai_drift.py with what to re-check, then: python tests/test_fastai_drift.py --refresh"

def test_the_record_names_exactly_recheck():
    assert set(recorded()['sha256']) == set(RECHECK), "fastai_drift.json and RECHECK disagree: python tests/test_fastai_drift.py --refresh"

def test_a_changed_source_is_named(monkeypatch):
    "The check can fail: a recorded hash that no longer matches is reported by name, with what to re-check."
    rec = recorded(); rec['sha256']['fastai.learner:Recorder'] = '0' * 64
    monkeypatch.setitem(globals(), 'recorded', lambda: rec)
    with pytest.raises(AssertionError, match=r"fastai\.learner:Recorder: source changed; re-check speed\.LazyRecorder"):
        test_fastai_sources_are_the_ones_we_checked()

def test_an_unrecorded_extension_is_named(monkeypatch):
    "The coverage check can fail: a fastai class we subclass, missing from RECHECK, is named with the class of ours that extends it."
    monkeypatch.delitem(RECHECK, 'fastai.data.core:TfmdDL')
    with pytest.raises(AssertionError, match=r"fastai\.data\.core:TfmdDL \(fastgan_study\.data\.TensorDL subclasses it\)"):
        test_every_fastai_class_we_extend_is_recorded()

def refresh():
    "Record the current fastai's sources as checked."
    hashes = {n: source_hash(n) for n in RECHECK}
    missing = [n for n, h in hashes.items() if h is None]
    if missing: sys.exit(f"install tensorboard and wandb to record every source (missing: {', '.join(missing)})")
    RECORD.write_text(json.dumps(dict(fastai=fastai.__version__, sha256=hashes), indent=1) + '\n')
    print(f"recorded {len(RECHECK)} fastai sources of fastai {fastai.__version__} in {RECORD}")

if __name__ == '__main__' and sys.argv[1:] == ['--refresh']: refresh()
