"""Notebooks share processes under nbdev-test (each worker runs several notebooks, one after another, in whatever order the pool
hands them out), so a notebook must not change process-wide state that another notebook's checks depend on."""
import ast, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _tree(src:str):
    "The cell's syntax tree (IPython's `%` and `!` lines blanked); an empty module if it is not Python."
    try: return ast.parse('\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines()))
    except SyntaxError: return ast.Module(body=[], type_ignores=[])

def _initializers(src:str):
    "Names passed as a process pool's `initializer=`: such a function runs in a new process, whose filters are its own."
    return {k.value.id for n in ast.walk(_tree(src)) if isinstance(n, ast.Call) for k in n.keywords
            if k.arg == 'initializer' and isinstance(k.value, ast.Name)}

def _broad_filters(src:str, initializers=()):
    "Lines of `src` that ignore a whole category of warnings for the rest of the process (outside `with warnings.catch_warnings()`)."
    tree = _tree(src)
    guarded = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With)
               if any('catch_warnings' in ast.unparse(i.context_expr) for i in w.items) for n in ast.walk(w)}
    guarded |= {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in initializers for n in ast.walk(f)}
    found = []
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and id(n) not in guarded): continue
        args = [a.value for a in n.args if isinstance(a, ast.Constant)]
        kws = {k.arg for k in n.keywords}
        if n.func.attr == 'simplefilter' and 'ignore' in args: found.append(ast.unparse(n))
        if n.func.attr == 'filterwarnings' and 'ignore' in args and len(n.args) < 2 and not kws & {'message', 'module'}: found.append(ast.unparse(n))
    return found

def test_the_check_sees_a_broad_filter():
    assert _broad_filters("warnings.filterwarnings('ignore', category=UserWarning)")
    assert _broad_filters("import warnings\nwarnings.simplefilter('ignore')")
    assert not _broad_filters("warnings.filterwarnings('ignore', message='You are shadowing an attribute')")
    assert not _broad_filters("with warnings.catch_warnings():\n    warnings.simplefilter('ignore'); f()")
    assert _broad_filters("def quiet():\n    warnings.simplefilter('ignore')")
    init = "def _init_worker():\n    warnings.simplefilter('ignore')"
    assert _broad_filters(init) and not _broad_filters(init, _initializers("ProcessPoolExecutor(2, initializer=_init_worker)"))

def test_notebooks_leave_warnings_visible():
    # 08_latent once ignored every UserWarning at its top level; when nbdev-test ran 11_cli after it in the same worker, the CLI's
    # one-line warning test saw nothing and CI failed (and passed on runs that ordered the notebooks otherwise).
    bad = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        inits = set().union(*map(_initializers, cells))
        bad += [f"{nb.name}: {line}" for src in cells for line in _broad_filters(src, inits)]
    assert not bad, "filters that outlive their notebook (name the message, or use `with warnings.catch_warnings()`):\n" + '\n'.join(bad)
