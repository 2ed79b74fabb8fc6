"The checks of tests/nb_outputs.py (stored outputs present, clean and current) catch what they are for."
import json
from pathlib import Path
import nb_outputs as no

def _cell(src, outputs=(), count=None): return dict(cell_type='code', source=src, metadata={}, outputs=list(outputs), execution_count=count)
def _png(): return dict(output_type='display_data', data={'image/png': 'iVBOR', 'text/plain': ['<Figure>']}, metadata={})
def _text(t='1'): return dict(output_type='execute_result', data={'text/plain': [t]}, metadata={}, execution_count=None)
def _html(): return dict(output_type='display_data', data={'text/html': ['<table/>'], 'text/plain': ['df']}, metadata={})
def _stream(name, t='x'): return dict(output_type='stream', name=name, text=[t])

def _nb(path:Path, cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))
    return path

def test_kinds():
    assert no.kinds(_cell('x', [_png()])) == ['image/png']
    assert no.kinds(_cell('x', [_stream('stdout'), _stream('stderr'), _text()])) == ['stdout', 'text/plain']
    assert no.kinds(_cell('x', [_stream('stderr')])) == []     # warnings vary with versions: not a kind
    assert no.kinds(_cell('x', [_png(), _png(), _html()])) == ['image/png', 'text/html']
    assert no.kinds(_cell('x', [dict(output_type='error', ename='E', evalue='', traceback=[])])) == ['error']

def test_stored_problems(tmp_path, monkeypatch):
    monkeypatch.setattr(no, 'NBS', tmp_path)
    good = _nb(tmp_path/'00_a.ipynb', [_cell('#| export\ndef f(): pass'), _cell('f()', [_text()])])
    assert no.stored_problems(good) == []
    bare = _nb(tmp_path/'01_b.ipynb', [_cell('#| export\ndef f(): pass'), _cell('f()')])
    assert 'no stored outputs' in no.stored_problems(bare)[0]
    tut = _nb(tmp_path/'tutorials'/'t.ipynb', [_cell('1 + 1')])       # tutorials teach without exporting
    assert 'no stored outputs' in no.stored_problems(tut)[0]
    assert no.stored_problems(_nb(tmp_path/'zoo.ipynb', [_cell('1 + 1')])) == []   # nothing exported, not a tutorial
    err = _nb(tmp_path/'02_c.ipynb', [_cell('#| export\nx=1', [dict(output_type='error', ename='E', evalue='', traceback=[])])])
    assert 'error' in no.stored_problems(err)[0]
    dirty = _nb(tmp_path/'03_d.ipynb', [_cell('#| export\nx=1'), _cell('x', [_text()], count=3)])
    assert 'execution count' in no.stored_problems(dirty)[0]

def test_stale_outputs_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(no, 'NBS', tmp_path)
    fn = _nb(tmp_path/'a.ipynb', [_cell('plot()', [_png()]), _cell('df', [_html()]), _cell('slow()', [_png()])])
    same = dict(ran=[True, True, True], cells=[dict(outputs=[_png()]), dict(outputs=[_html(), _stream('stderr')]), dict(outputs=[_png()])])
    assert no.stale(fn, same) == []
    gone = dict(ran=[True, True, False], cells=[dict(outputs=[_text()]), dict(outputs=[_html()]), dict(outputs=[])])
    probs = no.stale(fn, gone)
    assert len(probs) == 1 and 'cell 0' in probs[0] and "['image/png']" in probs[0]   # the skipped cell 2 keeps what it stored
    assert 'cells stored' in no.stale(fn, dict(ran=[True], cells=[dict(outputs=[])]))[0]

def test_every_notebook_is_found():
    found = {p.name for p in no.notebooks()}
    assert {'index.ipynb', '00_core.ipynb', '11_cli.ipynb'} <= found
    assert not any(n.startswith(('_', '.')) for n in found)

def test_installed_packages_warnings_are_not_stored():
    torch_warning = _stream('stderr', '/venv/lib/python3.11/site-packages/torch/jit/_script.py:1491: FutureWarning: ...\n')
    assert no._installed_noise(torch_warning)
    assert not no._installed_noise(_stream('stderr', 'the domain classifier reads only 54% of held-out images\n'))   # ours: a lesson
    assert not no._installed_noise(_stream('stdout', '/site-packages/ in a printed path\n'))
