"""Web Push: VAPID keys per environment, and sending an encrypted (RFC 8291) notification."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from institutions import outbound
from notifications.models import VapidKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def vapid_key_generate(*, environment) -> VapidKey:
    """Make the environment's VAPID key pair once (the private key is stored encrypted)."""
    existing = VapidKey.objects.filter(environment=environment).first()
    if existing is not None:
        return existing
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKey.objects.create(
        environment=environment, public_key=b64url(public), private_key=pem
    )


def subscription_keys_valid(p256dh: str, auth: str) -> str:
    """'' when the browser's keys look right, else what is wrong."""
    try:
        point = b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError):
        return "p256dh is not a P-256 public key (base64url, uncompressed point)"
    try:
        if len(b64url_decode(auth)) != 16:
            return "auth must be 16 bytes (base64url)"
    except (ValueError, TypeError):
        return "auth is not base64url"
    return ""


class PushGone(Exception):
    """The push service says the subscription no longer exists (404/410): remove it."""


class PushRejected(Exception):
    """A permanent refusal (bad request, payload too large, bad key)."""


class PushTransient(Exception):
    """Try again later (429, 5xx, network)."""


def push_send(
    *, vapid: VapidKey, subscription, payload: dict, subject: str, topic: str, ttl: int = 86400
):
    """Encrypt and send one notification; raise PushGone/PushRejected/PushTransient."""
    import requests

    info = {
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }
    key = Vapid02.from_pem(vapid.private_key.encode())
    try:
        with outbound.public_only():  # the endpoint is whatever the member's browser sent
            response = webpush(
                info,
                data=json.dumps(payload),
                vapid_private_key=key,
                vapid_claims={"sub": subject},
                ttl=ttl,
                timeout=10,
                # The same delivery sent again replaces the undelivered copy (RFC 8030 Topic).
                headers={"Urgency": "normal", "Topic": topic},
            )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (404, 410):
            raise PushGone(f"{status} subscription gone") from exc
        if status is None or status == 429 or status >= 500:
            raise PushTransient(str(exc)[:500]) from exc
        raise PushRejected(str(exc)[:500]) from exc
    except (requests.RequestException, OSError) as exc:
        refused = outbound.refused_in(exc)
        if refused is not None:  # it will not become a public address by waiting
            raise PushRejected(str(refused)[:500]) from exc
        raise PushTransient(f"push service unreachable: {exc}"[:500]) from exc
    except ValueError as exc:  # bad subscription keys: encryption impossible
        raise PushRejected(f"invalid push subscription: {exc}"[:500]) from exc
    return response.headers.get("Location", "")
