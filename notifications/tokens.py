"""Signed tokens in emails: unsubscribe/preferences (no login), open pixel, click redirect.

Each is bound to its environment: a token from another tenant's email is refused.

A digest signs five tokens per message, so they are made by a signer that derives its HMAC
key once (django.core.signing derives it again for every token, which cost more than
rendering the message). The tokens have the format of `signing.dumps(..., compress=True)`
and are read back with `signing.loads`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import zlib
from datetime import timedelta

from django.conf import settings
from django.core import signing

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
TRACK_SALT = "notifications.track"


def _max_age() -> timedelta:
    return getattr(settings, "NOTIFICATIONS_UNSUBSCRIBE_MAX_AGE", timedelta(days=90))


_json = json.JSONEncoder(separators=(",", ":")).encode  # as signing.JSONSerializer
_string = json.encoder.encode_basestring_ascii  # a JSON string, as json.dumps writes it


def _number(value: int | None) -> str:
    """An id as JSON (null for an unsaved object's, as in a template preview)."""
    return "null" if value is None else str(int(value))


_COMPRESS_FROM = 128


class _Signer:
    """signing.dumps(obj, salt=salt, compress=True) with the key derived once."""

    def __init__(self, salt: str, secret: str | bytes):
        secret = secret.encode() if isinstance(secret, str) else secret
        # As Signer.signature → salted_hmac(salt + "signer", value, SECRET_KEY, sha256).
        self.key = hashlib.sha256(f"{salt}signer".encode() + secret).digest()
        self._second = -1
        self._stamp = ""

    def _timestamp(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, signing.b62_encode(now)
        return self._stamp

    def dumps(self, obj) -> str:
        return self.dumps_json(_json(obj))

    def dumps_json(self, text: str) -> str:
        """dumps() of an object already serialized as compact JSON."""
        data = text.encode("latin-1")
        prefix = ""
        # Short payloads hardly ever shrink (zlib adds six bytes of framing) and trying
        # costs as much as the rest of the token; a token is read back either way.
        if len(data) > _COMPRESS_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                data, prefix = compressed, "."
        value = f"{prefix}{base64.urlsafe_b64encode(data).rstrip(b'=').decode()}"
        value = f"{value}:{self._timestamp()}"
        digest = hmac.digest(self.key, value.encode(), "sha256")
        return f"{value}:{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


_signers: dict[tuple[str, str | bytes], _Signer] = {}


def _signer(salt: str) -> _Signer:
    secret = settings.SECRET_KEY
    signer = _signers.get((salt, secret))
    if signer is None:
        signer = _signers[(salt, secret)] = _Signer(salt, secret)
    return signer


def unsubscribe_token(*, environment_id: int, member_id: int, category: str) -> str:
    # {"e": environment_id, "m": member_id, "c": category} as compact JSON, written directly.
    return _signer(UNSUBSCRIBE_SALT).dumps_json(
        f'{{"e":{_number(environment_id)},"m":{_number(member_id)},"c":{_string(category)}}}'
    )


def unsubscribe_read(token: str, *, environment_id: int) -> tuple[int, str]:
    """(member id, category) of a valid, unexpired token of this environment; else BadSignature."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=_max_age())
    if data.get("e") != environment_id:
        raise signing.BadSignature("token of another environment")
    return int(data["m"]), str(data["c"])


def track_token(*, environment_id: int, delivery_id: int, url: str = "") -> str:
    # {"e": environment_id, "d": delivery_id[, "u": url]} as compact JSON.
    text = f'{{"e":{_number(environment_id)},"d":{_number(delivery_id)}'
    text += f',"u":{_string(url)}}}' if url else "}"
    return _signer(TRACK_SALT).dumps_json(text)


def track_read(token: str, *, environment_id: int) -> tuple[int, str]:
    data = signing.loads(token, salt=TRACK_SALT)
    if data.get("e") != environment_id:
        raise signing.BadSignature("token of another environment")
    return int(data["d"]), str(data.get("u", ""))
