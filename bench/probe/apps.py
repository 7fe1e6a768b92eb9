from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "probe"
    label = "bench_probe"
