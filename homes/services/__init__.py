"""Every write about members goes through these services."""

from homes.services.login import (
    LoginError,
    launch_link_build,
    launch_link_login,
    magic_link_issue,
    magic_link_redeem,
    member_visit_link_build,
    member_visit_redeem,
)
from homes.services.members import member_create, member_update

__all__ = [
    "LoginError",
    "launch_link_build",
    "launch_link_login",
    "magic_link_issue",
    "magic_link_redeem",
    "member_create",
    "member_update",
    "member_visit_link_build",
    "member_visit_redeem",
]
