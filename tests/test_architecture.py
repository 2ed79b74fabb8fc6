"The shape of the package: importing it changes nothing in fastai, and its modules import one another without cycles."
import ast, json, os, subprocess, sys
from pathlib import Path
import pytest

PKG = Path(__file__).parents[1]/'fastgan_study'
MODULES = sorted(p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_'))

SNAPSHOT = r'''
import json, sys, importlib, warnings
warnings.simplefilter('ignore')
import fastai.vision.all, fastai.callback.all            # fastai's own modules first: they patch fastai's classes themselves
from fastai.learner import Learner, Recorder, AvgSmoothLoss, Metric
from fastai.vision.gan import GANLearner, GANTrainer, GANModule, GANLoss, FixedGANSwitcher, AdaptiveGANSwitcher
from fastai.optimizer import OptimWrapper
from fastai.callback.core import Callback
from fastai.callback.fp16 import MixedPrecision
from fastai.data.core import TfmdDL, DataLoaders
from fastai.torch_core import TensorImage, TensorImageBW
CLASSES = [Learner, GANLearner, GANTrainer, Recorder, GANModule, GANLoss, FixedGANSwitcher, AdaptiveGANSwitcher, AvgSmoothLoss, Metric,
           OptimWrapper, Callback, MixedPrecision, TfmdDL, DataLoaders, TensorImage, TensorImageBW]
snap = lambda: {c.__qualname__: {k: id(v) for k, v in vars(c).items()} for c in CLASSES}
before = snap()
for m in sys.argv[1:]: importlib.import_module('fastgan_study.' + m)
after = snap()
changed = {c: sorted(k for k in set(before[c]) | set(after[c]) if before[c].get(k) != after[c].get(k)) for c in before}
print(json.dumps({c: ks for c, ks in changed.items() if ks}))
'''

def test_importing_the_library_changes_no_fastai_class():
    "A user's own fastai code behaves as if we were not installed: no attribute of fastai's classes is added or replaced."
    r = subprocess.run([sys.executable, '-c', SNAPSHOT, *MODULES], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    changed = json.loads(r.stdout.strip().splitlines()[-1])
    assert changed == {}, f"importing fastgan_study changed these attributes of fastai's classes: {changed}"

MPL = """
import importlib, sys, matplotlib
import matplotlib.pyplot as plt
for m in sys.argv[1:]: importlib.import_module(f'fastgan_study.{m}')
from fastgan_study.runs import plot_losses
from fastgan_study.report import png_bytes, plot_score_curves
import pandas as pd, tempfile, pathlib
plot_losses([dict(epoch=1, gen_loss=1., crit_loss=1.)], pathlib.Path(tempfile.mkdtemp())/'l.png')
png_bytes(plot_score_curves(pd.DataFrame(dict(epoch=[1, 2], elapsed=[1., 2.], domain_fd=[3., 2.]))))
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""

def test_importing_the_library_keeps_the_matplotlib_backend():
    # every plotting module once ran matplotlib.use('Agg') at import: a notebook that imported it drew no figures at all, and figures
    # left open in pyplot were shown by the next cell that drew (stored outputs of one notebook held another's figures)
    env = dict(os.environ, MPLBACKEND='svg')   # a backend the library would not pick (Jupyter's is matplotlib_inline's)
    r = subprocess.run([sys.executable, '-c', MPL, *MODULES], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ['svg', '0'], f"backend and open pyplot figures after importing and plotting: {r.stdout.split()[-2:]}"

def _imports(path:Path):
    "(module-level imports of our modules, imports of our modules inside functions or classes) of one file."
    tree, top, inner = ast.parse(path.read_text()), set(), []
    def ours(node):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1: return [node.module.split('.')[0]] if node.module else [a.name for a in node.names]
            if (node.module or '').startswith('fastgan_study.'): return [node.module.split('.')[1]]
            if node.module == 'fastgan_study': return [a.name for a in node.names]
        if isinstance(node, ast.Import): return [a.name.split('.')[1] for a in node.names if a.name.startswith('fastgan_study.')]
        return []
    for node in tree.body: top.update(ours(node))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner += [(node.name, m) for sub in ast.walk(node) for m in ours(sub)]
    return top - {'_modidx'}, inner

GRAPH = {m: _imports(PKG/f'{m}.py') for m in MODULES}
LAZY = {'cli': "imports a command's module when that command runs, so `fastgan_study --help` starts without torch"}

def test_no_module_imports_ours_inside_a_function():
    "A function-level import of one of our modules dodges a cycle: the code is in the wrong module (the CLI's lazy imports excepted)."
    found = {m: inner for m, (_, inner) in GRAPH.items() if inner and m not in LAZY}
    assert found == {}, f"imports of fastgan_study modules inside functions: {found}"

def _order():
    "Our modules in an order where each imports only modules before it (raises on a cycle)."
    deps, done, order = {m: set(top) & set(MODULES) for m, (top, _) in GRAPH.items()}, set(), []
    while len(done) < len(deps):
        ready = sorted(m for m in deps if m not in done and deps[m] <= done)
        if not ready: raise AssertionError(f"import cycle among {sorted(set(deps) - done)}: {({m: sorted(deps[m] - done) for m in deps if m not in done})}")
        order += ready; done.update(ready)
    return order

def test_import_graph_is_acyclic_and_follows_the_design():
    "The modules form the flow of DESIGN.md: core → data, models, losses → callbacks, speed, distributed → runs → metrics → report → learner → ... → cli."
    order = _order()
    before = lambda a, b: order.index(a) < order.index(b)
    for a, b in [('core', 'data'), ('callbacks', 'runs'), ('runs', 'metrics'), ('metrics', 'report'), ('report', 'learner'),
                 ('learner', 'superres'), ('learner', 'study')]:
        assert before(a, b), f"{a} should come before {b} in {order}"
    closure = lambda m: set().union(*[{d} | closure(d) for d in GRAPH[m][0] if d in GRAPH])
    for m in ('runs', 'metrics', 'domain', 'report'): assert 'learner' not in closure(m), f"{m} depends on learner"

def test_the_checks_can_fail(tmp_path):
    "The graph checks see a function-level import and a cycle."
    (tmp_path/'a.py').write_text("from .b import x\ndef f():\n    from fastgan_study.c import y\n")
    top, inner = _imports(tmp_path/'a.py')
    assert top == {'b'} and inner == [('f', 'c')]
