"""Chimney settings: one module, read from the environment through one `env` object.

Embedded defaults (SQLite, a filesystem Celery broker, console email) need no server.
With DEBUG off, the secrets have no defaults: startup fails with a clear message.
"""

import base64
import hashlib
import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CHIMNEY_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env_file = BASE_DIR / ".env"
# The tests and benchmarks never read .env: it may name a developer's own database or Redis,
# which the suite would otherwise use (and flush between tests).
if env_file.exists() and not env.bool("CHIMNEY_TESTING", default=False):
    environ.Env.read_env(env_file)

DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("CHIMNEY_TESTING", default=False)

if DEBUG or TESTING:
    SECRET_KEY = env.str("SECRET_KEY", default="chimney-insecure-development-key-" + "x" * 32)
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
        ) from exc

# Hosts: <slug>.<BASE_DOMAIN> is production, <slug>.staging.<BASE_DOMAIN> is staging,
# BASE_DOMAIN itself is the platform host (admin). Custom domains come from the database,
# so Django's host check admits any well-formed host and the tenancy middleware answers
# 404 for hosts it does not know.
BASE_DOMAIN = env.str("BASE_DOMAIN", default="localhost")
ALLOWED_HOSTS = ["*"]
PUBLIC_SCHEME = env.str("PUBLIC_SCHEME", default="http" if DEBUG else "https")
# Links the platform prints or sends (magic links, launch links) name this port; the
# development server listens on 8000, so that is the default while DEBUG is on.
PUBLIC_PORT = env.str("PUBLIC_PORT", default="8000" if DEBUG else "")

INSTALLED_APPS = [
    "institutions.apps.ChimneyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "django_celery_beat",
    "rest_framework",
    "anymail",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (no CDN)
    "institutions",
    "homes",
    "flags.waffle_app.WaffleConfig",  # django-waffle (label "waffle")
    "flags",
    "notifications",
    "releases",
]

MIDDLEWARE = [
    "institutions.middleware.TenantHostMiddleware",
    "flags.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "institutions.middleware.SessionIdleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "institutions.middleware.ScopeMiddleware",
    "homes.middleware.MemberMiddleware",
    "flags.middleware.FlagsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chimney.urls_platform"
TENANT_URLCONF = "chimney.urls_tenant"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "institutions.context_processors.tenant",
            ],
        },
    },
]

WSGI_APPLICATION = "chimney.wsgi.application"
ASGI_APPLICATION = "chimney.asgi.application"

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'chimney.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process, the worker and beat share one file without "database locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file (not :memory:) so that a real Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{env.str('CHIMNEY_TEST_DB_SUFFIX', default='main')}.sqlite3")
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # Statements a connection runs again and again (every member page's reads and its
    # view event) are planned once per connection: planning them costs more than running
    # them. Needs server-side parameter binding. Turn it off behind a connection pooler in
    # transaction mode that does not keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env.int("DATABASE_PREPARE_THRESHOLD", 5)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "chimney.cache.ChimneyRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="chimney"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rendered fragments keyed by the version of what they show (the member dashboard's card):
# each process keeps the ones it used in memory in front of the shared cache.
CACHES["fragments"] = {
    "BACKEND": "chimney.cache.VersionedFragmentCache",
    "LOCATION": "default",
    "OPTIONS": {"MAX_ENTRIES": 5000},
}

# Celery: Redis when REDIS_URL is set; otherwise a filesystem broker that needs no server.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = VAR_DIR / "celery-broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast (worker control) messages; kombu's default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Redis re-delivers an unacknowledged message after this many seconds (worker lost).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# An email provider through django-anymail instead: EMAIL_BACKEND=anymail.backends.<esp>.
# EmailBackend, and anymail's settings as JSON in ANYMAIL, e.g. {"POSTMARK_SERVER_TOKEN": "…",
# "WEBHOOK_SECRET": "user:password"} (the secret of its bounce and complaint webhooks).
if env.str("EMAIL_BACKEND", default=""):
    EMAIL_BACKEND = env.str("EMAIL_BACKEND")
ANYMAIL = env.json("ANYMAIL", default={})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"Chimney <no-reply@{BASE_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Requests to URLs that institutions or members give (webhooks, CalDAV, push endpoints) go
# to public internet addresses only (institutions.outbound), plus these networks (CIDRs);
# development and the tests reach their peers on this machine, so they allow every address.
OUTBOUND_PRIVATE_ALLOWED = env.bool("CHIMNEY_OUTBOUND_PRIVATE_ALLOWED", default=DEBUG or TESTING)
OUTBOUND_ALLOWED_NETWORKS = env.list("CHIMNEY_OUTBOUND_ALLOWED_NETWORKS", default=[])
for _network in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(f"CHIMNEY_OUTBOUND_ALLOWED_NETWORKS: {_error}") from None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Failed staff logins: at most 100 failures per account per hour.
AXES_FAILURE_LIMIT = 100
AXES_COOLOFF_TIME = timedelta(hours=1)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "institutions/staff_locked_out.html"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# The limit is per account on purpose (the W006 hint is about combined parameters; a
# username-only lockout cannot be dodged by rotating user agents or cookies).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Sessions live in Redis when it is configured (saving every request is then one cache
# write, not a database write; a member page reads its session with the environment's
# page values in one round trip); otherwise in the database, shared by every process.
SESSION_ENGINE = "institutions.sessions" if REDIS_URL else "django.contrib.sessions.backends.db"
# Staff and member sessions end after 30 idle minutes. Activity extends them, written at
# most once a minute (institutions.middleware.SessionIdleMiddleware), not on every request.
SESSION_COOKIE_AGE = 30 * 60
SESSION_SAVE_EVERY_REQUEST = False
SESSION_IDLE_TOUCH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Field encryption (Fernet). Several keys allow rotation: the first encrypts, all decrypt.
if DEBUG or TESTING:
    _dev_key = base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[_dev_key])
else:
    try:
        FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off "
            "(comma-separated Fernet keys; the first one encrypts)."
        ) from exc

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# The integration API (/api/v1/ on each environment's host): API keys per environment.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["institutions.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "institutions.api.schema.ChimneyAutoSchema",
    "EXCEPTION_HANDLER": "institutions.api.errors.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": False,  # money and rates are JSON numbers, in and out
    "LIST_SERIALIZER_ERRORS_AS_DICT": True,  # a batch's bad rows keyed by their index
    # ASCII JSON: an answer quoting bad input (a lone surrogate, say) always renders.
    "UNICODE_JSON": False,
    "UNAUTHENTICATED_USER": None,
}
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="1200/min")  # per key
API_MAX_REQUEST_BYTES = env.int("API_MAX_REQUEST_BYTES", default=8 * 1024 * 1024)
API_MAX_BATCH = 1000  # rows per bulk request
API_IDEMPOTENCY_TTL_HOURS = env.int("API_IDEMPOTENCY_TTL_HOURS", default=24)
API_IDEMPOTENCY_LOCK_SECONDS = 300  # a claim whose request never finished is taken over after
API_KEY_LAST_USED_SECONDS = 60  # last_used_at is written at most this often per key
SPECTACULAR_SETTINGS = {
    "TITLE": "Chimney integration API",
    "DESCRIPTION": (
        "How an institution's systems (core banking, data warehouse, digital banking) talk "
        "to Chimney. Call it on the host of the environment you mean, with a key of that "
        "environment. Every answer that is not a success has the body "
        '`{"error": {"code", "message", "fields", "rows"}}`; a batch with bad rows is '
        "refused whole with each bad row named by its index, unless the operation says it "
        "accepts the good rows. Lists are cursor-paginated; the lists of rows that change "
        "(members, deliveries) filter by `updated_since` for incremental sync."
    ),
    "VERSION": "1",
    "SERVE_URLCONF": TENANT_URLCONF,
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "institutions.api.schema.drop_database_ranges",
    ],
    "ENUM_NAME_OVERRIDES": {
        "LienKindEnum": "homes.models.properties.Lien.Kind",
        "ReleaseKindEnum": "releases.models.release.Release.Kind",
    },
}

# Member login.
MAGIC_LINK_TTL = timedelta(minutes=15)
LAUNCH_LINK_MAX_TTL = timedelta(minutes=5)
MEMBER_LOGIN_RATE_PER_ADDRESS = env.int("MEMBER_LOGIN_RATE_PER_ADDRESS", default=5)  # per hour
MEMBER_LOGIN_RATE_PER_CLIENT = env.int("MEMBER_LOGIN_RATE_PER_CLIENT", default=20)  # per hour
# How many proxies of ours (load balancer, CDN) sit in front of gunicorn: per-client limits
# take the client's address that many entries from the right of X-Forwarded-For. 0: no
# proxy, REMOTE_ADDR is the client and the header (which anyone can send) is ignored.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)

# Notifications. Staging email that is not for an allowlisted test address goes to this
# sink (an EMAIL_URL: filemail://, consolemail://, smtp://); staging push to a JSON-lines file.
NOTIFICATIONS_STAGING_EMAIL_URL = env.str("NOTIFICATIONS_STAGING_EMAIL_URL", default="")
NOTIFICATIONS_STAGING_PUSH_SINK = env.str("NOTIFICATIONS_STAGING_PUSH_SINK", default="")
# Staging data rewrites every member's email to an address at this domain.
STAGING_EMAIL_SINK_DOMAIN = env.str("STAGING_EMAIL_SINK_DOMAIN", default="staging-sink.invalid")
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=30)
NOTIFICATIONS_SENDING_LEASE_SECONDS = env.int("NOTIFICATIONS_SENDING_LEASE_SECONDS", default=600)
NOTIFICATIONS_REDISPATCH_SECONDS = env.int("NOTIFICATIONS_REDISPATCH_SECONDS", default=300)
NOTIFICATIONS_SEND_BATCH = env.int("NOTIFICATIONS_SEND_BATCH", default=500)
NOTIFICATIONS_FANOUT_CHUNK = env.int("NOTIFICATIONS_FANOUT_CHUNK", default=1000)
NOTIFICATIONS_HOME_SUMMARIES = env.str(
    "NOTIFICATIONS_HOME_SUMMARIES", default="homes.selectors.home_summaries"
)

# Fitted comparable-sales estimators, shared by every process of this machine (one fits,
# the others read it: homes.valuation.store); empty: each process fits its own.
HOMES_ESTIMATOR_DIR = env.str("HOMES_ESTIMATOR_DIR", default=str(VAR_DIR / "estimators"))

# Appointments with loan officers: officers' CalDAV calendars are read and written with
# this timeout per request (seconds); a failed write is retried with backoff (base seconds,
# doubled per attempt) this many times, then shown as failed for staff to retry.
APPOINTMENTS_CALDAV_TIMEOUT = env.float("APPOINTMENTS_CALDAV_TIMEOUT", default=5.0)
APPOINTMENTS_CALDAV_MAX_ATTEMPTS = env.int("APPOINTMENTS_CALDAV_MAX_ATTEMPTS", default=6)
APPOINTMENTS_CALDAV_RETRY_BASE_SECONDS = env.float(
    "APPOINTMENTS_CALDAV_RETRY_BASE_SECONDS", default=30
)

# Testing in production (flags app): waffle flags live per environment in flags.Flag.
WAFFLE_FLAG_MODEL = "flags.Flag"
WAFFLE_ENABLE_ADMIN_PAGES = False  # flags.admin shows the per-environment flags instead
WAFFLE_CREATE_MISSING_FLAGS = False
FLAGS_WAREHOUSE_DIR = env.path("FLAGS_WAREHOUSE_DIR", default=str(VAR_DIR / "warehouse"))
FLAGS_METRICS_FLUSH_SECONDS = env.float(
    "FLAGS_METRICS_FLUSH_SECONDS", default=0.0 if TESTING else 5.0
)
# Page-view events wait in their process at most this long, then are written in one COPY
# (flags.services.event_buffer); 0 writes each view at once (the tests, unless they say).
FLAGS_EVENTS_FLUSH_SECONDS = env.float(
    "FLAGS_EVENTS_FLUSH_SECONDS", default=0.0 if TESTING else 1.0
)
# How long a process trusts its copy of an environment's flags before checking the flags
# version in the cache (one small read); 0 checks on every request. A change or kill
# switch reaches other processes within this time, the process that made it at once.
FLAGS_VERSION_CHECK_SECONDS = env.float("FLAGS_VERSION_CHECK_SECONDS", default=1.0)
# waffle's own migrations create its default Flag tables even when the model is swapped;
# these create only the Switch and Sample tables waffle still declares.
MIGRATION_MODULES = {"waffle": "flags.waffle.migrations"}
CELERY_BEAT_SCHEDULE = {
    "flags-rollouts": {"task": "flags.rollouts_tick", "schedule": 60.0},
    "flags-destinations": {"task": "flags.destinations_tick", "schedule": 60.0},
    "flags-warehouse-daily": {"task": "flags.warehouse_tick", "schedule": 3600.0},
    # Appointment reminders (24 h and 1 h before) and calendar syncs whose task was lost.
    "homes-appointments": {"task": "homes.appointments_tick", "schedule": 60.0},
    # Equity and offers of the homes not recomputed yet today (lien balances amortize).
    "homes-equity": {"task": "homes.equity_tick", "schedule": 3600.0},
    "api-idempotency-prune": {"task": "institutions.idempotency_prune", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
