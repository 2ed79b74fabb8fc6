"The offline docs check (tests/check_docs.py) on tiny nbdev projects: a good one passes, each kind of broken page is caught."
import json, os, shutil
from pathlib import Path
import pytest
from nbdev.export import nb_export
import check_docs as cd

PYPROJECT = '''[project]
name = "tinylib"
description = "A tiny library"
[project.urls]
Repository = "https://github.com/example/tinylib"
Documentation = "https://example.github.io/tinylib/"
[tool.nbdev]
nbs_path = "nbs"
lib_path = "tinylib"
doc_path = "docs"
custom_sidebar = true
'''
QUARTO = 'project:\n  type: website\nformat:\n  html:\n    css: styles.css\nmetadata-files: [nbdev.yml, sidebar.yml]\n'
SIDEBAR = 'website:\n  sidebar:\n    contents:\n      - index.ipynb\n      - section: Modules\n        contents: [00_core.ipynb, 01_more.ipynb]\n'
PNG = bytes.fromhex('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000100'
                    '05fe02fea7d6a4b30000000049454e44ae426082')

def cell(src, kind='code'):
    c = dict(cell_type=kind, id=f'c{abs(hash(src)) % 10**8}', metadata={}, source=src)
    return c | (dict(outputs=[], execution_count=None) if kind == 'code' else {})

def md(src): return cell(src, 'markdown')

def notebook(*cells):
    return dict(cells=list(cells), metadata=dict(kernelspec=dict(display_name='Python 3', language='python', name='python3')),
                nbformat=4, nbformat_minor=5)

TITLE = md('# core\n\n> Greetings, the first module.')
GOOD = {
    'index.ipynb': notebook(md('# tinylib\n\n> A tiny library.'), md('Start with [the core](00_core.ipynb), or its [`greet`](core.html#greet).')),
    '00_core.ipynb': notebook(cell('#| default_exp core'), TITLE,
        md('Why we greet.'), cell('#| export\ndef greet(name:str): # who to greet\n    "Say hello to `name`"\n    return f"hello {name}"'),
        md('![a one-pixel picture](images/dot.png)\n\nLoud greetings are in [more](01_more.ipynb#shout); see also [greet](#greet).')),
    '01_more.ipynb': notebook(cell('#| default_exp more'), md('# more\n\n> Louder greetings.'),
        cell('#| export\ndef shout(name:str): # who to greet\n    "Say hello loudly"\n    return f"HELLO {name}"'),
        md('## Details\n\n<img src="images/dot.png" width="20"> is [above](#details).')),
}

def make_project(root:Path, nbs:dict):
    "A tiny nbdev project at `root`: pyproject, notebooks, site config, and the modules nbdev-export writes from them"
    (root/'nbs'/'images').mkdir(parents=True)
    (root/'pyproject.toml').write_text(PYPROJECT)
    (root/'nbs'/'_quarto.yml').write_text(QUARTO); (root/'nbs'/'sidebar.yml').write_text(SIDEBAR); (root/'nbs'/'styles.css').write_text('')
    (root/'nbs'/'images'/'dot.png').write_bytes(PNG)
    for name, nb in nbs.items(): (root/'nbs'/name).write_text(json.dumps(nb))
    (root/'tinylib').mkdir()
    return root

def export(root:Path, monkeypatch):
    "Write the project's modules from its notebooks, as nbdev-export does"
    monkeypatch.chdir(root)
    for p in sorted((root/'nbs').glob('*.ipynb')): nb_export(p, root/'tinylib')

@pytest.fixture(scope='module')
def good(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = make_project(tmp_path_factory.mktemp('good'), GOOD)
    export(root, mp); mp.undo()
    return root, cd.check(root)

def test_a_good_project_passes(good):
    root, (counts, problems) = good
    assert problems == []
    assert counts == dict(notebooks=3, public=2, data=0, images=2, links=5, external=0, sidebar=3)

def test_processing_leaves_the_project_alone(good):
    root, _ = good
    assert not (root/'_proc').exists() and sorted(p.name for p in (root/'nbs').iterdir()) == sorted(
        ['images', '_quarto.yml', 'sidebar.yml', 'styles.css', *GOOD])

def test_a_hidden_export_has_no_show_doc(tmp_path, monkeypatch):
    nbs = dict(GOOD, **{'01_more.ipynb': notebook(cell('#| default_exp more'), md('# more\n\n> Louder greetings.'),
        cell('#| export\ndef shout(name:str): # who\n    "Say hello loudly"\n    return name'),
        cell('#| export\n#| hide\ndef whisper(name:str): # who\n    "Say hello softly"\n    return name'),
        md('## Details'))})
    root = make_project(tmp_path, nbs); export(root, monkeypatch)
    cache, problems = cd.process_notebooks(root)
    try: n_def, n_data, found = cd.check_showdocs(root/'tinylib', root/'nbs', cache)
    finally: shutil.rmtree(cache.parent)
    assert problems == [] and n_def == 3
    assert len(found) == 1 and found[0].startswith('01_more.ipynb: `whisper` (more) has no show_doc entry')

def test_a_show_doc_on_another_page_does_not_count(tmp_path, monkeypatch):
    nbs = dict(GOOD, **{'01_more.ipynb': notebook(cell('#| default_exp more'), md('# more\n\n> Louder greetings.'),
        cell('#| export\n#| hide\ndef shout(name:str): # who\n    "Say hello loudly"\n    return name'))})
    nbs['index.ipynb'] = notebook(*GOOD['index.ipynb']['cells'], cell('from tinylib.more import shout'), cell('show_doc(shout)'))
    root = make_project(tmp_path, nbs); export(root, monkeypatch)
    monkeypatch.syspath_prepend(str(root))
    cache, problems = cd.process_notebooks(root)
    try: _, _, found = cd.check_showdocs(root/'tinylib', root/'nbs', cache)
    finally: shutil.rmtree(cache.parent)
    assert problems == [] and found == [
        '01_more.ipynb: `shout` (more) has no show_doc entry on its page (shown on index.ipynb instead): '
        'export it from a visible `#| export` cell or add `show_doc(shout)`']

def test_a_failing_cell_and_a_mixed_import_cell_are_reported(tmp_path, monkeypatch):
    nbs = dict(GOOD, **{'01_more.ipynb': notebook(cell('#| default_exp more'), md('# more\n\n> Louder greetings.'),
        cell('import os\nos.environ["TINY"] = "set by a notebook"'),
        cell('#| export\ndef shout(name): return 1/0 if name is None else nme'), cell('show_doc(shout)'), cell('shout(None)'))})
    root = make_project(tmp_path, nbs)
    mixed = ('01_more.ipynb: a cell mixes imports with other code (\'os.environ["TINY"] = "set by a notebook"\'): '
             'the docs build runs the whole cell; keep imports in an import-only cell')
    cache, problems = cd.process_notebooks(root)
    shutil.rmtree(cache.parent)
    assert problems == [mixed] and 'TINY' not in os.environ
    nbs['01_more.ipynb']['cells'].insert(3, cell('#| export\nfrom no_such_module_xyz import nothing'))
    (root/'nbs'/'01_more.ipynb').write_text(json.dumps(nbs['01_more.ipynb']))
    cache, problems = cd.process_notebooks(root, rels=[Path('01_more.ipynb')])
    shutil.rmtree(cache.parent)
    failed = [p for p in problems if p != mixed]
    assert len(problems) == 2 and len(failed) == 1 and failed[0].startswith('01_more.ipynb: docs processing failed:')
    assert "No module named 'no_such_module_xyz'" in failed[0]

def test_titles():
    assert cd.check_title(GOOD['00_core.ipynb'], '00_core.ipynb') == []
    assert cd.check_title(notebook(md('# core\n\n> One line.\n\n- skip_showdoc: true')), 'a') == []
    no_title = notebook(cell('#| default_exp core'), md('Greetings.'))
    assert cd.check_title(no_title, 'a.ipynb') == ['a.ipynb: the first markdown cell does not start with a `# Title` line']
    code_first = notebook(cell('#| default_exp core\nimport os'), TITLE)
    assert 'does not open with a markdown cell' in cd.check_title(code_first, 'a.ipynb')[0]
    no_desc = notebook(md('# core\n\nGreetings.'))
    assert cd.check_title(no_desc, 'a.ipynb') == ['a.ipynb: no `> one-line description` right under the title']
    crowded = notebook(md('# core\n\n> Greetings.\n\nThis paragraph is lost.\nSo is this line.'))
    assert cd.check_title(crowded, 'a.ipynb')[0].startswith("a.ipynb: the title cell holds 2 more line(s) (from 'This paragraph is lost.')")

def site_with(tmp_path, text):
    "The notebooks as they stand (no processing, so headings but no show_doc entries): index holds `text`"
    nbs = {'index.ipynb': notebook(md('# tinylib\n\n> A tiny library.'), md('## Details'), md(text)),
           '00_core.ipynb': notebook(TITLE, md('## Greet'))}
    return cd.Site(make_project(tmp_path, nbs)/'nbs', url='https://example.github.io/tinylib')

def test_a_broken_image(tmp_path):
    n_img, _, _, problems = cd.check_refs(site_with(tmp_path, '![a](images/nope.png), <img src="../outside.png"> ![b](images/dot.png)'))
    assert n_img == 3 and problems == ['index.ipynb: image images/nope.png does not exist',
                                       'index.ipynb: image ../outside.png is outside nbs/, so it is not published with the site']

def test_broken_links(tmp_path):
    text = ('[a](02_gone.ipynb) [b](#nowhere) [c](00_core.html) [d](core.html#nope) [e](#details) [f](core.html#greet)\n'
            '[g](https://example.github.io/tinylib/core.html#nope) [h](https://fast.ai) `[not a link](x.ipynb)`\n'
            '```\n[nor this](y.ipynb)\n```')
    n_img, n_link, n_ext, problems = cd.check_refs(site_with(tmp_path, text))
    assert problems == ['index.ipynb: link 02_gone.ipynb: 02_gone.ipynb does not exist',
                        'index.ipynb: link #nowhere: #nowhere is not a heading or show_doc entry of index.ipynb',
                        'index.ipynb: link 00_core.html: 00_core.html is not a page: that notebook renders to core.html (nbdev drops the number prefix)',
                        'index.ipynb: link core.html#nope: #nope is not a heading or show_doc entry of 00_core.ipynb',
                        'index.ipynb: link https://example.github.io/tinylib/core.html#nope: #nope is not a heading or show_doc entry of 00_core.ipynb']
    assert (n_img, n_link, n_ext) == (0, 7, 1)

def test_heading_ids_follow_pandoc():
    "The examples of Pandoc's manual (Extension: auto_identifiers), and ours"
    assert [cd.heading_id(t) for t in ['Heading identifiers in HTML', "Maître d'hôtel", '*Dogs*?--in *my* house?',
            '[HTML], [S5], or [RTF]?', '3. Applications', '33', 'What `fastgan_study train` does', 'GANLoss.__init__']] == [
        'heading-identifiers-in-html', 'maître-dhôtel', 'dogs--in-my-house', 'html-s5-or-rtf', 'applications', 'section',
        'what-fastgan_study-train-does', 'ganloss.__init__']
    assert cd.anchors(notebook(md('## Twice\n\n## Twice\n\n## Named {#mine}'))) == {'twice', 'twice-1', 'mine'}

def test_the_sidebar(tmp_path):
    root = make_project(tmp_path, GOOD)
    assert cd.check_sidebar(root/'nbs') == (3, [])
    (root/'nbs'/'sidebar.yml').write_text(SIDEBAR.replace('01_more.ipynb', 'tutorials/first.ipynb'))
    assert cd.check_sidebar(root/'nbs')[1] == ['nbs/sidebar.yml lists tutorials/first.ipynb, which does not exist',
                                               '01_more.ipynb is not in nbs/sidebar.yml']
    (root/'nbs'/'sidebar.yml').write_text('website: [unclosed')
    assert cd.check_sidebar(root/'nbs')[1][0].startswith('nbs/sidebar.yml does not parse')

def test_quarto_yml(tmp_path):
    root = make_project(tmp_path, GOOD)
    assert cd.check_quarto_yml(root/'nbs') == []
    (root/'nbs'/'styles.css').unlink()
    assert cd.check_quarto_yml(root/'nbs') == ['nbs/_quarto.yml names styles.css, which does not exist']
    (root/'nbs'/'_quarto.yml').write_text('project: {type: website\n')
    assert cd.check_quarto_yml(root/'nbs')[0].startswith('nbs/_quarto.yml does not parse')

def test_this_repository_is_configured_for_the_site():
    "The real site: the sidebar names every notebook but tutorials still being written, and nbdev keeps our sidebar."
    cfg = cd.get_config(cd.ROOT)
    assert cd.check_quarto_yml(cfg.nbs_path) == []
    assert all('tutorials/' in p for p in cd.check_sidebar(cfg.nbs_path, cfg)[1])
    assert f'{cfg.doc_host}{cfg.doc_baseurl}/' == 'https://fastgan-study.github.io/fastgan_study/'

def test_module_docstrings_point_at_pages(good, tmp_path):
    root, _ = good
    lib = tmp_path/'tinylib'; shutil.copytree(root/'tinylib', lib)
    site = cd.Site(root/'nbs', url='https://example.github.io/tinylib')
    assert cd.check_docstrings(lib, site) == []
    core = lib/'core.py'
    core.write_text(core.read_text().replace('/core.html.md', '/00_core.html.md'))
    assert cd.check_docstrings(lib, site) == ['tinylib/core.py: Docs: https://example.github.io/tinylib/00_core.html.md is not a page of the site']
