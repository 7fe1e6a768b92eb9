"""The production web server: the site under gunicorn with deploy/gunicorn.conf.py, as a real process.

Static files come from `collectstatic` through whitenoise (with caching and compression headers), the
admin and the API answer with the site's security headers, the access log has the documented format,
and SIGTERM stops the server cleanly. deploy/zquant.env.example lists every setting the site, the
scheduler and the gunicorn configuration read, and the systemd units stay hardened.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from scheduler_app.conf import scheduler_settings
from tests.factories import ScheduledTaskFactory, UserFactory
from tests.scheduling.conftest import database_url, wait_for

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.process

BASE_DIR = Path(settings.BASE_DIR)
CONF = BASE_DIR / "deploy" / "gunicorn.conf.py"
ENV_EXAMPLE = BASE_DIR / "deploy" / "zquant.env.example"
PORTS = range(18500, 18600)  # this test's own range, so parallel runs of other suites never collide
STATIC_FILE = "/static/scheduler_app/admin.css"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {PORTS}")


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def answers(port: int) -> bool:
    try:
        return get(port, "/admin/login/").status == 200
    except OSError:
        return False


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """The site under gunicorn on 127.0.0.1, static files collected; stopped (and reaped) after the test."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "STATIC_ROOT": str(tmp_path / "static"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_WORKERS": "2",
        "API_THROTTLE_USER": "",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=180,
    )
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF)],
            cwd=BASE_DIR,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go with it in the cleanup below
        )
    server = type("Server", (), {"proc": proc, "port": port, "log": log})
    try:
        wait_for(lambda: answers(port) or proc.poll() is not None, 60, 0.2, "gunicorn to answer")
        assert proc.poll() is None, log.read_text()
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_gunicorn_serves_the_admin_static_files_and_the_api(gunicorn):
    user = UserFactory(username="reader")
    user.user_permissions.add(Permission.objects.get(codename="view_scheduledtask"))
    token = Token.objects.create(user=user)
    ScheduledTaskFactory(name="served by gunicorn")

    login = get(gunicorn.port, "/admin/login/")
    assert login.status == 200
    assert b'name="username"' in login.body
    assert "script-src 'self'" in login.getheader("Content-Security-Policy")
    assert login.getheader("X-Frame-Options") == "DENY"
    assert login.getheader("X-Content-Type-Options") == "nosniff"

    static = get(gunicorn.port, STATIC_FILE, {"Accept-Encoding": "gzip"})
    assert static.status == 200
    assert static.getheader("Content-Type").startswith("text/css")
    # whitenoise: cacheable by browsers and proxies, revalidated by date, the precompressed copy sent.
    assert re.fullmatch(r"max-age=\d+, public", static.getheader("Cache-Control"))
    assert static.getheader("Last-Modified")
    assert static.getheader("ETag")
    assert static.getheader("Content-Encoding") == "gzip"
    assert static.getheader("Vary") == "Accept-Encoding"
    assert static.getheader("X-Content-Type-Options") == "nosniff"
    unchanged = get(gunicorn.port, STATIC_FILE, {"If-None-Match": static.getheader("ETag")})
    assert unchanged.status == 304

    tasks = get(gunicorn.port, "/api/v1/scheduler/tasks/", {"Authorization": f"Token {token.key}"})
    assert tasks.status == 200, tasks.body[:500]
    assert b"served by gunicorn" in tasks.body
    assert get(gunicorn.port, "/api/v1/scheduler/tasks/").status == 401

    # The access log: client, forwarded-for, user, time, request line, status, size, referrer, agent, ms.
    gunicorn.proc.send_signal(signal.SIGTERM)
    assert gunicorn.proc.wait(timeout=30) == 0
    output = gunicorn.log.read_text()
    assert re.search(r'^127\.0\.0\.1 "-" - \[.+\] "GET /api/v1/scheduler/tasks/ HTTP/1\.1" 200 \d+ "-" "\S+" \d+ms$',
                     output, re.MULTILINE), output  # fmt: skip
    assert "Booting worker" in output
    assert "Shutting down: Master" in output


def setting_names() -> set[str]:
    """Every environment variable the site settings, the scheduler settings and gunicorn.conf.py read."""
    site = (BASE_DIR / "zquant_site" / "settings.py").read_text()
    names = set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z_]+)"', site))
    names |= {f"SCHEDULER_{name}" for name in dir(type(scheduler_settings)) if name.isupper()}
    names |= set(re.findall(r'os\.environ(?:\.get\(|\[)"([A-Z_]+)"', CONF.read_text()))
    return names


def test_the_env_example_lists_every_setting():
    names = setting_names()
    assert {"SECRET_KEY", "DATABASE_URL", "STATIC_ROOT", "SCHEDULER_RETENTION_DAYS", "GUNICORN_WORKERS"} <= names
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert names - listed == set()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["zquant-web.service", "zquant-scheduler.service"])
def test_the_systemd_units_are_hardened(unit):
    """systemd's own exposure score (0 fully locked down, 10 unprotected) stays at 2.0 or below."""
    path = BASE_DIR / "deploy" / "systemd" / unit
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
