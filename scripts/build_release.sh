#!/usr/bin/env bash
# Build the release: the sdist and the wheel of zquant-scheduler into OUTDIR (default dist/), from the
# files git knows (tracked or new, not ignored), so that nothing stale (egg-info, build/) slips in.
# Fails on any warning of the build, and on what `twine check --strict` finds.
#
#   scripts/build_release.sh [OUTDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/dist}")
cd "$root"
if ! .venv/bin/python -c "import build, twine" 2>/dev/null; then
  source scripts/_venv.sh
  ensure_venv dev
fi
src=$(mktemp -d "${TMPDIR:-/tmp}/zq-release-src.XXXXXX")
trap 'rm -rf "$src"' EXIT
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -x -C "$src"
mkdir -p "$out"
# PYTHONDONTWRITEBYTECODE only makes setuptools say that it skips byte-compiling.
if ! env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m build --outdir "$out" "$src" >"$src/build.log" 2>&1; then
  cat "$src/build.log"
  exit 1
fi
if grep -i "warning" "$src/build.log"; then
  echo "the build warned (above); a release builds clean" >&2
  exit 1
fi
.venv/bin/python -m twine check --strict "$out"/*
ls "$out"
