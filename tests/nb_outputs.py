"""Notebooks keep the outputs of their examples: the docs site (Quarto) and GitHub show stored outputs, they do not run notebooks.

    python tests/nb_outputs.py save [NOTEBOOK ...] [--flags slow]   # re-execute in place (all notebooks by default), then nbdev-clean
    python tests/nb_outputs.py check [NOTEBOOK ...]                  # CI: re-execute in memory; fail on errors or stale outputs

Each notebook runs in a fresh process (two at a time), as nbdev-test runs it: cells skipped by `tst_flags` (`#| slow`) and
`#| eval: false` are not run and keep what they stored. One process per notebook makes the outputs deterministic: under
nbdev-test's shared workers, matplotlib figures left open by one notebook were displayed by the next one's cell.

`check` fails when
- a cell raises (what nbdev-test checks);
- a notebook with an export cell, or a tutorial, stores no outputs at all;
- a stored output is an error, or a cell holds an execution count (nbdev-clean was not run);
- a re-run cell gives outputs of other kinds than it stored (e.g. a figure that no longer appears, or a table where a
  figure was): the stored outputs came from code that no longer exists. Kinds are the output's MIME types and stdout;
  stderr is left out (warnings depend on the installed versions);
- nbs/ is over its size budget.
"""
import json, sys, os, re, subprocess, tempfile, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
BUDGET_MB = 10
WORKERS = 2
THREADS = max(1, (os.cpu_count() or 1) // WORKERS)   # torch threads per notebook: more oversubscribe the cores (a notebook ran 15× slower)

def notebooks(names=()):
    "The notebooks to run: `names`, or every notebook under nbs/ (not in folders or files starting with `_` or `.`)."
    if names: return [Path(n).resolve() for n in names]
    return sorted(p for p in NBS.rglob('*.ipynb') if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts))

def kinds(cell:dict):
    "The kinds of a code cell's outputs, in order without repeats: MIME types, 'stdout', 'error'."
    out = []
    for o in cell.get('outputs', []):
        t = o['output_type']
        ks = (['stdout'] if o.get('name') == 'stdout' else []) if t == 'stream' else ['error'] if t == 'error' else \
             sorted(k for k in o.get('data', {}) if k != 'text/plain') or ['text/plain']
        out += [k for k in ks if k not in out]
    return out

def _run(fn:str, flags:str=''):
    "Execute notebook `fn` as nbdev-test does (its skip rules, its working folder); the executed cells, or the error text."
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    fn = Path(fn)
    os.environ['IN_TEST'] = '1'
    nb = NBProcessor(fn, rm_directives=False, process=True).nb
    skip = get_config().tst_flags.split()
    no_eval = _skip_cell(nb, [f for f in skip if f not in flags.split()], flags.split())
    k = CaptureShell(fn)
    try:
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=no_eval, cell_timeout=600)
    except Exception: return dict(error=k.prettytb(fname=fn) or 'error')
    return dict(ran=[bool(c.cell_type == 'code' and not no_eval(c)) for c in nb.cells], nb=nb)

def _installed_noise(o):
    "A stderr output from an installed package (e.g. torch's deprecation warnings at fastai's import): this machine's paths, no lesson."
    return o.get('output_type') == 'stream' and o.get('name') == 'stderr' and '/site-packages/' in ''.join(o.get('text', ''))

def _run_one(fn:str, flags:str, save:bool, out:str):
    "In a fresh process: run `fn`, write it back if `save`, and leave the result (cells' outputs, or the error) in JSON file `out`."
    r = _run(fn, flags)
    if 'error' not in r:
        if save:
            from fastcore.nbio import write_nb
            for c in r['nb'].cells:
                if c.cell_type == 'code': c.outputs = [o for o in c.outputs if not _installed_noise(o)]
            write_nb(r['nb'], fn)
        r = dict(ran=r['ran'], cells=[dict(outputs=[dict(o) for o in c.get('outputs', [])]) for c in r['nb'].cells])
    Path(out).write_text(json.dumps(r, default=str))

def _one(nb:Path, flags:str, save:bool):
    "Run one notebook in a new Python process; (notebook, result, seconds)."
    with tempfile.TemporaryDirectory() as d:
        t0, out = time.perf_counter(), Path(d)/'result.json'
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', str(THREADS)))   # workers × threads = cores
        p = subprocess.run([sys.executable, __file__, '_one', str(nb), flags, str(int(save)), str(out)], capture_output=True, text=True, env=env)
        secs = time.perf_counter() - t0
        if not out.exists(): return nb, dict(error=f"the process ended ({p.returncode}) without a result:\n{p.stderr[-3000:]}"), secs
        return nb, json.loads(out.read_text()), secs

def execute(nbs, flags='', save=False, workers=WORKERS):
    "Run `nbs`, each in a fresh process, `workers` at a time; {notebook: result}. Prints each notebook's time as it ends."
    res = {}
    with ThreadPoolExecutor(workers) as ex:
        for fut in as_completed([ex.submit(_one, nb, flags, save) for nb in nbs]):
            nb, r, secs = fut.result()
            print(f"  {Path(nb).relative_to(NBS)}: {secs:.0f} s{' FAILED' if 'error' in r else ''}", flush=True)
            res[str(nb)] = r
    return res

def stored_problems(fn:Path):
    "What is wrong with a notebook's stored outputs, without running it."
    nb, name = json.loads(fn.read_text()), fn.relative_to(NBS)
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    teaches = any(re.match(r'\s*#\|\s*export', ''.join(c['source'])) for c in code) or 'tutorials' in fn.parts
    probs = []
    if teaches and not any(c.get('outputs') for c in code): probs.append(f"{name}: no stored outputs (run `python tests/nb_outputs.py save {name}`)")
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        if 'error' in kinds(c): probs.append(f"{name} cell {i}: a stored error output")
        if c.get('execution_count') is not None: probs.append(f"{name} cell {i}: an execution count (run nbdev-clean)")
    return probs

def stale(fn:Path, result:dict):
    "Cells whose re-run outputs differ in kind from the stored ones."
    cells = json.loads(Path(fn).read_text())['cells']
    if len(cells) != len(result['cells']): return [f"{fn.name}: {len(cells)} cells stored, {len(result['cells'])} run"]
    return [f"{Path(fn).relative_to(NBS)} cell {i}: stored {kinds(a) or 'nothing'}, re-run gives {kinds(b) or 'nothing'} "
            f"({''.join(a['source']).splitlines()[0][:60] if a['source'] else ''!r})"
            for i, (a, b, ran) in enumerate(zip(cells, result['cells'], result['ran'])) if ran and kinds(a) != kinds(b)]

def size_mb(): return sum(p.stat().st_size for p in NBS.rglob('*') if p.is_file() and '_proc' not in p.parts) / 2**20

def main(argv):
    if argv and argv[0] == '_one': return _run_one(argv[1], argv[2], argv[3] == '1', argv[4])
    cmd, rest = (argv[0] if argv else 'check'), argv[1:]
    flags = ''
    if '--flags' in rest: i = rest.index('--flags'); flags = rest[i + 1]; rest = rest[:i] + rest[i + 2:]
    nbs = notebooks(rest)
    if not nbs: print('no notebooks found'); return 1
    res = execute(nbs, flags, save=(cmd == 'save'))
    errors = {fn: r['error'] for fn, r in res.items() if 'error' in r}
    for fn, e in errors.items(): print(f"== {fn} failed:\n{e}", file=sys.stderr)
    if cmd == 'save':
        for fn in res:
            if fn not in errors: subprocess.run(['nbdev-clean', '--fname', fn], cwd=ROOT, check=True)
        print(f"saved {len(nbs) - len(errors)} notebooks; nbs/ is {size_mb():.1f} MB")
        return 1 if errors else 0
    probs = [p for fn in notebooks() for p in stored_problems(fn)]
    probs += [p for fn, r in res.items() if 'error' not in r for p in stale(fn, r)]
    mb = size_mb()
    if mb > BUDGET_MB: probs.append(f"nbs/ is {mb:.1f} MB, over its {BUDGET_MB} MB budget: shrink figures (dpi, size) or store fewer")
    with_out = sum(any(c.get('outputs') for c in json.loads(p.read_text())['cells']) for p in notebooks())
    print(f"{len(nbs)} notebooks run, {len(errors)} failed; {with_out} of {len(notebooks())} store outputs; nbs/ is {mb:.1f} MB")
    for p in probs: print('  ' + p)
    return 1 if errors or probs else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
