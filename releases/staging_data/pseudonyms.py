"""Deterministic replacements for personal data: the same input always gives the same output.

Keyed by the staging environment's own secret (`StagingDataKey`): a refresh tomorrow gives
a member the same staging identity, and without the key nobody can hash guessed names or
emails to find out whose replacement is whose.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from decimal import ROUND_HALF_UP, Decimal

from homes.addresses import SPELLINGS

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

PICK_ATTEMPTS = 16

#: Streets of made-up addresses, for a street line with no house number to replace.
MADE_UP_STREETS = (
    "Alder Ln", "Birch Ave", "Cedar St", "Dogwood Dr", "Elm Ct", "Fir Pl", "Hawthorn Way",
    "Juniper Rd", "Larch Blvd", "Magnolia Ave", "Oak St", "Poplar Ln", "Rowan Dr", "Spruce St",
    "Sycamore Ct", "Tamarack Rd", "Willow Way", "Yew Pl",
)  # fmt: skip

# A number in a street line; an ordinal street name ("NE 45th St") is not one.
_NUMBER = re.compile(r"(?<!\d)\d+(?!\d|(?:st|nd|rd|th)\b)", re.IGNORECASE)
# A unit within the street line ("Apt 4", "#4", "Suite 200B"): not part of the address's key.
_UNIT = re.compile(
    r"(?:\b(?:apt|apartment|unit|ste|suite|bldg|building|floor|rm|room|spc|space|trlr)\b\.?"
    r"|#)\s*#?\s*[\w-]*",
    re.IGNORECASE,
)
# The end of a full address ("Seattle", "WA 98101"): kept, so the place stays plausible.
_ZIP_PART = re.compile(r"^\s*(?:[a-z][a-z .]*\s)?\d{5}(?:-\d{4})?\s*$", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_NOT_WORD = re.compile(r"[^a-z0-9 ]")
_PO_BOX = re.compile(r"\b(?:p\s*o|post\s+office)\s+box\b")


def _normal(text: str) -> str:
    """Lower case, ASCII, no punctuation, street suffixes and directions in their USPS
    abbreviations (homes.addresses, as opt-in compares addresses)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = _PO_BOX.sub("po box", _NOT_WORD.sub(" ", text.lower()))
    return " ".join(w for w in (SPELLINGS.get(w, w) for w in text.split()) if w)


def _is_unit(part: str) -> bool:
    return not _UNIT.sub(" ", part).strip()


def _street_line(value: str) -> tuple[str, str]:
    """(street line, the rest): "Apt 4, 1204 Pine St" and ", Seattle, WA 98101" of
    "Apt 4, 1204 Pine St, Seattle, WA 98101". The rest is the city, state and ZIP code
    after the street: parts without a number, or a state and ZIP code."""
    parts = value.split(",")
    street = next((i for i, part in enumerate(parts) if not _is_unit(part)), len(parts) - 1)
    end = len(parts)
    while end - 1 > street:
        part = parts[end - 1]
        if _is_unit(part) or (_DIGIT.search(part) and not _ZIP_PART.match(part)):
            break
        end -= 1
    line = ",".join(parts[:end])
    return line, value[len(line) :]


def _house_and_street(line: str) -> tuple[str, str] | None:
    """The house (or box) number and the normalized street name of a street line, units
    left out; None when there is no house number to recognise."""
    for part in line.split(","):
        words = _normal(_UNIT.sub(" ", part)).split()
        if not words:
            continue  # a unit on its own
        if _NUMBER.search(words[0]):
            return words[0], " ".join(words[1:])
        if "box" in words[:-1]:
            at = words.index("box") + 1
            if _NUMBER.search(words[at]):
                return words[at], " ".join(words[:at] + words[at + 1 :])
        return None  # the street: its first word is not a number
    return None


def street_key(value: str) -> str | None:
    """House number and normalized street name ("1204 pine st" for "1204 Pine Street,
    Apt 4, Seattle"), so two spellings of one address compare equal; None without a
    house number."""
    found = _house_and_street(_street_line(value)[0])
    if found is None:
        return None
    house, street = found
    return f"{house} {street}".strip()


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

    def digest(self, namespace: str, value: str) -> bytes:
        # Keyed BLAKE2b is a MAC in itself (and cheaper than HMAC for millions of values).
        return hashlib.blake2b(f"{namespace}\x00{value}".encode(), key=self._key).digest()

    def number(self, namespace: str, value: str) -> int:
        return int.from_bytes(self.digest(namespace, value)[:8], "big")

    def token(self, namespace: str, value: str, length: int = 16) -> str:
        return self.digest(namespace, value).hex()[:length]

    # -- identity ----------------------------------------------------------------------
    def _pick(self, names: tuple[str, ...], namespace: str, value: str) -> str:
        """A name of the whole list, picked again only when it is a real one: so a member
        keeps its name while production gains members (whose real names leave the others'
        picks alone)."""
        for attempt in range(PICK_ATTEMPTS):
            salt = namespace if attempt == 0 else f"{namespace}:{attempt}"
            name = names[self.number(salt, value) % len(names)]
            if name.lower() not in self.avoid_names:
                return name
        # Most of the list is real names: the first of the rest in this value's own order.
        free = [n for n in names if n.lower() not in self.avoid_names]
        if not free:
            return f"{namespace.title()}{self.number(namespace, value) % 100000:05d}"
        return min(free, key=lambda n: self.digest(f"{namespace}:order", f"{value}\x00{n}"))

    def first_name(self, value: str) -> str:
        return self._pick(FIRST_NAMES, "first", value)

    def last_name(self, value: str) -> str:
        return self._pick(LAST_NAMES, "last", value)

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
        """The same street with every number of the street line (house, unit) replaced by
        another of as many digits, so maps, ZIP codes and comparables stay plausible; a made-up
        address when the line has no house number. Never the value itself, and never a real
        production address (`avoid_streets`, compared by `street_key`)."""
        line, rest = _street_line(value)
        own = street_key(value)
        if own is None:
            return self._made_up(value, rest, own)
        for attempt in range(64):
            candidate = self._renumbered(line, attempt, value) + rest
            if self._fits(candidate, value, own):
                return candidate
        return self._made_up(value, rest, own)  # pragma: no cover - 64 taken in a row

    def _renumbered(self, line: str, attempt: int, value: str) -> str:
        """`line` with each number replaced by another of as many digits (a one-digit one
        by two digits after the first attempt: there are few one-digit numbers)."""
        seen = 0

        def other(match: re.Match) -> str:
            nonlocal seen
            seen += 1
            original = match.group()
            n = self.number(f"street:{attempt}:{seen}", value)
            digits = 2 if len(original) == 1 and attempt else len(original)
            low, span = (1 if digits == 1 else 10 ** (digits - 1)), 9 * 10 ** (digits - 1)
            replacement = str(low + n % span)
            if replacement == original:
                replacement = str(low + (n + 1) % span)
            return replacement

        return _NUMBER.sub(other, line)

    def _fits(self, candidate: str, value: str, own: str | None) -> bool:
        """Another address than `value` (whose key is `own`), and no real one."""
        key = street_key(candidate)
        return (
            candidate != value and key is not None and key != own and key not in self.avoid_streets
        )

    def _made_up(self, value: str, rest: str, own: str | None) -> str:
        """A house number on a made-up street, in place of the street line."""
        for attempt in range(64):
            n = self.number(f"street:made-up:{attempt}", value)
            digits = 3 + attempt // 16  # longer numbers while the short ones are taken
            number = 10 ** (digits - 1) + n % (9 * 10 ** (digits - 1))
            candidate = f"{number} {MADE_UP_STREETS[(n >> 32) % len(MADE_UP_STREETS)]}{rest}"
            if self._fits(candidate, value, own):
                return candidate
        raise ValueError("no made-up address is free")  # pragma: no cover

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
