#!/usr/bin/env bash
# Set up and run the demo on SQLite: venv, install, migrate, demo admin, demo tasks, web server and scheduler.
# One Ctrl-C stops everything. PORT (default 8000) and any setting of the README can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "$(extras_for_database dev)"
export DEBUG="${DEBUG:-true}"
# The demo's command task runs the bundled example job with the project's python: command tasks are
# turned on for that program only (both are off / open by default; see the README's configuration).
export SCHEDULER_COMMANDS_ENABLED="${SCHEDULER_COMMANDS_ENABLED:-true}"
export SCHEDULER_COMMAND_ALLOWLIST="${SCHEDULER_COMMAND_ALLOWLIST:-python}"
# Run as root (a container, a throw-away VM), the demo's commands run as root too: accepted here, for the
# demo only, and said so. In production set SCHEDULER_COMMAND_USER to an unprivileged user instead.
if [ "$(id -u)" = 0 ] && [ -z "${SCHEDULER_COMMAND_USER:-}" ]; then
  export SCHEDULER_ALLOW_ROOT_COMMANDS="${SCHEDULER_ALLOW_ROOT_COMMANDS:-true}"
  echo "Demo as root: command tasks run as root (SCHEDULER_ALLOW_ROOT_COMMANDS=true, demo only;" \
    "set SCHEDULER_COMMAND_USER in production)."
fi
py=.venv/bin/python
$py manage.py migrate --noinput -v0
$py manage.py collectstatic --noinput -v0
$py manage.py demo_admin
$py manage.py init_scheduler
address="${HOST:-127.0.0.1}:${PORT:-8000}"
echo "Admin: http://$address/admin/   (Ctrl-C stops the demo)"
trap 'trap - INT TERM EXIT; kill $(jobs -p) 2>/dev/null; wait' INT TERM EXIT
$py manage.py runserver "$address" --noreload &
$py manage.py runscheduler &
wait
