"""Chimney: home value, equity and offers for credit unions and banks."""

from chimney.celery import app as celery_app

__all__ = ["celery_app"]
