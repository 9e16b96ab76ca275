"""Admin of members and their homes (scoped to the staff member's selected environment)."""

from homes.admin import configuration, homes, members  # noqa: F401  (registers the admins)
