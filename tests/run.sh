#!/usr/bin/env bash
# The full test suite, as CI runs it (README's test command). Run from anywhere inside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== notebooks and library in sync (nbdev-clean + nbdev-export change nothing)"
snap=$(mktemp -d); trap 'rm -rf "$snap"' EXIT
cp -r nbs fastgan_study "$snap/"
nbdev-clean
nbdev-export
diff -r -x __pycache__ "$snap/nbs" nbs && diff -r -x __pycache__ "$snap/fastgan_study" fastgan_study \
  || fail "nbdev-clean/nbdev-export changed files above: run them, then commit"

echo "== docs processing (show_doc and directives, as nbdev-docs runs them; Quarto itself is not needed here)"
python - <<'PY'
import sys, io, contextlib, shutil
from nbdev.serve import proc_nbs
buf = io.StringIO()
with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf): cache = proc_nbs(n_workers=0, force=True)
out = buf.getvalue()
shutil.rmtree(cache, ignore_errors=True)
if 'Traceback' in out or 'Error' in out: print(out); sys.exit('docs processing failed')
print('docs processing ok')
PY

echo "== nbdev-test"
out=$(nbdev-test 2>&1) || { echo "$out"; fail "nbdev-test failed"; }
echo "$out" | tail -3
echo "$out" | grep -q "No files were eligible" && fail "nbdev-test found no notebooks to test"

echo "== pytest"
python -m pytest -q -p no:cacheprovider tests
