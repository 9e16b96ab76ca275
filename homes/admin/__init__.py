"""Admin of members and their homes (scoped to the staff member's selected environment)."""

from homes.admin import (  # noqa: F401  (registers the admins)
    appointments,
    configuration,
    homes,
    members,
)
