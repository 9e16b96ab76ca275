"""Receivers: cache invalidation after commit, whoever wrote the row (a service, a release
deploy); final task failures recorded for the admin."""

import logging

from celery.signals import task_failure
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from institutions import page_cache
from institutions.models import Branding
from institutions.selectors import branding_cache_key
from institutions.services.task_failures import task_arguments_repr, task_failure_record
from institutions.tenancy import tenant_task_environment_id

logger = logging.getLogger(__name__)


@receiver([post_save, post_delete], sender=Branding)
def branding_changed(sender, instance, **kwargs):
    key = branding_cache_key(instance.environment_id)
    transaction.on_commit(lambda: page_cache.delete(key))


@task_failure.connect(dispatch_uid="institutions.task_failed")
def task_failed(sender=None, task_id=None, exception=None, args=None, kwargs=None, **extra):
    """Record a task that failed for good (Celery sends this once its retries are spent,
    not on each retry). Never raises into Celery: a failure to record is logged instead."""
    name = getattr(sender, "name", None) or repr(sender)
    try:
        if not connection.in_atomic_block:
            # The task may have failed with its database connection: write on a fresh one
            # rather than on a broken one (the worker closes it so after every task too).
            connection.close_if_unusable_or_obsolete()
        request = getattr(sender, "request", None)
        # What the caller chose to show of the arguments (argsrepr hides secrets), if set.
        shown = getattr(request, "argsrepr", None), getattr(request, "kwargsrepr", None)
        arguments = (
            f"args={shown[0]} kwargs={shown[1]}"
            if all(shown)
            else task_arguments_repr(args, kwargs)
        )
        einfo = extra.get("einfo")
        task_failure_record(
            task_name=name,
            task_id=task_id or "",
            exception=exception,
            traceback=getattr(einfo, "traceback", "") or "",
            arguments=arguments,
            retries=getattr(request, "retries", None) or 0,
            environment_id=tenant_task_environment_id(sender, args, kwargs),
        )
    except Exception:
        logger.exception("Could not record the failure of task %s[%s]", name, task_id)
