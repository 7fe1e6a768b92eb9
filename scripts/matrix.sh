#!/usr/bin/env bash
# The version matrix (README, "Use it in your project"). One release is built (scripts/build_release.sh:
# sdist and wheel, no build warning, twine check); then, for every supported (Python, Django) pair:
#   - the wheel in a brand-new project (scripts/fresh_project.sh), in a venv of its own;
#   - on the pairs of MATRIX_SUITE_PAIRS (every Django and every Python beyond the main pair, Python 3.11
#     + Django 5.2, where CI runs the whole suites), in that same venv: the site's checks,
#     `makemigrations --check` (the migrations need nothing new under that Django) and a quick part of
#     the test suite (models, services, runtime, API, admin pages).
# Pairs run MATRIX_JOBS at a time (default 2); each one's output goes to a log, shown when it fails.
# A missing interpreter fails the run: the matrix is what the package promises.
#
#   scripts/matrix.sh                      # every pair
#   MATRIX_PAIRS="3.12:6.1" MATRIX_SUITE_PAIRS="3.12:6.1" scripts/matrix.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pairs=${MATRIX_PAIRS:-"3.11:5.2 3.12:5.2 3.12:6.0 3.12:6.1 3.13:5.2 3.13:6.0 3.13:6.1"}
suite_pairs=" ${MATRIX_SUITE_PAIRS:-"3.12:6.0 3.13:5.2 3.13:6.1"} "
jobs=${MATRIX_JOBS:-2}
quick_tests=(
  tests/test_models.py tests/test_conf_and_checks.py tests/test_installation_checks.py
  tests/services tests/runtime
  tests/api/test_tasks_api.py tests/api/test_executions_api.py tests/api/test_misc_api.py
  tests/api/test_in_a_project.py tests/api/test_config_validation.py
  tests/admin/test_dashboard.py tests/admin/test_executions.py tests/admin/test_broken_rows.py
)
test_requirements=(pytest pytest-django pytest-timeout time-machine factory-boy)

work=$(mktemp -d "${TMPDIR:-/tmp}/zq-matrix.XXXXXX")
set -m  # each pair in a process group of its own, so that stopping one stops everything it started
declare -A pid_of=()
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${pid_of[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done  # each pair cleans up on TERM
  for pid in "${pid_of[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

find_python() {  # the interpreter of Python $1: on PATH, else pyenv's
  local candidate
  for candidate in "python$1" "$(pyenv root 2>/dev/null)"/versions/"$1".*/bin/python; do
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

run_pair() {  # $1 = python:django; writes $work/$1.log, $work/$1.seconds
  local pair=$1 python=${1%%:*} django=${1##*:} interpreter venv start=$SECONDS
  venv="$work/venv-$python-$django"
  interpreter=$(find_python "$python") || { echo "Python $python is not installed (pyenv install $python)"; return 1; }
  scripts/fresh_project.sh --python "$interpreter" --django "$django" --wheel "$wheel" --venv "$venv"
  if [[ $suite_pairs == *" $pair "* ]]; then
    echo "== quick suite on Python $python, Django $django"
    "$venv/bin/python" -m pip install -q "$wheel[site]" "Django==$django.*" "${test_requirements[@]}"
    # The site's database is a file of this run; the tests make their own (zquant_site/settings.py).
    DATABASE_URL="sqlite:///$work/site-$python-$django.sqlite3" "$venv/bin/python" manage.py check --fail-level WARNING
    DATABASE_URL="sqlite:///$work/site-$python-$django.sqlite3" "$venv/bin/python" manage.py makemigrations --check --dry-run
    env -u DATABASE_URL "$venv/bin/python" -m pytest -q -p no:cacheprovider "${quick_tests[@]}"
  fi
  echo $((SECONDS - start)) >"$work/$pair.seconds"
}

echo "== release: sdist and wheel"
scripts/build_release.sh "$work/dist"
wheel=$(ls "$work"/dist/*.whl)

start=$SECONDS
failed=()
pending=($pairs)
finish() {  # wait for the pair $1
  local pair=$1
  if wait "${pid_of[$pair]}"; then
    echo "== $pair passed ($(cat "$work/$pair.seconds") s)"
    grep -E "installed: Django|^fresh project: |passed.* in [0-9.]+s" "$work/$pair.log" | sed 's/^/   /' || true
  else
    echo "== $pair FAILED; its log:"
    cat "$work/$pair.log"
    failed+=("$pair")
  fi
  unset "pid_of[$pair]"
}
launched=()
for pair in "${pending[@]}"; do
  if [ ${#launched[@]} -ge "$jobs" ]; then
    finish "${launched[0]}"
    launched=("${launched[@]:1}")
  fi
  echo "== $pair: started"
  run_pair "$pair" >"$work/$pair.log" 2>&1 &
  pid_of[$pair]=$!
  launched+=("$pair")
done
for pair in "${launched[@]}"; do finish "$pair"; done

echo
echo "| Python | Django | checked | seconds |"
echo "|---|---|---|---|"
for pair in "${pending[@]}"; do
  what="fresh project"
  [[ $suite_pairs == *" $pair "* ]] && what="fresh project, checks, migrations, quick suite"
  seconds=$(cat "$work/$pair.seconds" 2>/dev/null || echo "failed")
  echo "| ${pair%%:*} | ${pair##*:} | $what | $seconds |"
done
echo "== matrix: $((SECONDS - start)) s for ${#pending[@]} pairs, $jobs at a time"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== matrix FAILED: ${failed[*]}"
  exit 1
fi
