"""Members and their homes."""

from homes.models.members import MagicLinkToken, Member

__all__ = ["MagicLinkToken", "Member"]
