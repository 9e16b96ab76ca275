"""Member login: magic links, launch links from digital banking, and staff visits."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from homes.models import MagicLinkToken, Member
from institutions.models import AuditEntry, Environment
from institutions.ratelimit import rate_limit_hit
from institutions.selectors import staff_environments
from institutions.services import audit_record, nonce_consume

log = logging.getLogger(__name__)


class LoginError(Exception):
    """A login link or request that cannot be honoured; `message` is safe to show."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _tenant_url(environment: Environment, name: str, **kwargs) -> str:
    return environment.base_url + reverse(name, urlconf=settings.TENANT_URLCONF, kwargs=kwargs)


# --- magic links -------------------------------------------------------------------------


def magic_link_issue(
    *, environment: Environment, email: str, client: str, next_path: str = ""
) -> None:
    """Ask for a login link. The answer is the same whether or not the email is known.
    `next_path`: the page to open once signed in (a path of this site the caller checked)."""
    email = email.strip().lower()
    address_key = f"magic:addr:{environment.pk}:{_hash(email)}"
    client_key = f"magic:client:{environment.pk}:{client}"
    if not rate_limit_hit(
        client_key, limit=settings.MEMBER_LOGIN_RATE_PER_CLIENT, window_seconds=3600
    ) or not rate_limit_hit(
        address_key, limit=settings.MEMBER_LOGIN_RATE_PER_ADDRESS, window_seconds=3600
    ):
        raise LoginError("throttled", "Too many login requests. Please try again in an hour.")
    member = Member.objects.filter(environment=environment, email__iexact=email).first()
    if member is None:
        return
    next_path = next_path if len(next_path) <= NEXT_PATH_MAX else ""  # never a cut one
    transaction.on_commit(
        partial(_magic_link_queue, environment.pk, member.pk, secrets.token_urlsafe(16), next_path)
    )


def _magic_link_queue(environment_id: int, member_id: int, key: str, next_path: str) -> None:
    """Queue the email of a login link. A task queue that is down must neither fail the
    request nor tell a member's address from another (the page answers the same): the lost
    email is logged as an error for operators, and the member asks again later."""
    from kombu.exceptions import OperationalError

    from homes.tasks import send_magic_link

    try:
        send_magic_link.delay(environment_id, member_id, key, next_path)
    except (OperationalError, OSError):
        # Only the queue's own failures: an error of a task run eagerly (tests) still raises.
        log.exception(
            "Could not queue the login link of member %s of environment %s: the task queue "
            "is unreachable, so no email was sent.",
            member_id,
            environment_id,
        )


MAGIC_LINK_SALT = "chimney.magic-link"
NEXT_PATH_MAX = 500  # MagicLinkToken.next_path


def magic_link_create(
    *, environment: Environment, member: Member, key: str | None = None, next_path: str = ""
) -> str:
    """Store a single-use token for the member and return the login URL (with the raw token).

    With a key, the token is derived from it and the secret key, so every attempt to send
    one email (retries after a mail server outage) carries the same link, neither stored
    nor in the task's arguments; its validity counts from the last attempt. Without one,
    the token is random.
    """
    if key:
        raw = salted_hmac(MAGIC_LINK_SALT, f"{environment.pk}:{member.pk}:{key}").hexdigest()
    else:
        raw = secrets.token_urlsafe(32)
    MagicLinkToken.objects.update_or_create(
        environment=environment,
        token_hash=_hash(raw),
        defaults={
            "member": member,
            "expires_at": timezone.now() + settings.MAGIC_LINK_TTL,
            "next_path": next_path[:NEXT_PATH_MAX] if len(next_path) <= NEXT_PATH_MAX else "",
        },
    )
    return _tenant_url(environment, "homes:magic-link", token=raw)


def magic_link_redeem(*, environment: Environment, token: str) -> tuple[Member, str]:
    """Spend a magic link: its member and the page to open (empty: none asked for).
    Expired, used or unknown links are refused."""
    with transaction.atomic():
        link = (
            MagicLinkToken.objects.select_for_update()
            .select_related("member")
            .filter(environment=environment, token_hash=_hash(token))
            .first()
        )
        if link is None:
            raise LoginError("invalid", "This login link is not valid. Ask for a new one.")
        if link.used_at is not None:
            raise LoginError("used", "This login link was already used. Ask for a new one.")
        if link.expires_at <= timezone.now():
            raise LoginError("expired", "This login link has expired. Ask for a new one.")
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
        return _record_login(link.member), link.next_path


def _record_login(member: Member) -> Member:
    member.last_login_at = timezone.now()
    member.save(update_fields=["last_login_at"])
    return member


# --- launch links from digital banking ---------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(environment: Environment, payload_b64: str) -> str:
    key = environment.launch_secret.encode()
    return _b64(hmac.new(key, payload_b64.encode(), hashlib.sha256).digest())


def launch_link_build(
    *,
    environment: Environment,
    external_id: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    ttl: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> str:
    """The signed token digital banking puts in a launch URL (documented for integrators)."""
    issued = int((now or timezone.now()).timestamp())
    payload = {
        "sub": external_id,
        "email": email,
        "given_name": first_name,
        "family_name": last_name,
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }
    payload_b64 = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{payload_b64}.{_sign(environment, payload_b64)}"


def _launch_payload(environment: Environment, token: str) -> dict:
    forged = LoginError(
        "invalid", "This sign-in link is not valid. Open it again from online banking."
    )
    # Both halves are base64url: anything else is forged (and compare_digest refuses
    # non-ASCII text with a TypeError, which must not become a server error).
    if not token.isascii():
        raise forged
    try:
        payload_b64, signature = token.split(".")
    except ValueError:
        raise forged from None
    if not hmac.compare_digest(_sign(environment, payload_b64), signature):
        raise forged
    try:
        payload = json.loads(_unb64(payload_b64))
        sub, iat, exp, jti = (
            payload["sub"],
            int(payload["iat"]),
            int(payload["exp"]),
            payload["jti"],
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise forged from None
    if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise forged
    now = timezone.now().timestamp()
    if exp <= now:
        raise LoginError(
            "expired", "This sign-in link has expired. Open it again from online banking."
        )
    if iat > now + 60 or exp - iat > settings.LAUNCH_LINK_MAX_TTL.total_seconds():
        raise forged
    return payload


def launch_link_login(*, environment: Environment, token: str) -> Member:
    """Verify a launch link (signature, expiry, single use) and enroll or log in its member."""
    return _record_login(launch_link_redeem(environment=environment, token=token))


def launch_link_redeem(*, environment: Environment, token: str) -> Member:
    """Verify a launch token (signature, expiry, single use) and return its member, enrolled
    if new; no login is recorded (the tile shows a member's figures from a token alone)."""
    payload = _launch_payload(environment, token)
    with transaction.atomic():
        expires = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
        if not nonce_consume(
            environment=environment, purpose="launch", nonce=payload["jti"], expires_at=expires
        ):
            raise LoginError(
                "used", "This sign-in link was already used. Open it again from online banking."
            )
        member = Member.objects.filter(environment=environment, external_id=payload["sub"]).first()
        if member is None:
            from homes.services.members import member_create

            email = str(payload.get("email") or "")
            if (
                email
                and Member.objects.filter(environment=environment, email__iexact=email).exists()
            ):
                email = ""  # the address belongs to another record: do not steal it
            member = member_create(
                environment=environment,
                external_id=payload["sub"],
                email=email,
                first_name=str(payload.get("given_name") or "")[:100],
                last_name=str(payload.get("family_name") or "")[:100],
                enrollment=Member.Enrollment.ENROLLED,
                actor_label="digital banking launch",
            )
        return member


# --- sign-in links from the tile in digital banking's frame --------------------------------

TILE_LINK_SALT = "chimney.tile-sign-in"
#: The member may read their banking page a while before pressing a tile button: a tile's
#: links live as long as a magic link.
TILE_LINK_TTL = timedelta(minutes=15)


def tile_link_build(*, environment: Environment, member: Member, next_path: str) -> str:
    """A single-use path that signs the member in and opens `next_path` (a path on this
    host): what the buttons of a tile shown by launch token open at the top level, where
    inside the bank's frame no session cookie is kept."""
    token = signing.dumps(
        {"e": environment.pk, "m": member.pk, "p": next_path, "n": secrets.token_urlsafe(12)},
        salt=TILE_LINK_SALT,
    )
    return reverse("homes:tile-sign-in", urlconf=settings.TENANT_URLCONF, kwargs={"token": token})


def tile_link_redeem(*, environment: Environment, token: str) -> tuple[Member, str]:
    """Spend a tile's sign-in link; returns (member, the path it opens). Records a login."""
    invalid = LoginError("invalid", "This link is not valid. Open it again from online banking.")
    try:
        data = signing.loads(token, salt=TILE_LINK_SALT, max_age=TILE_LINK_TTL)
    except signing.SignatureExpired:
        raise LoginError(
            "expired", "This link has expired. Open it again from online banking."
        ) from None
    except signing.BadSignature:
        raise invalid from None
    if not isinstance(data, dict) or data.get("e") != environment.pk:
        raise invalid
    # An erased member's links outlive the erasure by minutes: they sign nobody in.
    member = Member.objects.filter(
        environment=environment, pk=data.get("m"), erased_at__isnull=True
    ).first()
    next_path = data.get("p")
    if member is None or not isinstance(next_path, str):
        raise invalid
    with transaction.atomic():
        if not nonce_consume(
            environment=environment,
            purpose="tile",
            nonce=str(data.get("n")),
            expires_at=timezone.now() + TILE_LINK_TTL,
        ):
            raise LoginError(
                "used", "This link was already used. Open it again from online banking."
            )
        return _record_login(member), next_path


# --- staff visiting member pages ---------------------------------------------------------

VISIT_SALT = "chimney.member-visit"
VISIT_TTL = timedelta(minutes=5)


def _visit_allowed(environment: Environment, member: Member) -> bool:
    # Staging holds mock members only; in production staff may only be test members.
    return environment.is_staging or member.is_test


def _staff_may_enter(user, environment: Environment) -> bool:
    """Whether the admin lets this user into the environment (a role there, or operator)."""
    if user is None or not user.is_active or not user.is_staff:
        return False
    return staff_environments(user).filter(pk=environment.pk).exists()


def member_visit_continues(*, environment: Environment, staff_id, member: Member) -> bool:
    """Whether a staff visit's member session may go on, by the rules that let the visit
    link be spent: its staff member is still let into the environment (role kept, account
    active and staff), and the member may still be visited (in production, a test member)."""
    from django.contrib.auth import get_user_model

    if not _visit_allowed(environment, member):
        return False
    staff = get_user_model().objects.filter(pk=staff_id).first()
    return _staff_may_enter(staff, environment)


def member_visit_link_build(*, environment: Environment, member: Member, actor) -> str:
    """A short-lived, single-use URL that opens the member pages as this member."""
    if member.environment_id != environment.pk:
        raise LoginError("invalid", "That member is not in this environment.")
    if not _visit_allowed(environment, member):
        raise LoginError("forbidden", "In production, staff can visit only as a test member.")
    if not _staff_may_enter(actor, environment):
        raise LoginError("forbidden", "You have no access to this environment.")
    token = signing.dumps(
        {"e": environment.pk, "m": member.pk, "u": actor.pk, "n": secrets.token_urlsafe(12)},
        salt=VISIT_SALT,
    )
    return _tenant_url(environment, "homes:visit", token=token)


def member_visit_redeem(*, environment: Environment, token: str):
    """Spend a staff visit link; returns (member, staff user). Audited."""
    from django.contrib.auth import get_user_model

    invalid = LoginError("invalid", "This visit link is not valid or has expired.")
    try:
        data = signing.loads(token, salt=VISIT_SALT, max_age=VISIT_TTL)
    except signing.BadSignature:
        raise invalid from None
    if not isinstance(data, dict) or data.get("e") != environment.pk:
        raise invalid
    staff = get_user_model().objects.filter(pk=data.get("u"), is_active=True, is_staff=True).first()
    # An erased member's links outlive the erasure by minutes: they sign nobody in.
    member = Member.objects.filter(
        environment=environment, pk=data.get("m"), erased_at__isnull=True
    ).first()
    if staff is None or member is None or not _visit_allowed(environment, member):
        raise invalid
    # The link outlives the admin page that made it: the staff member must still be let
    # into this environment, as when the link was made.
    if not _staff_may_enter(staff, environment):
        raise invalid
    with transaction.atomic():
        if not nonce_consume(
            environment=environment,
            purpose="visit",
            nonce=str(data.get("n")),
            expires_at=timezone.now() + VISIT_TTL,
        ):
            raise LoginError("used", "This visit link was already used.")
        audit_record(
            action=AuditEntry.Action.VISIT,
            actor=staff,
            environment=environment,
            obj=member,
            reason="Staff opened the member pages as this member.",
        )
    return member, staff
