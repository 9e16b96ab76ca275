"""Every write about institutions goes through these services."""

from institutions.services.audit import (
    audit_record,
    audited_save,
    model_snapshot,
    tenant_full_clean,
    tenant_object_delete,
    tenant_object_save,
)
from institutions.services.institutions import (
    branding_update,
    institution_create,
    institution_update,
    staff_role_grant,
    staff_role_revoke,
)
from institutions.services.nonces import nonce_consume

__all__ = [
    "audit_record",
    "audited_save",
    "branding_update",
    "institution_create",
    "institution_update",
    "model_snapshot",
    "nonce_consume",
    "staff_role_grant",
    "staff_role_revoke",
    "tenant_full_clean",
    "tenant_object_delete",
    "tenant_object_save",
]
