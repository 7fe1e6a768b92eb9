#!/usr/bin/env bash
# The package in a brand-new project, exactly as the README's "Use it in your project" says (the code
# blocks come from the README, through scripts/readme_snippets.py):
#   build the sdist and the wheel (python -m build, no warnings; twine check) unless --wheel names one;
#   in a temporary folder, a fresh venv with only the wheel (and the Django asked for) installed;
#   `django-admin startproject mysite` with a custom user model (e-mail login, UUID keys, no username)
#   and an app `reports` whose scheduler_actions module is the README's;
#   the README's settings and URLs, its commands (migrate, check, createsuperuser, runserver, runscheduler);
#   then over HTTP (scripts/fresh_project_checks.py): a token, tasks created through the API and seen to
#   run, the admin pages as the superuser, the static files.
# Every process it starts is stopped when it exits, also on failure or Ctrl-C.
#
#   scripts/fresh_project.sh [--python PYTHON] [--django 6.0] [--wheel dist/x.whl] [--venv DIR] [--keep]
# --venv makes the venv there and leaves it (scripts/matrix.sh runs tests in it next); --keep leaves the
# whole temporary folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=python3
django=""
wheel=""
venv=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --django) django=$2; shift 2 ;;
    --wheel) wheel=$(realpath "$2"); shift 2 ;;
    --venv) venv=$(realpath -m "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--python PYTHON] [--django X.Y] [--wheel FILE] [--venv DIR] [--keep]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/zq-fresh-project.XXXXXX")
pids=()
stop_processes() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_processes
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "---- $(basename "$log") (last lines)"; tail -n 40 "$log"; }
    done
  fi
  if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "[fresh project $(date +%H:%M:%S)] $*"; }

# ---------------------------------------------------------------------------------------- the release
if [ -z "$wheel" ]; then
  say "building the sdist and the wheel"
  "$root/scripts/build_release.sh" "$work/dist"
  wheel=$(ls "$work"/dist/*.whl)
fi

# ------------------------------------------------------------------------------------ a fresh venv
say "venv with $("$python" --version 2>&1), $(basename "$wheel")${django:+, Django $django.*}"
venv=${venv:-$work/venv}
"$python" -m venv "$venv"
export PATH="$venv/bin:$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset DJANGO_SETTINGS_MODULE DATABASE_URL PYTHONPATH
readme_commands() { "$python" "$root/scripts/readme_snippets.py" commands "$root/README.md" "$1"; }
while read -r command; do
  case "$command" in
    "pip install zquant-scheduler")  # the package under test instead of the index's
      python -m pip install -q "$wheel" ${django:+"Django==$django.*"} >"$work/pip.log" 2>&1 ;;
    *) echo "unexpected install command in the README: $command" >&2; exit 1 ;;
  esac
done < <(readme_commands install)
cd "$work"  # not the checkout, whose scheduler_app would be found first
installed=$(python -c "import django, scheduler_app; print(django.get_version(), scheduler_app.__file__)")
case "$installed" in
  *"$venv/"*) say "installed: Django ${installed%% *}, scheduler_app from the venv" ;;
  *) echo "scheduler_app is not the installed wheel's: $installed" >&2; exit 1 ;;
esac

# ---------------------------------------------------------------------------------- a new project
mkdir project && django-admin startproject mysite project
cd project
python manage.py startapp accounts
python manage.py startapp reports
cat >accounts/models.py <<'EOF'
"""A custom user model of the kind projects use: e-mail login, UUID keys, no username field."""

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        return self.create_user(email, password, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = UserManager()
EOF
python "$root/scripts/readme_snippets.py" files "$root/README.md" .
cat >>mysite/settings.py <<'EOF'

# The fresh-project check's own additions: its apps and user model; a quick shutdown and a quick password
# hash (the superuser logs in twice), for the check's time only.
INSTALLED_APPS += ["accounts", "reports"]
AUTH_USER_MODEL = "accounts.User"
SCHEDULER_SHUTDOWN_GRACE = 5
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EOF
python manage.py makemigrations accounts -v0

# Expired sessions for the README's action to delete (made once the README's migrate has run).
expired=5
add_expired_sessions() {
  python manage.py shell -v0 -c "
from datetime import timedelta
from django.contrib.sessions.models import Session
from django.utils import timezone
Session.objects.bulk_create(
    Session(session_key=f'expired{i:032}', session_data='', expire_date=timezone.now() - timedelta(days=1))
    for i in range($expired)
)"
}

email=ops@example.com
export DJANGO_SUPERUSER_EMAIL=$email DJANGO_SUPERUSER_PASSWORD="fresh-$RANDOM-project-$RANDOM"
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
while read -r command; do
  say "$command"
  case "$command" in
    "python manage.py migrate")
      $command -v0
      add_expired_sessions ;;
    "python manage.py createsuperuser")
      python manage.py createsuperuser --noinput ;;
    "python manage.py runserver")
      python manage.py runserver --noreload "127.0.0.1:$port" >"$work/runserver.log" 2>&1 &
      pids+=($!) ;;
    "python manage.py runscheduler")
      # --max-seconds: even if this script were killed outright, the scheduler ends by itself.
      python manage.py runscheduler --max-seconds 900 >"$work/runscheduler.log" 2>&1 &
      pids+=($!) ;;
    "python manage.py "*)
      $command ;;
    *) echo "unexpected command in the README: $command" >&2; exit 1 ;;
  esac
done < <(readme_commands run)

base="http://127.0.0.1:$port"
for _ in $(seq 150); do
  python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$base/backoffice/login/" \
    2>/dev/null && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a process of the project died" >&2; exit 1; }; done
  sleep 0.2
done
python "$root/scripts/fresh_project_checks.py" "$base" "$email" "$DJANGO_SUPERUSER_PASSWORD" "$expired"
stop_processes
grep -q "fire task=" "$work/runscheduler.log" || { echo "runscheduler logged no fire" >&2; exit 1; }
say "passed"
