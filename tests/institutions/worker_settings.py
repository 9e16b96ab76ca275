"""Settings of a test worker that also runs the tasks of tests.institutions.failing_tasks."""

from chimney.settings_test import *  # noqa: F403

CELERY_IMPORTS = ["tests.institutions.failing_tasks"]
