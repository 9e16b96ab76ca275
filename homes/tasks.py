"""Member tasks: thin, ids in, each with its retry policy."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import InterfaceError, OperationalError
from django.template.loader import render_to_string

from homes import messaging
from homes.models import Member
from institutions.models import Branding
from institutions.tenancy import MAIL_RETRY, for_each_environment, tenant_task

logger = logging.getLogger(__name__)


@tenant_task(
    name="homes.send_magic_link",
    **MAIL_RETRY,
    max_retries=15,  # for up to about an hour, tried again at most ten minutes apart
)
def send_magic_link(self, environment, member_id: int, key: str = "", next_path: str = "") -> None:
    """Email a member a single-use login link. Every attempt for the same key (a retry, a
    redelivery) sends the same link; a refusal of the address is recorded as a bounce by
    the account mailer and not tried again."""
    from homes.services.login import magic_link_create

    member = Member.objects.get(pk=member_id)
    url = magic_link_create(
        environment=environment, member=member, key=key or self.request.id, next_path=next_path
    )
    branding = Branding.objects.first()
    context = {
        "member": member,
        "url": url,
        "branding": branding,
        "environment": environment,
        "minutes": int(settings.MAGIC_LINK_TTL.total_seconds() // 60),
    }
    message = EmailMultiAlternatives(
        subject=f"Your sign-in link for {branding.display_name if branding else 'Chimney'}",
        body=render_to_string("emails/magic_link.txt", context),
        to=[member.email],
    )
    message.attach_alternative(render_to_string("emails/magic_link.html", context), "text/html")
    try:
        messaging.account_email_send(environment=environment, member=member, message=message)
    except messaging.MailRefused as refusal:
        logger.warning("login link for member %s refused: %s", member_id, refusal)
    except OSError as error:
        if self.request.retries >= self.max_retries:
            logger.error(
                "login link for member %s not sent after %d attempts: %s",
                member_id,
                self.request.retries + 1,
                error,
            )
        raise


@tenant_task(
    name="homes.refresh_valuations",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def refresh_valuations(self, environment, run_id: int) -> None:
    """Start or resume a refresh run: its unfinished chunks are queued for the workers."""
    from homes.models import RefreshRun
    from homes.services.refresh import refresh_resume

    run = RefreshRun.objects.get(pk=run_id)
    refresh_resume(environment=environment, run=run)


@tenant_task(
    name="homes.refresh_chunk",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def refresh_chunk(self, environment, run_id: int, chunk_id: int) -> None:
    """Revalue one id range of a refresh run (resumes from the chunk's cursor)."""
    from homes.services.refresh import refresh_chunk_run

    refresh_chunk_run(environment=environment, run_id=run_id, chunk_id=chunk_id)


@tenant_task(
    name="homes.recompute_matches",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
)
def recompute_matches(self, environment) -> None:
    """Recompute equity and offer matches of every property (after a product change)."""
    from homes.services.recompute import properties_recompute

    properties_recompute(environment=environment)


@tenant_task(
    name="homes.appointment_calendar_sync",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
    ignore_result=True,
)
def appointment_calendar_sync(self, environment, appointment_id: int) -> str:
    """Write, move or remove an appointment in its officer's CalDAV calendar.

    Calendar failures are retried by queueing this task again with the backoff the service
    chose (the appointment shows its attempts and error meanwhile), then marked failed.
    """
    from homes.services.calendars import appointment_calendar_sync as sync

    outcome = sync(environment=environment, appointment_id=appointment_id)
    if outcome.retry_in is not None:
        appointment_calendar_sync.apply_async(
            args=[environment.pk, appointment_id], countdown=outcome.retry_in
        )
    return outcome.state


@shared_task(name="homes.appointments_tick", acks_late=True, ignore_result=True)
def appointments_tick() -> dict:
    """Beat, every minute: queue the reminders due, and calendar syncs whose task was lost."""
    from homes.services.appointments import appointments_remind
    from homes.services.calendars import appointments_calendar_sweep

    def tick(environment) -> dict:
        reminded = appointments_remind(environment=environment)
        return {**reminded, "calendar": appointments_calendar_sweep(environment=environment)}

    return for_each_environment(tick, atomic=True)


@shared_task(name="homes.equity_tick", acks_late=True, ignore_result=True)
def equity_tick() -> dict:
    """Beat, every hour: recompute the homes not computed yet today in every environment,
    so stored equity, borrowing power and offers follow the liens' amortization; then value
    and recompute the homes a sync left waiting (its task was never queued, or lost).
    Returns the number of stale homes recomputed, by environment."""
    from homes.services.recompute import properties_recompute_stale
    from homes.services.sync import properties_refresh_waiting

    def tick(environment) -> int:
        stale = properties_recompute_stale(environment=environment)
        properties_refresh_waiting(environment=environment)  # logs what it found waiting
        return stale

    # Not one transaction per environment: each batch of homes is stored in its own.
    return for_each_environment(tick, atomic=False)


@tenant_task(
    name="homes.properties_sync",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def properties_sync(self, environment, revalue_ids: list[int], recompute_ids: list[int]) -> None:
    """After a sync from the institution's systems: value new and changed homes, recompute
    equity and offers of homes whose liens or owner changed."""
    from homes.services.sync import properties_refresh

    properties_refresh(
        environment=environment, revalue_ids=revalue_ids, recompute_ids=recompute_ids
    )
