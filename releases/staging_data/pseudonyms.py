"""Deterministic replacements for personal data: the same input always gives the same output.

Keyed by the institution and SECRET_KEY, so a pseudonym cannot be reversed by hashing
guesses without the key, and a refresh tomorrow gives members the same staging identity.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

FIRST_NAMES = (
    "Avery",
    "Blake",
    "Carmen",
    "Dana",
    "Elliot",
    "Farah",
    "Gideon",
    "Harper",
    "Imani",
    "Jonah",
    "Kiara",
    "Luca",
    "Mireille",
    "Nadia",
    "Oren",
    "Priya",
    "Quinn",
    "Rafael",
    "Selma",
    "Tobias",
    "Uma",
    "Viktor",
    "Wren",
    "Xiomara",
    "Yusuf",
    "Zelda",
    "Anneliese",
    "Bertrand",
    "Calla",
    "Dorian",
    "Esme",
    "Florian",
    "Greta",
    "Hollis",
    "Ines",
    "Jasper",
    "Keziah",
    "Leopold",
)
LAST_NAMES = (
    "Abernathy", "Bellweather", "Castellanos", "Delacroix", "Eastwood", "Fairbanks",
    "Greenleaf", "Hollingsworth", "Ingram", "Jablonski", "Kowalczyk", "Lindqvist", "Mercado",
    "Northcott", "Okonkwo", "Pemberton", "Quintero", "Rasmussen", "Sutherland", "Thistlewood",
    "Underhill", "Vasquez-Reyes", "Whitcombe", "Yamaguchi", "Zimmerman", "Ashgrove", "Brightwater",
    "Coldwell", "Dunmore", "Elderidge", "Foxworth", "Galloway", "Hawthorne", "Iverson",
)  # fmt: skip


def _digest(namespace: str, value: str, salt: str) -> bytes:
    key = hashlib.sha256(f"chimney-pseudonym:{salt}:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{namespace}\x00{value}".encode(), hashlib.sha256).digest()


def number(namespace: str, value: str, salt: str) -> int:
    return int.from_bytes(_digest(namespace, value, salt)[:8], "big")


def pick(pool, namespace: str, value: str, salt: str, *, avoid=frozenset()) -> str:
    """A pool entry for `value`, never one in `avoid` (the real names being replaced)."""
    candidates = [p for p in pool if p.lower() not in avoid]
    if not candidates:
        return f"{namespace.title()}{number(namespace, value, salt) % 100000:05d}"
    return candidates[number(namespace, value, salt) % len(candidates)]


def token(namespace: str, value: str, salt: str, length: int = 10) -> str:
    return _digest(namespace, value, salt).hex()[:length]


def email(value: str, salt: str, sink_domain: str) -> str:
    """An address at the sink domain: staging mail can never reach a real inbox."""
    return f"member-{token('email', value.lower(), salt)}@{sink_domain}"


def external_id(value: str, salt: str) -> str:
    return f"ANON-{token('external_id', value, salt, 12).upper()}"


def phone(value: str, salt: str) -> str:
    """A 555-01xx number: reserved for fiction, so no real line is ever dialled."""
    n = number("phone", value, salt)
    return f"+1-{200 + n % 800:03d}-555-01{n % 100:02d}"


_STREET_NUMBER = re.compile(r"^\s*(\d+)([A-Za-z]?)\b")


def street_address(value: str, salt: str) -> str:
    """The same street, another house number (so maps and comparables stay plausible)."""
    match = _STREET_NUMBER.match(value)
    if not match:
        return value
    original = int(match.group(1))
    replacement = original
    n = number("street", value, salt)
    while replacement == original:
        replacement = 1 + (n % 9899)
        n //= 7
        if n == 0:
            replacement = original + 2
    return f"{replacement}{value[match.end(1) :]}"


def perturb(value: Decimal, key: str, salt: str, *, spread: Decimal = Decimal("0.08")) -> Decimal:
    """A value moved by up to ±spread, deterministically: in shape, not the real figure."""
    n = number("amount", key, salt) % 20001  # 0 … 20000
    factor = Decimal(1) + spread * (Decimal(n - 10000) / Decimal(10000))
    if factor == 1:
        factor += spread / 2
    return (value * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
