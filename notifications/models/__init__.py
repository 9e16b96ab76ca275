"""Notifications: channels, preferences and consent, templates, the outbox, journeys."""

from notifications.models.channels import NotificationSettings, PushSubscription, VapidKey
from notifications.models.deliveries import MARKETING_CATEGORIES, Category, Channel, Delivery
from notifications.models.journeys import Journey, JourneyProgress
from notifications.models.preferences import ConsentRecord, NotificationProfile, Preference
from notifications.models.templates import MessageTemplate

__all__ = [
    "MARKETING_CATEGORIES",
    "Category",
    "Channel",
    "ConsentRecord",
    "Delivery",
    "Journey",
    "JourneyProgress",
    "MessageTemplate",
    "NotificationProfile",
    "NotificationSettings",
    "Preference",
    "PushSubscription",
    "VapidKey",
]
