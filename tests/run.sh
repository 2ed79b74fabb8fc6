#!/usr/bin/env bash
# The full test suite, as CI runs it (README's test command). Run from anywhere inside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "FAIL: $*" >&2; exit 1; }

# decoded image folders, Inception features and domain classifiers are cached here, not in ~/.cache
export FASTGAN_STUDY_CACHE="${FASTGAN_STUDY_CACHE:-$(mktemp -d)}"

echo "== notebooks and library in sync (nbdev-clean + nbdev-export change nothing)"
snap=$(mktemp -d); trap 'rm -rf "$snap"' EXIT
cp -r nbs fastgan_study "$snap/"
nbdev-clean
nbdev-export
diff -r -x __pycache__ "$snap/nbs" nbs && diff -r -x __pycache__ "$snap/fastgan_study" fastgan_study \
  || fail "nbdev-clean/nbdev-export changed files above: run them, then commit"

echo "== docs (nbdev's docs processing, show_doc entries, titles, images, links, sidebar: tests/check_docs.py; Quarto is not needed)"
python tests/check_docs.py

echo "== notebooks (nbdev-test's run, one process per notebook, and their stored outputs current: tests/nb_outputs.py)"
python tests/nb_outputs.py check

echo "== pytest"
python -m pytest -q -p no:cacheprovider tests
