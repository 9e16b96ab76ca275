"""Members and their homes: properties, liens, valuations, sales, settings and offers."""

from homes.models.configuration import HomeSettings
from homes.models.members import MagicLinkToken, Member
from homes.models.offers import MemberOffer, OfferMatch, OfferProduct
from homes.models.properties import Lien, Property, Sale
from homes.models.valuations import Provider, RefreshRun, Valuation, VendorValue

__all__ = [
    "HomeSettings",
    "Lien",
    "MagicLinkToken",
    "Member",
    "MemberOffer",
    "OfferMatch",
    "OfferProduct",
    "Property",
    "Provider",
    "RefreshRun",
    "Sale",
    "Valuation",
    "VendorValue",
]
