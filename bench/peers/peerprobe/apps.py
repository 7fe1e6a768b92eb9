from django.apps import AppConfig


class PeerProbeConfig(AppConfig):
    name = "peerprobe"
    default_auto_field = "django.db.models.BigAutoField"
