"""Settings for the zquant scheduler site, read from the environment (django-environ).

Every value that differs between machines comes from an environment variable (or a `.env` file
next to manage.py). The scheduler's own settings (`SCHEDULER_*`) are documented in
`scheduler_app/conf.py` and read at access time.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# GENERAL
DEBUG = env.bool("DEBUG", default=False)
# The built-in key is for development only: system check zquant_site.E001 (run by `check --deploy`) is
# an error when DEBUG is off and SECRET_KEY is still this value.
DEVELOPMENT_SECRET_KEY = "django-insecure-zquant-scheduler-development-key-change-me"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_TZ = True
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en-us")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
USE_I18N = True
FORMAT_MODULE_PATH = ["zquant_site.formats"]  # dates to the second, one format in both languages
LOCALE_PATHS = [BASE_DIR / "scheduler_app" / "locale"]

# HTTPS, COOKIES AND HEADERS. Secure cookies follow DEBUG, so that production is secure by default while the
# demo (DEBUG=true) works over plain http. Redirect and HSTS stay off unless asked for: they need HTTPS to be
# in place, and HSTS is remembered by browsers for SECURE_HSTS_SECONDS. The README's "Production deployment"
# section gives the values under which `manage.py check --deploy` is clean.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a TLS-terminating proxy, e.g. "HTTP_X_FORWARDED_PROTO,https"; only when the proxy sets (and
# overwrites) that header, since a client could otherwise claim https.
SECURE_PROXY_SSL_HEADER = env.tuple("SECURE_PROXY_SSL_HEADER", default=None)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: ours take the token from the form's hidden input, and Swagger UI gets it
# rendered into its script.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
# Reverse proxies in front of the site that append the client's address to X-Forwarded-For. 0 trusts no
# such header (REMOTE_ADDR is the client), so that a client cannot pick its own address to escape the API
# throttles and the login lockout, which both identify clients this way.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# CACHE: the API throttles count requests here. The default is per process; with several web processes,
# point CACHE_URL at a shared cache (redis://127.0.0.1:6379/1, or dbcache://zquant_cache after
# `manage.py createcachetable`) so that the limits hold for the site as a whole.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# DATABASES
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.mysql":
    _db.setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'",
        }
    )
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the scheduler writes; IMMEDIATE transactions take the
    # write lock up front, so two writers wait for each other instead of failing with "locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file, one per test process: scheduler processes started by tests and worker threads
    # must share the test database, which an in-memory SQLite database cannot do.
    _db["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"zquant-test-{os.getpid()}.sqlite3")}
    # The database holds every task, user and API token: readable by the site's user only. SQLite
    # creates it with the umask's mode (usually 644) and gives -wal/-shm the database's mode.
    if _db["NAME"] != ":memory:" and not os.path.exists(_db["NAME"]):
        os.close(os.open(_db["NAME"], os.O_CREAT | os.O_WRONLY, 0o600))
_db["CONN_HEALTH_CHECKS"] = True
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# APPS
DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_apscheduler",
    "simple_history",
    "axes",
    "csp",
]
LOCAL_APPS = ["scheduler_app", "marketdata", "zquant_site.apps.SiteConfig"]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Names the signed-in user (admin or API) as the author of each change the history keeps.
    "simple_history.middleware.HistoryRequestMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a login that axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "zquant_site.urls"
WSGI_APPLICATION = "zquant_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# LOGIN LOCKOUT (django-axes): the admin login and the API token endpoint both authenticate through these
# backends. After AXES_FAILURE_LIMIT failed logins in a row for one username from one address, that pair is
# refused (HTTP 429), even with the right password, until AXES_COOLOFF_MINUTES have passed without another
# attempt. Attempts are kept in the database, so every web process sees them. A successful login resets
# the count. `manage.py axes_reset_username NAME` (or axes_reset) lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "zquant_site.auth.client_ip"
AXES_LOCKOUT_CALLABLE = "zquant_site.auth.lockout_response"
AXES_VERBOSE = False  # no start-up banner on every manage.py command; lockouts are still logged

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# STATIC FILES (served by whitenoise, also in the demo)
STATIC_URL = "static/"
# Where `collectstatic` puts the files whitenoise serves; outside the checkout if it is read-only.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# REST FRAMEWORK
REST_FRAMEWORK = {
    # Token first: an anonymous request gets 401 with a "Token" challenge (session alone would give 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "scheduler_app.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scheduler_app.api.exception_handler.exception_handler",
    # Per client address (anonymous) or per user, counted in the default cache; answered with 429 and
    # Retry-After. An empty rate turns that throttle off.
    "DEFAULT_THROTTLE_CLASSES": ["zquant_site.throttles.AnonRateThrottle", "zquant_site.throttles.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute") or None,
        "user": env.str("API_THROTTLE_USER", default="600/minute") or None,
    },
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "zquant scheduler API",
    "DESCRIPTION": "Manage, run and watch scheduled tasks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskTypeEnum": "scheduler_app.models.ScheduledTask.TaskType",
        "OverlapPolicyEnum": "scheduler_app.models.ScheduledTask.OverlapPolicy",
        "CatchUpEnum": "scheduler_app.models.ScheduledTask.CatchUp",
        "ScheduleStatusEnum": "scheduler_app.models.ScheduledTask.ScheduleStatus",
        "ExecutionStatusEnum": "scheduler_app.models.TaskExecution.Status",
        "ExecutionTriggerEnum": "scheduler_app.models.TaskExecution.Trigger",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "zquant_site.schema.add_bad_input_responses",
        "zquant_site.throttles.add_throttled_responses",
    ],
}

# CONTENT SECURITY POLICY (django-csp): scripts and styles only from our own origin, so an injected
# <script>, event handler or style attribute does not run. Pages pass data with json_script and set
# computed sizes from script (element.style), which the policy allows. Swagger UI has its own, looser
# policy (zquant_site/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# LOGGING
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"apscheduler": {"level": "WARNING"}},
}

# CELERY (optional; used when SCHEDULER_EXECUTION_BACKEND=celery, see docs/scaling.md). zquant_site/celery.py
# reads these. Results are not stored: every outcome is in the TaskExecution row.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = env.bool("CELERY_TASK_ACKS_LATE", default=True)
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False  # a run's state is in the database
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep the LOGGING format above; the worker's -l sets the level
SCHEDULER_CELERY_APP = "zquant_site.celery:app"

# SCHEDULER: any SCHEDULER_* environment variable becomes a setting of that name. scheduler_app/conf.py
# documents each one, gives its default and converts the text to its type when it is read.
globals().update({key: value for key, value in os.environ.items() if key.startswith("SCHEDULER_")})

# MARKET DATA: the provider class the data-sync actions read from (marketdata/providers.py).
MARKETDATA_PROVIDER = env("MARKETDATA_PROVIDER", default="marketdata.providers.SampleProvider")
