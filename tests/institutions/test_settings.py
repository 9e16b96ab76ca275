"""Settings read from the environment; production values pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMNEY_", "DJANGO_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "chimney.settings", **env_overrides})
    for key in (
        "DEBUG",
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "CELERY_TASK_ALWAYS_EAGER",
        "SECURE_SSL_REDIRECT",
        "EMAIL_URL",
        "BASE_DOMAIN",
    ):
        if key not in env_overrides:
            env.pop(key, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a7" * 32 + "-production-secret-with-enough-entropy",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "BASE_DOMAIN": "chimney.example.org",
    "DATABASE_URL": "sqlite:////tmp/chimney-deploy-check.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "EMAIL_URL": "smtp+tls://user:pass@smtp.example.org:587",
}


@pytest.mark.slow
def test_check_deploy__with_production_values__passes_at_warning_level():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_startup__debug_off_without_a_secret__fails_with_a_clear_message(missing):
    values = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = _manage("check", env_overrides=values)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr


def test_settings__embedded_defaults_need_no_server():
    from django.conf import settings

    # The test run itself uses the embedded defaults unless DATABASE_URL/REDIS_URL are set.
    if not os.environ.get("REDIS_URL"):
        assert settings.CELERY_BROKER_URL == "filesystem://"
        assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_TASK_SERIALIZER == "json"  # ids in, never model instances
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_IDLE_TOUCH_SECONDS <= 60
