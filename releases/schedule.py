"""Celery beat entries for releases, installed from AppConfig.ready().

Deploys and watches are driven by the database state and a beat tick rather than by
task ETAs: a worker restart (or a lost message) cannot lose a scheduled deploy, the next
tick picks it up again.
"""

from __future__ import annotations

BEAT_ENTRIES = {
    "releases-deploy-due": {"task": "releases.deploy_due", "schedule": 60.0},
    "releases-watch-due": {"task": "releases.watch_due", "schedule": 60.0},
}


def install_beat_entries() -> None:
    from chimney.celery import app

    schedule = dict(app.conf.beat_schedule or {})
    for name, entry in BEAT_ENTRIES.items():
        schedule.setdefault(name, entry)
    app.conf.beat_schedule = schedule
