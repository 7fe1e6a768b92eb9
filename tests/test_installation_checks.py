"""`manage.py check` tells a project what the scheduler is missing, each problem with a stable id."""

from __future__ import annotations

import sys

import pytest
from django.test import modify_settings
from rest_framework.authentication import TokenAuthentication

from scheduler_app.checks import check_installation, check_settings

TOKEN = "rest_framework.authentication.TokenAuthentication"
SESSION = "rest_framework.authentication.SessionAuthentication"


def ids(problems) -> list[str]:
    return sorted(problem.id for problem in problems)


def test_quiet_in_a_complete_project():
    assert check_installation(None) == []


def test_use_tz_off_is_an_error(settings):
    settings.USE_TZ = False
    assert "scheduler_app.E001" in ids(check_settings(None))


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("rest_framework", "djangorestframework"),
        ("django_filters", "django-filter"),
        ("drf_spectacular", "drf-spectacular"),
        ("django_apscheduler", "django-apscheduler"),
    ],
)
def test_a_package_that_is_not_installed_is_named(monkeypatch, module, distribution):
    # A None entry in sys.modules is how Python marks a module that cannot be imported.
    monkeypatch.setitem(sys.modules, module, None)
    problems = [problem for problem in check_installation(None) if problem.id == "scheduler_app.E020"]
    assert len(problems) == 1
    assert distribution in problems[0].msg
    assert "pip install" in problems[0].hint


@pytest.mark.parametrize("app", ["django_apscheduler", "rest_framework", "django_filters", "simple_history"])
def test_an_app_missing_from_installed_apps_is_named(app):
    with modify_settings(INSTALLED_APPS={"remove": [app]}):
        problems = check_installation(None)
    assert ids(problems) == ["scheduler_app.E021"]
    assert repr(app) in problems[0].msg


def test_token_authentication_needs_the_authtoken_app(settings):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [TOKEN, SESSION]}
    with modify_settings(INSTALLED_APPS={"remove": ["rest_framework.authtoken"]}):
        problems = check_installation(None)
    assert ids(problems) == ["scheduler_app.E022"]
    assert "rest_framework.authtoken" in problems[0].hint


def test_token_authentication_subclasses_count_too(settings):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["tests.test_installation_checks.BearerToken"]}
    with modify_settings(INSTALLED_APPS={"remove": ["rest_framework.authtoken"]}):
        assert "scheduler_app.E022" in ids(check_installation(None))


def test_without_session_authentication_the_admin_preview_is_refused(settings):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [TOKEN]}
    problems = check_installation(None)
    assert ids(problems) == ["scheduler_app.W020"]
    assert TOKEN in problems[0].msg


def test_an_authentication_class_that_cannot_be_imported(settings):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["no_such_module.Auth"]}
    problems = check_installation(None)
    assert ids(problems) == ["scheduler_app.E023"]
    assert "no_such_module" in problems[0].msg


def test_the_celery_backend_needs_the_projects_celery_app(settings):
    settings.SCHEDULER_EXECUTION_BACKEND = "celery"
    settings.SCHEDULER_CELERY_APP = ""
    problems = [problem for problem in check_settings(None) if problem.id == "scheduler_app.E003"]
    assert len(problems) == 1
    assert "SCHEDULER_CELERY_APP" in problems[0].msg


class BearerToken(TokenAuthentication):
    keyword = "Bearer"
