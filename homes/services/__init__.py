"""Every write about members and their homes goes through these services."""

from homes.services.appointments import (
    AppointmentError,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    appointment_set_status,
    appointments_remind,
)
from homes.services.calendars import (
    appointments_calendar_retry,
    officer_busy,
    officer_calendar_check,
)
from homes.services.engagement import (
    EnrollmentError,
    dashboard_viewed,
    member_auto_enroll,
    member_opt_in,
    member_opt_out,
    offer_save,
    offer_select,
    offer_view,
)
from homes.services.erasure import member_erase
from homes.services.homes import (
    home_settings_save,
    lien_delete,
    lien_save,
    offer_product_delete,
    offer_product_save,
    property_save,
)
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
from homes.services.officers import (
    appointment_settings_save,
    loan_officer_save,
    officer_availability_set,
)
from homes.services.recompute import properties_recompute
from homes.services.refresh import (
    RefreshInProgress,
    refresh_continue,
    refresh_resume,
    refresh_run,
    refresh_start,
    refresh_waiting_start,
)
from homes.services.sales import sales_check, sales_import
from homes.services.sync import (
    ConcurrentChange,
    member_bulk_upsert,
    members_check,
    properties_refresh,
)
from homes.services.valuations import property_revalue
from homes.services.vendor import (
    VendorImport,
    VendorImportError,
    parse_vendor_csv,
    vendor_values_import,
)

__all__ = [
    "AppointmentError",
    "ConcurrentChange",
    "EnrollmentError",
    "LoginError",
    "RefreshInProgress",
    "VendorImport",
    "VendorImportError",
    "appointment_book",
    "appointment_cancel",
    "appointment_reschedule",
    "appointment_set_status",
    "appointment_settings_save",
    "appointments_calendar_retry",
    "appointments_remind",
    "dashboard_viewed",
    "home_settings_save",
    "launch_link_build",
    "launch_link_login",
    "lien_delete",
    "lien_save",
    "loan_officer_save",
    "magic_link_issue",
    "magic_link_redeem",
    "member_auto_enroll",
    "member_bulk_upsert",
    "member_create",
    "member_erase",
    "member_opt_in",
    "member_opt_out",
    "member_update",
    "member_visit_link_build",
    "member_visit_redeem",
    "members_check",
    "offer_product_delete",
    "offer_product_save",
    "offer_save",
    "offer_select",
    "offer_view",
    "officer_availability_set",
    "officer_busy",
    "officer_calendar_check",
    "parse_vendor_csv",
    "properties_recompute",
    "properties_refresh",
    "property_revalue",
    "property_save",
    "refresh_continue",
    "refresh_resume",
    "refresh_run",
    "refresh_start",
    "refresh_waiting_start",
    "sales_check",
    "sales_import",
    "vendor_values_import",
]
