"""Cache invalidation after commit, whoever wrote the row (a service, a release deploy)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from institutions import page_cache
from institutions.models import Branding
from institutions.selectors import branding_cache_key


@receiver([post_save, post_delete], sender=Branding)
def branding_changed(sender, instance, **kwargs):
    key = branding_cache_key(instance.environment_id)
    transaction.on_commit(lambda: page_cache.delete(key))
