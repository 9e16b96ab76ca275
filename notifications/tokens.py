"""Signed tokens in emails: unsubscribe/preferences (no login), open pixel, click redirect.

Each is bound to its environment: a token from another tenant's email is refused.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
TRACK_SALT = "notifications.track"


def _max_age() -> timedelta:
    return getattr(settings, "NOTIFICATIONS_UNSUBSCRIBE_MAX_AGE", timedelta(days=90))


def unsubscribe_token(*, environment_id: int, member_id: int, category: str) -> str:
    return signing.dumps(
        {"e": environment_id, "m": member_id, "c": category}, salt=UNSUBSCRIBE_SALT, compress=True
    )


def unsubscribe_read(token: str, *, environment_id: int) -> tuple[int, str]:
    """(member id, category) of a valid, unexpired token of this environment; else BadSignature."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=_max_age())
    if data.get("e") != environment_id:
        raise signing.BadSignature("token of another environment")
    return int(data["m"]), str(data["c"])


def track_token(*, environment_id: int, delivery_id: int, url: str = "") -> str:
    payload = {"e": environment_id, "d": delivery_id}
    if url:
        payload["u"] = url
    return signing.dumps(payload, salt=TRACK_SALT, compress=True)


def track_read(token: str, *, environment_id: int) -> tuple[int, str]:
    data = signing.loads(token, salt=TRACK_SALT)
    if data.get("e") != environment_id:
        raise signing.BadSignature("token of another environment")
    return int(data["d"]), str(data.get("u", ""))
