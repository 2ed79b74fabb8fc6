"""Notebooks share processes under nbdev-test (each worker runs several notebooks, one after another, in whatever order the pool
hands them out), so a notebook must not change process-wide state that another notebook's checks depend on."""
import ast, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _broad_filters(src:str):
    "Lines of `src` that ignore a whole category of warnings for the rest of the process (outside `with warnings.catch_warnings()`)."
    code = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())
    try: tree = ast.parse(code)
    except SyntaxError: return []
    guarded = {id(n) for w in ast.walk(tree) if isinstance(w, ast.With)
               if any('catch_warnings' in ast.unparse(i.context_expr) for i in w.items) for n in ast.walk(w)}
    # a worker's initializer (study's `_init_worker`) sets the filters of its own, new process
    guarded |= {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and 'worker' in f.name for n in ast.walk(f)}
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
    assert not _broad_filters("def _init_worker():\n    warnings.simplefilter('ignore')")

def test_notebooks_leave_warnings_visible():
    # 08_latent once ignored every UserWarning at its top level; when nbdev-test ran 11_cli after it in the same worker, the CLI's
    # one-line warning test saw nothing and CI failed (and passed on runs that ordered the notebooks otherwise).
    bad = [f"{nb.name}: {line}" for nb in sorted((ROOT/'nbs').glob('*.ipynb'))
           for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code'
           for line in _broad_filters(''.join(c['source']))]
    assert not bad, "filters that outlive their notebook (name the message, or use `with warnings.catch_warnings()`):\n" + '\n'.join(bad)
