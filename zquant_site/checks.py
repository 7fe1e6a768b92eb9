"""Deployment checks of the site (`manage.py check --deploy`), beside Django's, axes' and django-csp's.

They are deploy checks, like Django's own security checks: development, the demo and the test suite run
without a SECRET_KEY, and `check --deploy` is the step a production deployment runs before it starts.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

UNSAFE_SCRIPT_SOURCES = ("'unsafe-inline'", "'unsafe-eval'")


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs) -> list:
    if settings.DEBUG or getattr(settings, "DEVELOPMENT_SECRET_KEY", None) != settings.SECRET_KEY:
        return []
    return [
        Error(
            "DEBUG is off and SECRET_KEY is the built-in development key, which anyone can read: sessions, "
            "password reset links and CSRF tokens could be forged.",
            hint="Set SECRET_KEY in the environment to a long random value, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(50))"`.',
            id="zquant_site.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_login_lockout(app_configs, **kwargs) -> list:
    if settings.AXES_ENABLED:
        return []
    return [
        Warning(
            "Login lockout is off (AXES_ENABLED is false): passwords can be guessed without limit.",
            hint="Remove AXES_ENABLED from the environment.",
            id="zquant_site.W001",
        )
    ]


@register(Tags.security, deploy=True)
def check_content_security_policy(app_configs, **kwargs) -> list:
    policy = (getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}).get("DIRECTIVES", {})
    sources = policy.get("script-src", policy.get("default-src", []))
    if "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE and not set(sources) & set(UNSAFE_SCRIPT_SOURCES):
        return []
    return [
        Warning(
            "The Content-Security-Policy is missing or lets inline script run.",
            hint="Keep csp.middleware.CSPMiddleware in MIDDLEWARE and 'unsafe-inline'/'unsafe-eval' out of script-src.",
            id="zquant_site.W002",
        )
    ]
