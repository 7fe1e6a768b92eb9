"""A minimal project for django-celery-beat: its DatabaseScheduler sends the probe task to a worker over
Redis (db 15); everything else at the defaults."""

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_celery_beat", "peerprobe"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "zq_peers_celerybeat",
        "HOST": "127.0.0.1",
        "PORT": 3306,
        "USER": "root",
        "OPTIONS": {"charset": "utf8mb4"},
    }
}
CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
