"""Thin tasks: the beat dispatchers find what is due; per-release tasks call the services."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from institutions.tenancy import MAIL_RETRY, tenant_task
from releases.models import Release, StagingDataJob
from releases.services import (
    ReleaseRefused,
    release_deploy,
    release_watch_check,
    releases_due,
    releases_watching,
)
from releases.services.common import now
from releases.staging_data.jobs import staging_job_run

logger = logging.getLogger(__name__)


@shared_task(name="releases.deploy_due", ignore_result=True)
def deploy_due() -> int:
    """Dispatch every scheduled release whose time has come (runs each minute from beat)."""
    due = releases_due(now())
    for environment_id, release_id in due:
        deploy_release.delay(environment_id, release_id)
    return len(due)


@tenant_task(name="releases.deploy", acks_late=True, ignore_result=True)
def deploy_release(self, environment, release_id: int) -> None:
    release = Release.objects.get(pk=release_id)
    try:
        release_deploy(environment=environment, release=release, actor=None, scheduled=True)
    except ReleaseRefused as refusal:
        # Already deployed by an earlier tick, or stopped with its reason on the release.
        logger.info("release %s not deployed: %s", release_id, refusal.message)


@shared_task(name="releases.watch_due", ignore_result=True)
def watch_due() -> int:
    """Judge every release under watch (runs each minute from beat)."""
    watching = releases_watching()
    for environment_id, release_id in watching:
        watch_release.delay(environment_id, release_id)
    return len(watching)


@tenant_task(name="releases.watch", acks_late=True, ignore_result=True)
def watch_release(self, environment, release_id: int) -> None:
    release_watch_check(environment=environment, release=Release.objects.get(pk=release_id))


@shared_task(
    name="releases.mail",
    bind=True,
    **MAIL_RETRY,
    max_retries=30,  # for up to about four hours, tried again at most ten minutes apart
    ignore_result=True,
)
def release_mail(self, subject: str, body: str, recipients: list[str]) -> None:
    """Email staff about a release (a failed watch, a deploy that did not happen); a mail
    server that is down is retried with backoff rather than the alert lost."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except smtplib.SMTPRecipientsRefused as refused:
        if all(500 <= code < 600 for code, _ in refused.recipients.values()):
            logger.error("release mail %r refused for every recipient: %s", subject, refused)
            return
        raise
    except OSError as error:
        if self.request.retries >= self.max_retries:
            logger.error(
                "release mail %r to %s not sent after %d attempts: %s",
                subject,
                ", ".join(recipients),
                self.request.retries + 1,
                error,
            )
        raise


@tenant_task(name="releases.staging_data_run", acks_late=True, ignore_result=True)
def staging_data_run(self, environment, job_id: int) -> None:
    """Fill staging with mock data or an anonymized copy of production (minutes at volume)."""
    job = StagingDataJob._base_manager.get(pk=job_id, environment=environment)
    staging_job_run(environment=environment, job=job)
