"""Test settings: the real settings module, with the test switch on (fast hashing, eager tasks)."""

import os

os.environ.setdefault("CHIMNEY_TESTING", "1")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # the test client speaks plain HTTP
os.environ.setdefault("BASE_DOMAIN", "chimney.test")
os.environ.setdefault("EMAIL_URL", "memorymail://")  # locmem outbox unless a test sets a server

from chimney.settings import *  # noqa: F403
