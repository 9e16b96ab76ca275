"""Institutions: tenants (an institution's two environments), staff, branding, audit,
failed background tasks."""

from institutions.models.api import ApiKey, ApiScope, IdempotencyRecord
from institutions.models.audit import AuditEntry
from institutions.models.branding import Branding
from institutions.models.staff import StaffRole
from institutions.models.task_failures import TaskFailure
from institutions.models.tenancy import (
    Domain,
    Environment,
    Institution,
    TenantModel,
    UsedNonce,
)

__all__ = [
    "ApiKey",
    "ApiScope",
    "AuditEntry",
    "Branding",
    "Domain",
    "Environment",
    "IdempotencyRecord",
    "Institution",
    "StaffRole",
    "TaskFailure",
    "TenantModel",
    "UsedNonce",
]
