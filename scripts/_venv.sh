# Sourced by the scripts: make .venv and install the project with the given extras, once per change
# of pyproject.toml. Needs only python3 (3.11+); the mysql extra also needs libmariadb-dev and pkg-config
# (the postgres extra installs psycopg with its own libpq).
ensure_venv() {
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
  fi
  local stamp=".venv/.installed-${extras//,/-}-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp"
  fi
}

extras_for_database() {
  case "${DATABASE_URL:-}" in
    mysql*) echo "$1,mysql" ;;
    postgres*) echo "$1,postgres" ;;
    *) echo "$1" ;;
  esac
}
