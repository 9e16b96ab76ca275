"""Every flag is declared once, here or in its app's code, with a one-line description.

The admin lists declared flags that have no row in the environment, and rows that no code
declares any more (stale flags to remove).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,99}$")


@dataclass(frozen=True)
class DeclaredFlag:
    name: str
    description: str
    module: str


_declared: dict[str, DeclaredFlag] = {}


def declare_flag(name: str, description: str, *, module: str = "") -> str:
    """Declare a flag (name in snake_case, a one-line description); returns the name."""
    if not _NAME.match(name):
        raise ValueError(f"Flag name {name!r}: use lowercase letters, digits and underscores.")
    if not description.strip() or "\n" in description:
        raise ValueError(f"Flag {name!r} needs a one-line description.")
    existing = _declared.get(name)
    if existing and existing.description != description:
        raise ValueError(f"Flag {name!r} is already declared in {existing.module or 'code'}.")
    _declared[name] = DeclaredFlag(name, description.strip(), module)
    return name


def declared() -> dict[str, DeclaredFlag]:
    return dict(sorted(_declared.items()))


def is_declared(name: str) -> bool:
    return name in _declared


# --- flags guarding member-facing work -------------------------------------------------
# Guards the new "equity at a glance" widget on the member dashboard (test cohort first).
DASHBOARD_EQUITY_WIDGET = declare_flag(
    "dashboard_equity_widget", "The equity-at-a-glance widget on the member dashboard."
)
# Guards the redesigned offer card (rate, payment and savings side by side).
OFFER_CARD_V2 = declare_flag("offer_card_v2", "The redesigned offer card on the offers page.")
# Guards the what-if slider (borrow more or less and see the new payment).
WHAT_IF_SLIDER = declare_flag("what_if_slider", "The what-if borrowing slider on the dashboard.")
