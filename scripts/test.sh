#!/usr/bin/env bash
# Run the whole test suite (SQLite by default; set DATABASE_URL=mysql://user@host:3306/name for MariaDB).
# Extra arguments go to pytest, e.g. scripts/test.sh -k schedules
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "$(extras_for_database dev,celery)"
exec .venv/bin/python -m pytest "$@"
