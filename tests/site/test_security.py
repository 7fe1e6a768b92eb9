"""Deployment security: settings from the environment, `check --deploy`, headers, cookies and the CSP."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.checks import Error, Warning
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduler_app.models import SchedulerNode
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, UserFactory
from zquant_site import checks

BASE_DIR = Path(django_settings.BASE_DIR)
# What the site reads from the environment; the subprocesses below start without any of it.
SITE_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_REFERRER_POLICY",
    "NUM_PROXIES",
    "CACHE_URL",
    "AXES_ENABLED",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_MINUTES",
    "API_THROTTLE_ANON",
    "API_THROTTLE_USER",
}


def run_site(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in SITE_VARIABLES}
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def site_settings(env: dict[str, str], *names: str) -> dict:
    """The named settings as the site computes them from this environment (in a fresh process)."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}, default=str))"
    )
    result = run_site(["-c", script], {"DJANGO_SETTINGS_MODULE": "zquant_site.settings", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def readme_production_environment() -> dict[str, str]:
    """The NAME=value lines of the first code block of the README's "Production deployment" section."""
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split("### Production deployment", 1)[1]
    block = section.split("```", 2)[1]
    return dict(re.findall(r"^([A-Z_]+)=(\S*)", block, flags=re.MULTILINE))


# ---------------------------------------------------------------------------------------------- check --deploy


def test_readme_production_values_make_check_deploy_clean():
    env = readme_production_environment()
    assert {"SECRET_KEY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "ALLOWED_HOSTS"} <= set(env), env
    env["SECRET_KEY"] = secrets.token_urlsafe(50)  # the README says how to make one
    result = run_site(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_with_the_defaults_names_what_is_missing():
    result = run_site(["manage.py", "check", "--deploy"], {})
    assert result.returncode == 1
    for check_id in ("zquant_site.E001", "security.W004", "security.W008", "security.W009"):
        assert check_id in result.stderr, result.stderr
    # secure cookies are on by default (DEBUG is off), so these are not asked for
    assert "security.W012" not in result.stderr
    assert "security.W016" not in result.stderr


def test_plain_check_passes_with_the_defaults():
    """What CI runs: DEBUG off and no SECRET_KEY is fine for development and tests; only --deploy objects."""
    result = run_site(["manage.py", "check", "--fail-level", "WARNING"], {})
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_key_is_an_error_only_with_debug_off(settings):
    settings.SECRET_KEY = settings.DEVELOPMENT_SECRET_KEY
    settings.DEBUG = False
    assert [(type(problem), problem.id) for problem in checks.check_secret_key(None)] == [(Error, "zquant_site.E001")]
    settings.DEBUG = True
    assert checks.check_secret_key(None) == []
    settings.DEBUG = False
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    assert checks.check_secret_key(None) == []


def test_lockout_off_is_a_warning(settings):
    assert checks.check_login_lockout(None) == []
    settings.AXES_ENABLED = False
    assert [(type(problem), problem.id) for problem in checks.check_login_lockout(None)] == [
        (Warning, "zquant_site.W001")
    ]


def test_a_missing_or_inline_script_policy_is_a_warning(settings):
    assert checks.check_content_security_policy(None) == []
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**policy["DIRECTIVES"], "script-src": ["'self'", "'unsafe-inline'"]}
    }
    assert [problem.id for problem in checks.check_content_security_policy(None)] == ["zquant_site.W002"]
    settings.CONTENT_SECURITY_POLICY = policy
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != "csp.middleware.CSPMiddleware"]
    assert [problem.id for problem in checks.check_content_security_policy(None)] == ["zquant_site.W002"]


# ---------------------------------------------------------------------------------------------- settings


def test_defaults_are_secure_in_production_and_plain_http_in_the_demo():
    names = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS")
    assert site_settings({}, *names) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
    }
    demo = site_settings({"DEBUG": "true"}, "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")
    assert demo == {"SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False}


def test_every_security_setting_comes_from_the_environment():
    env = {
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "3600",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_REFERRER_POLICY": "no-referrer",
        "NUM_PROXIES": "1",
        "CACHE_URL": "dbcache://zquant_cache",
        "AXES_FAILURE_LIMIT": "5",
        "AXES_COOLOFF_MINUTES": "15",
        "AXES_ENABLED": "false",
        "API_THROTTLE_ANON": "10/minute",
        "API_THROTTLE_USER": "",
    }
    values = site_settings(env, *(name for name in env if not name.startswith(("AXES_COOLOFF", "API_", "CACHE"))))
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_REFERRER_POLICY": "no-referrer",
        "NUM_PROXIES": 1,
        "AXES_FAILURE_LIMIT": 5,
        "AXES_ENABLED": False,
    }
    derived = site_settings(env, "AXES_COOLOFF_TIME", "REST_FRAMEWORK", "CACHES")
    assert derived["AXES_COOLOFF_TIME"] == str(timedelta(minutes=15))
    assert derived["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"] == {"anon": "10/minute", "user": None}
    assert derived["REST_FRAMEWORK"]["NUM_PROXIES"] == 1
    assert derived["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert derived["CACHES"]["default"]["LOCATION"] == "zquant_cache"


def test_login_and_throttle_defaults():
    values = site_settings({}, "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME", "AXES_LOCKOUT_PARAMETERS", "REST_FRAMEWORK")
    assert values["AXES_FAILURE_LIMIT"] == 10
    assert values["AXES_COOLOFF_TIME"] == str(timedelta(minutes=30))
    assert values["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"]]
    assert values["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"] == {"anon": "60/minute", "user": "600/minute"}
    assert values["REST_FRAMEWORK"]["NUM_PROXIES"] == 0


# ---------------------------------------------------------------------------------------------- responses

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.mark.django_db
def test_admin_pages_send_the_policy_and_the_security_headers(admin_client):
    response = admin_client.get(reverse("admin:scheduler_app_scheduledtask_changelist"))
    assert response.status_code == HTTPStatus.OK
    assert directives(response["Content-Security-Policy"]) == directives(POLICY)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
def test_swagger_ui_has_its_own_policy_with_the_pages_nonce(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == HTTPStatus.OK
    policy = directives(response["Content-Security-Policy"])
    nonce = re.fullmatch(r"'self' 'nonce-([^']+)'", policy["style-src"]).group(1)
    assert f'<style nonce="{nonce}">' in response.content.decode()
    assert policy["script-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    assert "<script>" not in response.content.decode()  # the split view serves its script as a file
    script = client.get(reverse("api-docs"), {"script": ""})
    assert script.status_code == HTTPStatus.OK
    assert script["Content-Type"].startswith("application/javascript")


@pytest.mark.django_db
def test_cookies_are_secure_and_http_only():
    UserFactory(username="alice", password="right-password-1", is_staff=True)
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "alice", "password": "right-password-1"})
    assert response.status_code == HTTPStatus.FOUND
    session, csrf = response.cookies["sessionid"], client.get(reverse("admin:index")).cookies.get("csrftoken")
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    csrf = csrf or client.cookies["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["httponly"] is True


class InlineCode(HTMLParser):
    """Collects what a strict CSP refuses: inline scripts, event handler attributes, style attributes and elements."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _value in attrs}
        values = dict(attrs)
        if tag == "script" and "src" not in names and values.get("type") != "application/json":
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> at line {self.getpos()[0]}")
        for name in names:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> at line {self.getpos()[0]}")
        if values.get("href", "").startswith("javascript:"):
            self.found.append(f"javascript: link at line {self.getpos()[0]}")


@pytest.mark.django_db
def test_scheduler_admin_pages_have_no_inline_code(admin_client):
    now = timezone.now()
    step = ScheduledTaskFactory(name="step", task_type="manual_task", interval_seconds=None)
    flow = ScheduledTaskFactory(
        name="flow", task_type="workflow", config={"tasks": [{"task_id": step.pk, "dependencies": []}]}
    )
    flow_run = TaskExecutionFactory(task=flow, status="running", start_time=now - timedelta(minutes=1))
    TaskExecutionFactory(task=step, parent=flow_run, status="running", start_time=now, progress_percent=40)
    TaskExecutionFactory(
        task=step, status="success", start_time=now - timedelta(hours=1), end_time=now, duration_seconds=3600
    )
    SchedulerNode.objects.create(node_id="n", host="h", pid=1, started_at=now, last_heartbeat=now)
    pages = [
        reverse("admin:index"),
        reverse("admin:scheduler_app_scheduledtask_changelist"),
        reverse("admin:scheduler_app_scheduledtask_add"),
        reverse("admin:scheduler_app_scheduledtask_change", args=[flow.pk]),
        reverse("admin:scheduler_app_scheduledtask_dashboard"),
        reverse("admin:scheduler_app_taskexecution_changelist"),
        reverse("admin:scheduler_app_taskexecution_change", args=[flow_run.pk]),
        reverse("admin:scheduler_app_schedulernode_changelist"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], (url, parser.found)
    anonymous = Client()
    login = anonymous.get(reverse("admin:login"))
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        lockout = anonymous.post(reverse("admin:login"), {"username": "nobody", "password": "wrong"})
    assert lockout.status_code == HTTPStatus.TOO_MANY_REQUESTS
    for response in (login, lockout):
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == []
