"""A minimal project for django-apscheduler: its README's BlockingScheduler command (peerprobe's
runapscheduler) with the DjangoJobStore; everything else at the defaults."""

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_apscheduler", "peerprobe"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "zq_peers_apscheduler",
        "HOST": "127.0.0.1",
        "PORT": 3306,
        "USER": "root",
        "OPTIONS": {"charset": "utf8mb4"},
    }
}
