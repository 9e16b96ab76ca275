"""The Celery app: every task takes ids (never model instances) and acks late."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chimney.settings")

app = Celery("chimney")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="chimney.ping", acks_late=True)
def ping(value: str = "pong") -> str:
    """Answer with the value given: proves a worker is alive and consuming."""
    return value


@app.task(name="chimney.noop", ignore_result=True)
def noop() -> None:
    """Do nothing: the baseline that task throughput is measured against."""
