"""Members and their homes: properties, liens, valuations, sales, settings, offers and
appointments with loan officers."""

from homes.models.appointments import (
    Appointment,
    AppointmentSettings,
    LoanOfficer,
    OfficerAvailability,
    Weekday,
)
from homes.models.configuration import HomeSettings
from homes.models.members import MagicLinkToken, Member
from homes.models.offers import MemberOffer, OfferMatch, OfferProduct
from homes.models.properties import Lien, Property, Sale
from homes.models.valuations import Provider, RefreshChunk, RefreshRun, Valuation, VendorValue

__all__ = [
    "Appointment",
    "AppointmentSettings",
    "HomeSettings",
    "Lien",
    "LoanOfficer",
    "MagicLinkToken",
    "Member",
    "MemberOffer",
    "OfferMatch",
    "OfferProduct",
    "OfficerAvailability",
    "Property",
    "Provider",
    "RefreshChunk",
    "RefreshRun",
    "Sale",
    "Valuation",
    "VendorValue",
    "Weekday",
]
