"""Push subscriptions: saved (an opt-in), removed (an opt-out), both with consent records."""

from __future__ import annotations

from django.db import transaction

from institutions import outbound
from notifications.channels.push import subscription_keys_valid
from notifications.models import Category, Channel, ConsentRecord, PushSubscription

PUSH_PROMPT = "Allow browser notifications for updates on my home, offers and appointments."
PUSH_OFF = "Turn off browser notifications on this device."
PUSH_TAKEN_OVER = (
    "Browser notifications on this device now go to another member, who allowed them in "
    "the same browser."
)


def push_subscription_save(
    *, environment, member, endpoint: str, p256dh: str, auth: str, client="", user_agent=""
) -> PushSubscription:
    """Store a browser's subscription (validated keys); the browser prompt is the consent.

    A browser shared by two members has one endpoint: the one who allowed notifications
    last gets them, with their consent recorded, and the one before an opt-out record for
    this device."""
    from django.conf import settings

    problem = subscription_keys_valid(p256dh, auth)
    if problem:
        raise ValueError(problem)
    allow_http = getattr(
        settings, "NOTIFICATIONS_PUSH_ALLOW_HTTP", settings.DEBUG or settings.TESTING
    )
    if not endpoint.startswith("https://") and not allow_http:
        raise ValueError("A push endpoint must be an https:// URL.")
    problem = outbound.url_problem(endpoint)
    if problem:
        raise ValueError(f"Not a push service: {problem}")
    with transaction.atomic():
        previous = (
            PushSubscription.objects.select_for_update()
            .filter(environment=environment, endpoint=endpoint)
            .values_list("member_id", flat=True)
            .first()
        )
        subscription, created = PushSubscription.objects.update_or_create(
            environment=environment,
            endpoint=endpoint,
            defaults={
                "member": member,
                "p256dh": p256dh,
                "auth": auth,
                "user_agent": user_agent[:300],
            },
        )
        if previous is not None and previous != member.pk:
            _consent(environment, previous, Category.ACCOUNT, False, PUSH_TAKEN_OVER, client)
        if created or previous != member.pk:
            for category in Category:
                _consent(environment, member.pk, category, True, PUSH_PROMPT, client)
    return subscription


def _consent(environment, member_id: int, category, granted: bool, text: str, client: str):
    """A consent record of the browser's push prompt (or of turning it off)."""
    ConsentRecord.objects.create(
        environment=environment,
        member_id=member_id,
        category=category,
        channel=Channel.PUSH,
        granted=granted,
        method=ConsentRecord.Method.PUSH_PROMPT,
        text_shown=text,
        client=client[:64],
    )


def push_subscription_remove(*, environment, member, endpoint: str, client="") -> bool:
    with transaction.atomic():
        deleted, _ = PushSubscription.objects.filter(
            environment=environment, member=member, endpoint=endpoint
        ).delete()
        if deleted:
            _consent(environment, member.pk, Category.ACCOUNT, False, PUSH_OFF, client)
    return bool(deleted)
