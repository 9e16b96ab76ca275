"""Settings read from the environment; production values pass Django's deploy checks."""

import os
import shutil
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


def _setting(name, env_overrides):
    result = _manage(
        "shell", "-c", f"from django.conf import settings; print('setting=' + settings.{name})",
        env_overrides=env_overrides,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = (line for line in result.stdout.splitlines() if line.startswith("setting="))
    return line.removeprefix("setting=")


@pytest.mark.slow
def test_settings__staging_email_sink_domain__read_from_the_environment():
    assert _setting("STAGING_EMAIL_SINK_DOMAIN", {"DEBUG": "1"}) == "staging-sink.invalid"
    domain = {"DEBUG": "1", "STAGING_EMAIL_SINK_DOMAIN": "sink.example"}
    assert _setting("STAGING_EMAIL_SINK_DOMAIN", domain) == "sink.example"


@pytest.mark.slow
def test_settings__public_port__the_dev_servers_with_debug_none_in_production():
    # `manage.py launch_link` from a second shell must print links to the dev server (:8000).
    assert _setting("PUBLIC_PORT", {"DEBUG": "1"}) == "8000"
    assert _setting("PUBLIC_PORT", {"DEBUG": "1", "PUBLIC_PORT": "8123"}) == "8123"
    assert _setting("PUBLIC_PORT", PRODUCTION) == ""


def test_settings__tests_never_read_dotenv(tmp_path):
    """A .env may name the developer's own Redis or database: the suite would use it and
    flush it between tests (cache.clear() is FLUSHDB)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"chimney", ".env", "var", ".git"}:
            (checkout / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "chimney", checkout / "chimney")  # BASE_DIR is found from it
    (checkout / ".env").write_text(
        "REDIS_URL=redis://127.0.0.1:6379/13\nDATABASE_URL=postgres://nobody@127.0.0.1/theirs\n"
    )
    dropped = {"DATABASE_URL", "REDIS_URL", "CHIMNEY_TESTING"}  # this run's own choices
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CACHES['default']['BACKEND'], settings.DATABASES['default']['ENGINE'])"
    )
    read = {}
    for module in ("chimney.settings_test", "chimney.settings"):
        env.update(DJANGO_SETTINGS_MODULE=module, CHIMNEY_VAR_DIR=str(tmp_path), DEBUG="1")
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        read[module] = result.stdout.split()
    assert read["chimney.settings_test"] == [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.db.backends.sqlite3",
    ]
    # The platform itself still reads it (the control: the .env above is well-formed).
    assert read["chimney.settings"] == [
        "chimney.cache.ChimneyRedisCache",
        "django.db.backends.postgresql",
    ]
