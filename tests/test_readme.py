"""README.md is generated from nbs/index.ipynb (nbdev-readme needs Quarto, which these machines lack).
Regenerate with `python tests/test_readme.py`; the test fails when the two disagree."""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _from_root(md:str):
    "Relative links and images of nbs/index.ipynb (`images/x.png`, `tutorials/a.ipynb`) as README.md, at the repository root, reaches them."
    return re.sub(r'(!?\[[^\]]*\]\()(?![a-z]+:|#|/)([^)\s]+)', r'\1nbs/\2', md)

def readme_from_index(nb=ROOT/'nbs'/'index.ipynb'):
    "README text: markdown cells as they are (relative links made relative to the root), code cells (minus `#|` directives) as python blocks, hidden cells left out."
    parts = []
    for c in json.loads(Path(nb).read_text())['cells']:
        src = ''.join(c['source']).strip()
        if c['cell_type'] == 'markdown': parts.append(_from_root(src)); continue
        lines = src.splitlines()
        if any(re.match(r'#\|\s*hide', l) for l in lines): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f"```python\n{code}\n```")
    return '\n\n'.join(parts) + '\n'

def test_readme_matches_index():
    assert (ROOT/'README.md').read_text() == readme_from_index(), "README.md is stale: run `python tests/test_readme.py`"

def test_readme_first_screen_has_both_commands():
    first = (ROOT/'README.md').read_text().splitlines()[:25]
    assert any('fastgan_study train' in l for l in first)
    assert any('bash tests/run.sh' in l for l in first)

def test_links_reach_the_same_files_from_the_root():
    assert _from_root('![grid](images/a.png) and [tut](tutorials/b.ipynb)') == '![grid](nbs/images/a.png) and [tut](nbs/tutorials/b.ipynb)'
    same = '[site](https://x.io/a.png) [top](#layout) [abs](/etc/x)'
    assert _from_root(same) == same
    for target in re.findall(r'\]\((nbs/[^)\s#]+)', (ROOT/'README.md').read_text()): assert (ROOT/target).exists(), target

def test_ci_runs_the_readme_test_command():
    cmd = next(l for l in (ROOT/'README.md').read_text().splitlines() if 'tests/run.sh' in l)
    ci = (ROOT/'.ci'/'run').read_text()
    assert cmd.strip().strip('`').startswith('pip install -e ".[dev]"')
    assert cmd.strip().strip('`') in ci.splitlines()   # CI runs the README's line exactly

if __name__ == '__main__':
    (ROOT/'README.md').write_text(readme_from_index()); print('wrote README.md')
