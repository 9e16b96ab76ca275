"""Deterministic replacements for personal data: the same input always gives the same output.

Keyed by the staging environment's own secret (`StagingDataKey`): a refresh tomorrow gives
a member the same staging identity, and without the key nobody can hash guessed names or
emails to find out whose replacement is whose.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal

FIRST_NAMES = (
    "Avery", "Blake", "Carmen", "Dana", "Elliot", "Farah", "Gideon", "Harper", "Imani", "Jonah",
    "Kiara", "Luca", "Mireille", "Nadia", "Oren", "Priya", "Quinn", "Rafael", "Selma", "Tobias",
    "Uma", "Viktor", "Wren", "Xiomara", "Yusuf", "Zelda", "Anneliese", "Bertrand", "Calla",
    "Dorian", "Esme", "Florian", "Greta", "Hollis", "Ines", "Jasper", "Keziah", "Leopold",
    "Amara", "Bodhi", "Celeste", "Desmond", "Eamon", "Fiora", "Gustavo", "Hana", "Ignatius",
    "Juniper", "Kofi", "Lorelei", "Matteo", "Noor", "Octavia", "Paloma", "Rosalind", "Soren",
    "Thea", "Ulrich", "Valentina", "Wilhelmina", "Yara", "Zane", "Anouk", "Bastian", "Cosima",
    "Dagny", "Elio", "Freya", "Ghislaine", "Hamish", "Isolde", "Joaquin", "Katarina", "Lysander",
    "Marisol", "Nikolai", "Ottilie", "Perpetua", "Rowan", "Saoirse", "Thaddeus", "Ulla",
    "Vesper", "Winslow", "Ximena", "Yannick", "Zinnia",
)  # fmt: skip
LAST_NAMES = (
    "Abernathy", "Bellweather", "Castellanos", "Delacroix", "Eastwood", "Fairbanks",
    "Greenleaf", "Hollingsworth", "Ingram", "Jablonski", "Kowalczyk", "Lindqvist", "Mercado",
    "Northcott", "Okonkwo", "Pemberton", "Quintero", "Rasmussen", "Sutherland", "Thistlewood",
    "Underhill", "Vasquez-Reyes", "Whitcombe", "Yamaguchi", "Zimmerman", "Ashgrove", "Brightwater",
    "Coldwell", "Dunmore", "Elderidge", "Foxworth", "Galloway", "Hawthorne", "Iverson",
    "Achterberg", "Blackwood", "Cavendish", "Delgado-Marsh", "Eriksen", "Fitzgerald", "Gallagher",
    "Hargreaves", "Ishikawa", "Jovanovic", "Kavanagh", "Lachance", "Montgomery", "Nakamura",
    "Oyelowo", "Pennington", "Quackenbush", "Rutherford", "Szymanski", "Tremblay", "Umberger",
    "Valderrama", "Wainwright", "Xavier-Holt", "Youngblood", "Zabrowski", "Ambrose", "Boateng",
    "Carrington", "Drummond", "Ellsworth", "Fontaine", "Grimaldi", "Halvorsen", "Iglesias",
    "Kittredge", "Lockhart", "Marchetti", "Nightingale", "Ortega-Lind", "Prescott", "Redgrave",
    "Stavros", "Thornbury", "Vanderpool", "Whitaker", "Winterbottom",
)  # fmt: skip

# A leading house or box number; never an ordinal street name such as "NE 45th St".
_HOUSE_NUMBER = re.compile(r"(?<!\w)(\d+)(?!\d|st\b|nd\b|rd\b|th\b)", re.IGNORECASE)
_SPACES = re.compile(r"[\s,.]+")


def street_key(value: str) -> str | None:
    """House number and street name, normalized ("1204 pine st" for "1204 Pine St.,
    Seattle"): the part before a comma; None without a house number."""
    head = value.split(",")[0]
    match = _HOUSE_NUMBER.search(head)
    if not match:
        return None
    return _SPACES.sub(" ", head.lower()).strip()


class Pseudonyms:
    """Replacements keyed by one secret; `avoid_*` hold the real values being replaced, so a
    replacement is never by chance a real production name or address."""

    def __init__(
        self,
        key: str | bytes,
        *,
        avoid_names: frozenset[str] = frozenset(),
        avoid_streets: frozenset[str] = frozenset(),
    ):
        self._key = hashlib.sha256(
            b"chimney-pseudonym:" + (key.encode() if isinstance(key, str) else key)
        ).digest()
        self.avoid_names = frozenset(n.lower() for n in avoid_names)
        self.avoid_streets = avoid_streets
        self._first = [n for n in FIRST_NAMES if n.lower() not in self.avoid_names]
        self._last = [n for n in LAST_NAMES if n.lower() not in self.avoid_names]

    def digest(self, namespace: str, value: str) -> bytes:
        # Keyed BLAKE2b is a MAC in itself (and cheaper than HMAC for millions of values).
        return hashlib.blake2b(f"{namespace}\x00{value}".encode(), key=self._key).digest()

    def number(self, namespace: str, value: str) -> int:
        return int.from_bytes(self.digest(namespace, value)[:8], "big")

    def token(self, namespace: str, value: str, length: int = 16) -> str:
        return self.digest(namespace, value).hex()[:length]

    # -- identity ----------------------------------------------------------------------
    def _pick(self, pool: list[str], namespace: str, value: str) -> str:
        if not pool:
            return f"{namespace.title()}{self.number(namespace, value) % 100000:05d}"
        return pool[self.number(namespace, value) % len(pool)]

    def first_name(self, value: str) -> str:
        return self._pick(self._first, "first", value)

    def last_name(self, value: str) -> str:
        return self._pick(self._last, "last", value)

    def email(self, value: str, sink_domain: str) -> str:
        """An address at the sink domain: staging mail can never reach a real inbox."""
        return f"member-{self.token('email', value.strip().lower())}@{sink_domain}"

    def external_id(self, value: str) -> str:
        return f"ANON-{self.token('external_id', value).upper()}"

    def phone(self, value: str) -> str:
        """A 555-01xx number: reserved for fiction, so no real line is ever dialled."""
        n = self.number("phone", value)
        return f"+1-{200 + n % 800:03d}-555-01{n % 100:02d}"

    def uuid(self, value: str) -> uuid.UUID:
        return uuid.UUID(bytes=self.digest("uuid", value)[:16], version=4)

    def street(self, value: str) -> str:
        """The same street, another house number of as many digits (so maps, ZIP codes and
        comparables stay plausible), never one that is a real production address."""
        match = _HOUSE_NUMBER.search(value.split(",")[0])
        if not match:
            return value
        original = match.group(1)
        digits = len(original)
        low, span = (1 if digits == 1 else 10 ** (digits - 1)), 9 * 10 ** (digits - 1)
        for attempt in range(64):
            replacement = str(low + self.number(f"street:{attempt}", value) % span)
            candidate = f"{value[: match.start(1)]}{replacement}{value[match.end(1) :]}"
            if replacement != original and street_key(candidate) not in self.avoid_streets:
                return candidate
            if digits == 1:
                digits, low, span = 2, 10, 90  # few one-digit numbers: widen the range
        longer = f"{original}0{self.number('street', value) % 10}"
        return f"{value[: match.start(1)]}{longer}{value[match.end(1) :]}"

    # -- shape-keeping noise -------------------------------------------------------------
    def factor(self, key: str, spread: Decimal, floor: Decimal = Decimal("0.01")) -> Decimal:
        """1 ± a deterministic amount between `floor` and `spread` (never exactly 1)."""
        n = self.number("factor", key)
        size = floor + (spread - floor) * Decimal(n % 10001) / Decimal(10000)
        return Decimal(1) + (size if (n >> 20) % 2 else -size)

    def days_back(self, key: str, most: int = 30) -> int:
        """A shift into the past of 1 to `most` days (dates move back: never into the future)."""
        return 1 + self.number("days", key) % most

    def jitter(self, key: str, degrees: float = 0.0015) -> tuple[float, float]:
        """A small move of a point (about ±150 m at this default), the same for one key."""
        n = self.number("jitter", key)
        lat = ((n & 0xFFFFFF) / 0xFFFFFF * 2 - 1) * degrees
        lon = (((n >> 24) & 0xFFFFFF) / 0xFFFFFF * 2 - 1) * degrees
        return lat, lon


_GRANULES = (Decimal(1000), Decimal(1), Decimal("0.01"))


def perturb(value: Decimal, factor: Decimal) -> Decimal:
    """`value` x `factor`, rounded as coarsely as the value was ($1,000 for an estimate, whole
    dollars, cents) while that still moves it: a figure in shape, never the real one."""
    if value == 0:
        return value
    for step in _GRANULES:
        if value % step:
            continue
        moved = (value * factor / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        if moved != value:
            return max(moved, Decimal(0)).quantize(Decimal("0.01"))
    return value
