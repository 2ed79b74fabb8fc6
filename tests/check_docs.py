"""Offline check of the documentation site that `nbdev-docs` builds where Quarto is installed.

`python tests/check_docs.py` runs nbdev's docs processing (`proc_nbs`: directives, `show_doc`, links — everything but Quarto)
on a copy of the project, then checks what a reader of the site would trip over:

- processing runs without an error, and no cell mixes imports with other code (the docs build runs such cells whole);
- every public function and class (`__all__` of each generated module) has its `show_doc` entry on the page of the notebook
  that defines it — an entry on another notebook's page does not count, since nbdev's links (`_modidx.py`) point at the
  defining page; data names (constants, tables) are counted but need no entry, as `show_doc` documents signatures;
- every notebook opens with a markdown `# Title` and a `> one-line` description (after `#| default_exp` if any), and that
  cell holds nothing else: nbdev turns the title cell into page metadata and drops the whole cell from the page;
- every image in markdown (`![..](path)`, `<img src=..>`) exists inside `nbs/`; every internal link (another notebook,
  its `.html` page, a file, a `#anchor` to a heading or `show_doc` entry) resolves, links nbdev adds to our own site
  included; external links are counted, never fetched;
- `_quarto.yml` and `sidebar.yml` parse, the sidebar lists every notebook and only existing ones, `custom_sidebar` keeps
  nbdev from regenerating it, and each module docstring's `Docs:` address is a page of the site.

It prints counts and exits 1 with the list of problems.
"""
import ast, contextlib, io, json, os, re, shutil, sys, tempfile, warnings
from pathlib import Path
from urllib.parse import urlsplit, unquote
import yaml
from fastcore.xtras import str2bool
from nbdev.config import get_config, nbpath2html
from nbdev.doclinks import nbglob
from nbdev.serve import proc_nbs

ROOT = Path(__file__).resolve().parents[1]

def read_nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))
def cell_src(cell): s = cell.get('source') or ''; return ''.join(s) if isinstance(s, list) else s

def notebooks(nbs:Path):
    "Notebooks of the site, relative to `nbs` (nbdev's rules: folders and files starting with `_` or `.` are skipped)"
    return sorted(Path(p).relative_to(nbs) for p in nbglob(nbs, func=Path, skip_folder_re=r'^[_.]'))

## docs processing

MIXED = 'Found cells containing imports and other code'

def _warning_problem(rel, w):
    msg = str(w.message)
    if MIXED in msg:
        src = msg.split('---')[1].strip()
        try: other = next(ast.get_source_segment(src, n) for n in ast.parse(src).body
                          if not isinstance(n, (ast.Import, ast.ImportFrom)))
        except (SyntaxError, StopIteration): other = src.splitlines()[-1]
        return (f'{rel}: a cell mixes imports with other code ({other[:70]!r}): the docs build runs the whole cell; '
                'keep imports in an import-only cell')
    return f'{rel}: docs processing warned: {msg.strip().splitlines()[0][:200]}'

def process_notebooks(root:Path=ROOT, rels=None):
    "Run nbdev's `proc_nbs` on a copy of the project at `root`, one notebook at a time: (cache folder, problems)"
    cfg = get_config(root)
    tmp = Path(tempfile.mkdtemp(prefix='check_docs_'))
    shutil.copy(cfg.config_file, tmp/cfg.config_file.name)
    nbs = tmp/cfg.nbs_path.relative_to(cfg.config_path)
    shutil.copytree(cfg.nbs_path, nbs, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
    (tmp/cfg.lib_path.relative_to(cfg.config_path)).symlink_to(cfg.lib_path, target_is_directory=True)
    problems, cwd, env = [], os.getcwd(), dict(os.environ)
    nbdev_dir = str(Path(proc_nbs.__code__.co_filename).parent)
    os.chdir(tmp)   # as nbdev-docs does: nbdev's links and settings come from the project in the working directory
    try:
        for rel in (notebooks(cfg.nbs_path) if rels is None else rels):
            out = io.StringIO()
            with warnings.catch_warnings(record=True) as ws, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                warnings.simplefilter('always')
                try: proc_nbs(nbs, n_workers=0, path_re='^' + re.escape(str(nbs/rel)) + '$')
                except Exception as e:
                    problems.append(f'{rel}: docs processing failed: ' + ' | '.join(str(e).strip().splitlines()[-3:]))
            problems += list(dict.fromkeys(_warning_problem(rel, w) for w in ws if str(w.filename).startswith(nbdev_dir)))
            text = out.getvalue()
            if 'Traceback' in text or 'Error' in text: problems.append(f'{rel}: docs processing printed an error: {text.strip()[-300:]}')
            os.environ.clear(); os.environ.update(env)   # cells run by the docs build may set variables; the next notebook starts clean
    finally: os.chdir(cwd)
    return tmp/'_proc', problems

## show_doc entries

_re_marker = re.compile(r'^# %% (\S+\.ipynb)')
_re_heading = re.compile(r'^(#{1,6})\s+(.+?)\s*(?:\{([^}]*)\})?\s*$', re.MULTILINE)

def defined_names(py:Path):
    "{name: (defining notebook path, 'def' or 'data')} for each name in the `__all__` of nbdev-generated module `py`"
    src = py.read_text(encoding='utf-8')
    tree, marks = ast.parse(src), []
    for i, line in enumerate(src.splitlines(), 1):
        if m := _re_marker.match(line): marks.append((i, (py.parent/m.group(1)).resolve()))
    public, found = [], {}
    for node in tree.body:
        line = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
        nb = next((p for i, p in reversed(marks) if i < line), None)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names, kind = [node.name], 'def'
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names, kind = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)], 'data'
            if '__all__' in names: public = ast.literal_eval(node.value)
        else: continue
        for n in names:
            if n not in found or (kind == 'def' and found[n][1] == 'data'): found[n] = (nb, kind)
    return {n: found.get(n, (None, 'data')) for n in public}

def generated_modules(lib:Path):
    return sorted(p for p in lib.glob('*.py') if 'AUTOGENERATED! DO NOT EDIT' in p.read_text(encoding='utf-8')[:2000])

def showdoc_names(nb:dict):
    "Names with a rendered `show_doc` entry in processed notebook `nb` (the heading of each `show_doc` output)"
    res = set()
    for c in nb['cells']:
        if c['cell_type'] != 'code' or 'show_doc' not in cell_src(c): continue
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md and (m := _re_heading.search(''.join(md) if isinstance(md, list) else md)): res.add(m.group(2).replace('\\', ''))
    return res

def check_showdocs(lib:Path, nbs:Path, cache:Path):
    "(number of functions and classes checked, number of data names, problems)"
    shown, n_def, n_data, problems, unchecked = {}, 0, 0, [], {}
    def names_on(rel):
        if rel not in shown: shown[rel] = showdoc_names(read_nb(cache/rel)) if (cache/rel).exists() else None
        return shown[rel]
    for py in generated_modules(lib):
        for name, (nb, kind) in defined_names(py).items():
            if kind == 'data': n_data += 1; continue
            n_def += 1
            if nb is None or not nb.is_relative_to(nbs.resolve()):
                problems.append(f'{lib.name}/{py.name}: `{name}` has no notebook cell marker: run nbdev-export'); continue
            rel = nb.relative_to(nbs.resolve())
            on_page = names_on(rel)
            if on_page is None: unchecked.setdefault(rel, []).append(name); continue
            if name in on_page: continue
            elsewhere = [str(r) for r in notebooks(nbs) if r != rel and name in (names_on(r) or ())]
            problems.append(f'{rel}: `{name}` ({py.stem}) has no show_doc entry on its page'
                            + (f' (shown on {", ".join(elsewhere)} instead)' if elsewhere else '')
                            + ': export it from a visible `#| export` cell or add `show_doc(' + name + ')`')
    problems += [f'{rel}: show_doc entries of {len(ns)} names not checked, as the notebook was not processed' for rel, ns in unchecked.items()]
    return n_def - sum(map(len, unchecked.values())), n_data, problems

## titles

_re_directive = re.compile(r'^\s*#\s*\|')
_re_fm_line = re.compile(r'^-\s+\S.*:.*\S\s*$')

def check_title(nb:dict, rel):
    "Problems with the opening of notebook `nb`: `# Title` then `> description`, alone in the first markdown cell"
    cells = nb['cells']
    i = next((i for i, c in enumerate(cells)
              if not (c['cell_type'] == 'code' and all(_re_directive.match(l) for l in cell_src(c).splitlines() if l.strip()))), None)
    if i is None or cells[i]['cell_type'] != 'markdown':
        return [f'{rel}: does not open with a markdown cell `# Title` / `> description` (only `#| ...` directive cells may come first)']
    lines = [l.rstrip() for l in cell_src(cells[i]).splitlines() if l.strip()]
    if not re.match(r'#\s+\S', lines[0]): return [f'{rel}: the first markdown cell does not start with a `# Title` line']
    if len(lines) < 2 or not re.match(r'>\s+\S', lines[1]): return [f'{rel}: no `> one-line description` right under the title']
    extra = [l for l in lines[2:] if not _re_fm_line.match(l)]
    if extra: return [f'{rel}: the title cell holds {len(extra)} more line(s) (from {extra[0][:50]!r}): nbdev turns that cell into '
                      'the page title and drops it, so they never reach the site; move them into their own markdown cell']
    return []

## images and links

_re_fence = re.compile(r'^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1', re.MULTILINE | re.DOTALL)
_re_code = re.compile(r'(`+).+?\1', re.DOTALL)
_re_md_img = re.compile(r'!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+["\'][^)]*)?\)')
_re_md_link = re.compile(r'(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+["\'][^)]*)?\)')
_re_ref_def = re.compile(r'^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)', re.MULTILINE)
_re_img_tag = re.compile(r'<img\b[^>]*?\bsrc\s*=\s*["\']([^"\']+)["\']', re.IGNORECASE)
_re_a_tag = re.compile(r'<a\b[^>]*?\bhref\s*=\s*["\']([^"\']+)["\']', re.IGNORECASE)

def prose(md:str):
    "Markdown without its fenced code blocks and code spans (where brackets are code, not links)"
    return _re_code.sub('', _re_fence.sub('', md))

def md_refs(md:str):
    "(image targets, link targets) of markdown text"
    md = prose(md)
    return (_re_md_img.findall(md) + _re_img_tag.findall(md),
            _re_md_link.findall(md) + _re_ref_def.findall(md) + _re_a_tag.findall(md))

def heading_id(text:str):
    "The id Pandoc (and so Quarto) gives a heading: punctuation dropped, spaces to hyphens, lower case, from the first letter"
    t = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)
    t = re.sub(r'<[^>]+>|[`*]|\\(?=\W)', '', t)
    t = ''.join(c for c in re.sub(r'\s+', ' ', t.strip()) if c.isalnum() or c in '_-. ').replace(' ', '-').lower()
    t = t[next((i for i, c in enumerate(t) if c.isalpha()), len(t)):]
    return t or 'section'

def page_markdown(nb:dict):
    "The markdown of a page: markdown cells and markdown outputs (`show_doc` entries among them)"
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': yield cell_src(c)
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md: yield ''.join(md) if isinstance(md, list) else md

def anchors(nb:dict):
    "Ids a link can point at on a page: its headings (`show_doc` entries included) and explicit ids"
    res, seen = set(), {}
    for t in page_markdown(nb):
        t = _re_fence.sub('', t)
        for m in _re_heading.finditer(t):
            explicit = re.search(r'#([\w.:-]+)', m.group(3) or '')
            hid = explicit.group(1) if explicit else heading_id(m.group(2))
            if not explicit and hid in seen: seen[hid] += 1; hid = f'{hid}-{seen[hid]}'
            else: seen.setdefault(hid, 0)
            res.add(hid)
        res.update(re.findall(r'\bid\s*=\s*["\']([^"\']+)["\']', t))
    return res

class Site:
    "The pages of the site: notebooks under `nbs`, their processed copies in `cache` (for `show_doc` headings), its address"
    def __init__(self, nbs:Path, cache:Path=None, url:str=''):
        self.nbs, self.cache, self.url = Path(nbs), cache and Path(cache), url.rstrip('/')
        self.rels = notebooks(self.nbs)
        self.html = {nbpath2html(r): r for r in self.rels}
        self._anchors = {}

    def anchors(self, rel):
        if rel not in self._anchors:
            p = self.cache/rel if self.cache and (self.cache/rel).exists() else self.nbs/rel
            self._anchors[rel] = anchors(read_nb(p))
        return self._anchors[rel]

    def page(self, path:str, frm:Path):
        "(notebook of the page, or None for a plain file; problem or None) for relative `path` in notebook `frm`"
        p = Path(os.path.normpath(self.nbs/frm.parent/path))
        if not p.is_relative_to(self.nbs): return None, f'{path} is outside nbs/, so it is not published with the site'
        rel = p.relative_to(self.nbs)
        if rel in self.rels: return rel, None
        if rel.suffix == '.html' and rel in self.html: return self.html[rel], None
        if rel.suffix == '.md' and rel.with_suffix('') in self.html: return self.html[rel.with_suffix('')], None
        if p.exists(): return None, None
        if rel.suffix == '.html' and rel.with_suffix('.ipynb') in self.rels:
            return None, f'{path} is not a page: that notebook renders to {nbpath2html(rel)} (nbdev drops the number prefix)'
        return None, f'{path} does not exist'

    def check_link(self, target:str, frm:Path):
        "A problem with link `target` in notebook `frm`, '' when it resolves, or 'external' for links not checked offline"
        u = urlsplit(target)
        if self.url and target.startswith(self.url + '/'): page, why = self.page(target[len(self.url)+1:].split('#')[0], Path('x'))
        elif u.scheme or u.netloc: return 'external'
        elif not u.path: page, why = frm, None
        else: page, why = self.page(unquote(u.path), frm)
        if why: return why
        if self.cache and page is not None and not (self.cache/page).exists(): return ''   # processing failed: reported already
        if u.fragment and page is not None and unquote(u.fragment) not in self.anchors(page):
            return f'#{u.fragment} is not a heading or show_doc entry of {page}'
        return ''

def check_refs(site:Site):
    "(images checked, links checked, external links, problems) over the markdown of every notebook"
    n_img = n_link = n_ext = 0; problems = []
    for rel in site.rels:
        nb = read_nb(site.nbs/rel)
        proc = read_nb(site.cache/rel) if site.cache and (site.cache/rel).exists() else nb
        for c in nb['cells']:
            if c['cell_type'] != 'markdown': continue
            imgs, _ = md_refs(cell_src(c))
            for t in imgs:
                n_img += 1
                if t.startswith('attachment:'):
                    if t[11:] not in c.get('attachments', {}): problems.append(f'{rel}: image {t} is not attached to its cell')
                    continue
                if urlsplit(t).scheme: n_ext += 1; continue
                page, why = site.page(unquote(urlsplit(t).path), rel)
                if why: problems.append(f'{rel}: image {why}')
        for text in page_markdown(proc):   # the processed page: our links plus those nbdev adds to `names` in backticks
            for t in md_refs(text)[1]:
                res = site.check_link(t, rel)
                if res == 'external': n_ext += 1; continue
                n_link += 1
                if res: problems.append(f'{rel}: link {t}: {res}')
    return n_img, n_link, n_ext, list(dict.fromkeys(problems))

## site configuration

def sidebar_entries(contents):
    "Page paths in a Quarto sidebar `contents` list (sections included)"
    res = []
    for o in ([contents] if isinstance(contents, (str, dict)) else contents or []):
        if isinstance(o, str): res.append(o)
        elif isinstance(o, dict):
            res += [o[k] for k in ('href', 'file', 'auto') if isinstance(o.get(k), str)]
            if 'contents' in o: res += sidebar_entries(o['contents'])
    return res

def check_sidebar(nbs:Path, cfg=None):
    "(entries listed, problems): sidebar.yml lists every notebook, each once, and only existing ones"
    p = nbs/'sidebar.yml'
    if not p.exists(): return 0, ['nbs/sidebar.yml is missing']
    try: d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e: return 0, [f'nbs/sidebar.yml does not parse: {e}']
    sb = (d or {}).get('website', {}).get('sidebar', {})
    entries = [e for s in (sb if isinstance(sb, list) else [sb]) for e in sidebar_entries(s.get('contents'))]
    problems, listed = [], []
    for e in entries:
        if urlsplit(e).scheme: continue
        found = sorted(p.relative_to(nbs) for p in nbs.glob(e)) if any(c in e for c in '*?[') else [Path(e)] if (nbs/e).exists() else []
        if not found: problems.append(f'nbs/sidebar.yml lists {e}, which does not exist')
        listed += found
    problems += [f'nbs/sidebar.yml lists {r} more than once' for r in sorted({r for r in listed if listed.count(r) > 1})]
    problems += [f'{r} is not in nbs/sidebar.yml' for r in notebooks(nbs) if r not in listed]
    if cfg is not None and not str2bool(cfg.get('custom_sidebar', False)):
        problems.append('pyproject.toml [tool.nbdev] has no `custom_sidebar = true`: nbdev-docs would overwrite nbs/sidebar.yml')
    return len(entries), problems

def check_quarto_yml(nbs:Path):
    "Problems with nbs/_quarto.yml: it parses, makes a website, and the files it names exist"
    p = nbs/'_quarto.yml'
    if not p.exists(): return ['nbs/_quarto.yml is missing']
    try: d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e: return [f'nbs/_quarto.yml does not parse: {e}']
    problems = [] if d.get('project', {}).get('type') == 'website' else ['nbs/_quarto.yml: project.type is not `website`']
    html = d.get('format', {}).get('html') or {}
    css = html.get('css', []) if isinstance(html, dict) else []
    for f in [*([css] if isinstance(css, str) else css), *d.get('metadata-files', [])]:
        if f != 'nbdev.yml' and not (nbs/f).exists():   # nbdev-docs writes nbdev.yml from pyproject.toml
            problems.append(f'nbs/_quarto.yml names {f}, which does not exist')
    nav = d.get('website', {}).get('navbar') or {}
    for e in sidebar_entries(nav.get('left', [])) + sidebar_entries(nav.get('right', [])):
        if not urlsplit(e).scheme and not (nbs/e.split('#')[0]).exists():
            problems.append(f'nbs/_quarto.yml navbar links {e}, which does not exist')
    return problems

_re_docs = re.compile(r'^Docs:\s*(\S+)', re.MULTILINE)

def check_docstrings(lib:Path, site:Site):
    "Problems with the `Docs:` address nbdev writes into each module docstring: it must be a page of the site"
    problems = []
    for py in generated_modules(lib):
        m, name = _re_docs.search(ast.get_docstring(ast.parse(py.read_text(encoding='utf-8'))) or ''), f'{lib.name}/{py.name}'
        if not m: problems.append(f'{name}: the module docstring has no `Docs:` address (set [project.urls] Documentation)')
        elif not m.group(1).startswith(site.url + '/'): problems.append(f'{name}: Docs: {m.group(1)} is not under {site.url}/')
        elif Path(m.group(1)[len(site.url)+1:].removesuffix('.md')) not in site.html:
            problems.append(f'{name}: Docs: {m.group(1)} is not a page of the site')
    return problems

## all together

def check(root:Path=ROOT):
    "(counts, problems) of the whole documentation site of the project at `root`"
    cfg = get_config(root)
    nbs, lib = cfg.nbs_path, cfg.lib_path
    problems = []
    if not cfg.doc_host: problems.append('pyproject.toml [project.urls] has no Documentation address: the site has no URL')
    cache, found = process_notebooks(root)
    try:
        problems += found
        site = Site(nbs, cache, f'{cfg.doc_host}{cfg.doc_baseurl}' if cfg.doc_host else '')
        for rel in site.rels: problems += check_title(read_nb(nbs/rel), rel)
        n_def, n_data, found = check_showdocs(lib, nbs, cache); problems += found
        n_img, n_link, n_ext, found = check_refs(site); problems += found
        n_side, found = check_sidebar(nbs, cfg); problems += found
        problems += check_quarto_yml(nbs) + check_docstrings(lib, site)
    finally: shutil.rmtree(cache.parent, ignore_errors=True)
    counts = dict(notebooks=len(site.rels), public=n_def, data=n_data, images=n_img, links=n_link, external=n_ext, sidebar=n_side)
    return counts, problems

def main(root:Path=ROOT):
    counts, problems = check(root)
    print(f"docs check: {counts['notebooks']} notebooks, {counts['public']} public functions and classes checked for show_doc "
          f"({counts['data']} data names need none), {counts['images']} images, {counts['links']} internal links "
          f"({counts['external']} external, not fetched), {counts['sidebar']} sidebar entries")
    if problems:
        print(f'{len(problems)} problem(s):'); print('\n'.join(f'  - {p}' for p in problems))
        return 1
    print('docs ok')
    return 0

if __name__ == '__main__': sys.exit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT))
