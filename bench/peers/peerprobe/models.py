from django.db import models


class BodyStart(models.Model):
    """One run of a probe job: which job, and the wall-clock instant (Unix seconds) its body began."""

    job = models.CharField(max_length=64)
    began = models.FloatField()

    def __str__(self) -> str:
        return f"{self.job} at {self.began:.6f}"
