#!/usr/bin/env bash
# Set up and run the demo on SQLite: venv, install, migrate, demo admin, demo tasks, web server and scheduler.
# One Ctrl-C stops everything. PORT (default 8000) and any setting of the README can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "$(extras_for_database dev)"
export DEBUG="${DEBUG:-true}"
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
