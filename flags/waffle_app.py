"""django-waffle, installed without its user/group signal handlers.

waffle.signals assumes the flag model has auth `users` and `groups`; Chimney's flags target
members of an environment instead (flags.Flag.members), and flags.apps invalidates the
environment's cached flags when those change.
"""

from waffle.apps import WaffleConfig as BaseWaffleConfig


class WaffleConfig(BaseWaffleConfig):
    def ready(self) -> None:
        pass
