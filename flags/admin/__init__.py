"""Admin for testing in production: flags, events and plans, destinations, oracle, test plans."""

from flags.admin import dashboard, events, flags, testplans  # noqa: F401
