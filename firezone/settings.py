"""Settings from the environment (django-environ); every variable is listed in .env.example."""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from accounts.features import ACCOUNT_FEATURES

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# `manage.py test` sets FIREZONE_TESTING; plain `pytest` is recognised by its module being loaded.
TESTING = env.bool("FIREZONE_TESTING", default="pytest" in sys.modules)

# Secrets that must be set outside development. A missing one is a start-up error, never a
# silently insecure default.
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdef"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if (DEBUG or TESTING) else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DEBUG is off. Set it in the environment "
        "(for example: SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))'))."
    )

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if (DEBUG or TESTING) else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Device/browser token signing (accounts/tokens.py). Empty = derived from SECRET_KEY. Set both
# to the original portal's values to keep tokens issued by it (docker-compose dev tokens) working.
# In development (DEBUG, not tests) the defaults are the original's docker-compose values, so the
# seeded device tokens are byte-for-byte the ones Firezone's own dev tooling ships (domain.md §6).
_DEV_TOKENS_KEY_BASE = "5OVYJ83AcoQcPmdKNksuBhJFBhjHD1uUa9mDOHV/6EIdBQ6pXksIhkVeWIzFk5S2"
_DEV_TOKENS_SALT = "t01wa0K4lUd7mKa0HAtZdE+jFOPDDej2"
_dev_tokens = DEBUG and not TESTING
TOKENS_KEY_BASE = env.str("TOKENS_KEY_BASE", default=_DEV_TOKENS_KEY_BASE if _dev_tokens else "")
TOKENS_SALT = env.str("TOKENS_SALT", default=_DEV_TOKENS_SALT if _dev_tokens else "")

EXTERNAL_URL = env.str("EXTERNAL_URL", default="http://localhost:8000")
# The API origin (portal.md §5.1): the REST API at its root (firezone/api/), and the device
# sockets. Development and tests use their own port so the REST API has an origin of its own;
# elsewhere the default is the portal's origin, where the REST API is off (set it to enable).
API_EXTERNAL_URL = env.str(
    "API_EXTERNAL_URL",
    default="http://localhost:13001"
    if (DEBUG or TESTING)
    else EXTERNAL_URL.replace("http", "ws", 1),
)
# The API origin's own host name is allowed like the portal's (ALLOWED_HOSTS names the portal).
_api_host = urlsplit(API_EXTERNAL_URL).hostname
if (
    _api_host
    and _api_host != urlsplit(EXTERNAL_URL).hostname
    and "*" not in ALLOWED_HOSTS
    and _api_host not in ALLOWED_HOSTS
):
    ALLOWED_HOSTS.append(_api_host)
# REST API rate limit per account (portal.md §5.1): a token bucket of API_CAPACITY tokens,
# refilled at API_REFILL_RATE per second; each request costs 10 (firezone/api/ratelimit.py).
API_CAPACITY = env.int("API_CAPACITY", default=200)
API_REFILL_RATE = env.float("API_REFILL_RATE", default=10.0)
# Deploy pages (portal.md §4.1.5, §4.8.5): FIREZONE_API_URL is printed only when overridden;
# the registry the Docker instructions pull the gateway/relay images from.
API_URL_OVERRIDE = env.str("API_URL_OVERRIDE", default="")
DOCKER_REGISTRY = env.str("DOCKER_REGISTRY", default="ghcr.io/firezone")
# Component versions (domain.md §5.14, firezone/component_versions.py): the releases JSON the
# refresher reads every minute — an http(s):// URL, a file:// path, or empty for the bundled
# firezone/releases.json (the development and test default). GATEWAY_LATEST_VERSION is only the
# gateway's fallback until a first refresh succeeds.
COMPONENT_VERSIONS_URL = env.str(
    "COMPONENT_VERSIONS_URL",
    default="" if (DEBUG or TESTING) else "https://www.firezone.dev/api/releases",
)
COMPONENT_VERSIONS_TIMEOUT = env.float("COMPONENT_VERSIONS_TIMEOUT", default=10.0)
GATEWAY_LATEST_VERSION = env.str("GATEWAY_LATEST_VERSION", default="1.4.0")
# The outdated-gateway e-mail (billing_sync_jobs.md §4.4) goes out on Sundays (UTC) only, like the
# original in production; development and tests act on every run.
OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY = env.bool(
    "OUTDATED_GATEWAY_EMAIL_SUNDAYS_ONLY", default=not (DEBUG or TESTING)
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "firezone",
    "accounts",
    "resources",
    "gateways",
    "billing",
    "directory_sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Requests to the API origin (API_EXTERNAL_URL) are routed by firezone.api_urls.
    "firezone.api.middleware.ApiHostMiddleware",
    # /static/ served by the app itself, DEBUG on or off (WhiteNoise, settings under STATIC_URL).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # django-csp: Content-Security-Policy with a per-request nonce (CONTENT_SECURITY_POLICY).
    "firezone.middleware.CSPMiddleware",
    # The remaining secure browser headers and the portal's 404 page (portal.md §1.6).
    "firezone.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A NUL byte in a query or form parameter: 400 before any view (firezone.middleware).
    "firezone.middleware.NulBytesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Staff admin writes name the staff user in the change log (issue 18).
    "firezone.web.admin.StaffOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "firezone.urls"
ASGI_APPLICATION = "firezone.asgi.application"
WSGI_APPLICATION = None

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
                # {{ CSP_NONCE }}: the nonce of the page's inline <script>/<style> tags.
                "csp.context_processors.nonce",
                "firezone.web.context.portal",
            ],
        },
    },
]

if not env.str("DATABASE_URL", default="") and not (DEBUG or TESTING):
    raise ImproperlyConfigured(
        "DATABASE_URL is required (postgres://user:password@host:5432/dbname). "
        "`make run` and `make test` provision a local PostgreSQL for you."
    )
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@localhost:5432/firezone")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Django's backend plus the change-log flush after commit hooks (firezone/dbbackend).
DATABASES["default"]["ENGINE"] = "firezone.dbbackend"
# psycopg's connection pool (Django >= 5.1): the device sockets run their database work on a
# bounded thread pool (`firezone.db`), and a pooled connection per call costs no reconnect.
# `DATABASE_POOL_MAX` bounds the connections of one process; 0 turns the pool off.
DATABASE_POOL_MAX = env.int("DATABASE_POOL_MAX", default=10)
if DATABASE_POOL_MAX > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10),
        # psycopg retries a failed connect with a doubling back-off (1, 2, 4, 8 s...) for this
        # long, and grows no other connection meanwhile: after a long PostgreSQL outage the
        # first requests would wait out that back-off. Given up after 2 s, the next request
        # starts a fresh attempt at once.
        "reconnect_timeout": 2.0,
    }
    # Django passes psycopg's `ConnectionPool.check_connection`: a pooled connection is tested
    # (one empty round trip) when checked out, so after a PostgreSQL restart a dead one is
    # replaced instead of failing the request that drew it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# Threads that run the device sockets' database work in one process (`firezone.db`).
DEVICE_DB_THREADS = env.int("DEVICE_DB_THREADS", default=8)
# Seconds a device connect may spend on the database before it is refused 503 (PostgreSQL down
# or the pool exhausted): below daphne's 5 s handshake timeout, past which daphne answers 403,
# which connlib takes as fatal.
DEVICE_CONNECT_DB_SECONDS = env.float("DEVICE_CONNECT_DB_SECONDS", default=3.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# Device sockets' account-wide changes do not go through the channel layer but through one
# pub/sub message per server process (`firezone.stream`, `gateways.hub`).
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        # channels-redis's layer, surviving a Redis restart without closing the sockets.
        "BACKEND": "firezone.channel_layer.ResilientRedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNELS_PREFIX", default="fz"),
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_PREFIX", default="fzc"),
    }
}

# Celery: Redis broker; idempotent tasks acknowledge late so a crashed worker's task is redone.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
# A pool process that dies mid-task (SIGKILL, OOM) puts its message back at once.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A whole worker that dies (kill -9, a lost container) leaves its messages unacknowledged in
# Redis: another worker takes them again after this many seconds. Longer than most tasks: one
# still running after it is delivered twice (a sync run then skips, its provider's lock held).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=TESTING)
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat writes its schedule file after each message it sends: the file's age is its health
# check (compose.yaml).
CELERY_BEAT_SYNC_EVERY = 1
# Directory sync runs (directory_sync/tasks.py) have their own queue: a worker runs
# `-Q celery,sync` (make run's does), or a dedicated one `-Q sync --concurrency 3`.
CELERY_TASK_ROUTES = {"directory_sync.tasks.sync_provider": {"queue": "sync"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "firezone" / "static"]
# WhiteNoise serves /static/ from the web process, DEBUG on or off, so `make run` and the
# container need no separate file server. The container image runs `collectstatic` with
# STATIC_MANIFEST=true: content-hashed, pre-gzipped files from STATIC_ROOT, cached "forever".
# Without it (`make run`, tests, a plain checkout) the files come straight from the app
# directories through the staticfiles finders, under their plain names.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
if not STATIC_MANIFEST:  # no collectstatic expected: WhiteNoise's "No directory at" is noise
    warnings.filterwarnings("ignore", message="No directory at: " + re.escape(str(STATIC_ROOT)))
# Look files up per request instead of indexing them at start-up: in development (edits show at
# once) and in tests (every test client loads the middleware anew).
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

# Content-Security-Policy (django-csp, portal.md §1.6): scripts from self, the page's nonce and
# the analytics CDNs; `'unsafe-inline'` is for CSP1 browsers only, browsers that understand
# nonces ignore it (firezone.middleware.CSPMiddleware puts the nonce in every policy).
# The user menu's avatar is the signed-in admin's initials; with this on it shows their Gravatar
# (the browser then sends a hash of their email to gravatar.com, and the CSP allows it).
GRAVATAR_ENABLED = env.bool("GRAVATAR_ENABLED", default=False)
_ANALYTICS_CONNECT = ["https://api-js.mixpanel.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF, NONCE, *_ANALYTICS_CONNECT],
        "img-src": [
            SELF,
            "data:",
            "https://*.hubspot.com",
            "https://*.hsforms.com",
        ],
        "style-src": [SELF, UNSAFE_INLINE],
        "script-src": [
            SELF,
            UNSAFE_INLINE,
            NONCE,
            "https://cdn.mxpnl.com",
            "https://*.hs-scripts.com",
            "https://*.hs-analytics.net",
            "https://*.hs-banner.com",
            "https://*.hscollectedforms.net",
        ],
        "connect-src": [SELF, *_ANALYTICS_CONNECT],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Email: console in development, SMTP when EMAIL_URL is set (smtp://user:pass@host:587?tls=True).
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    # The dev backend prints to the console and keeps the last messages for /dev/mailbox.
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND",
        default="firezone.mail.DevMailboxBackend"
        if DEBUG
        else "django.core.mail.backends.console.EmailBackend",
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Firezone <notifications@localhost>")

# Security headers; cookies are secure whenever we are not in development.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and not TESTING)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Portal sessions (portal.md §3.2): server-side rows, a 4 h cookie re-issued on every
# authenticated request (sliding); the browser token inside lives at most 10 h.
SESSION_COOKIE_NAME = "_firezone_key"
SESSION_COOKIE_AGE = 4 * 3600
CSRF_FAILURE_VIEW = "firezone.error_views.csrf_failure"
# Where the device hand-off sends the browser (portal.md §3.10); tests point it elsewhere.
CLIENT_HANDLER = env.str("CLIENT_HANDLER", default="firezone-fd0020211111://")
# Email-code requests take at least this long, known email or not (no account enumeration).
SIGN_IN_EMAIL_MIN_SECONDS = env.float("SIGN_IN_EMAIL_MIN_SECONDS", default=2.0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_PROXY_HEADERS", default=False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Device sockets take the client address from X-Forwarded-For, skipping these proxies (CIDRs)
# and private ranges unless listed as private clients (protocol.md §2.2).
TRUSTED_PROXIES = env.list("PHOENIX_EXTERNAL_TRUSTED_PROXIES", default=[])
PRIVATE_CLIENTS = env.list("PHOENIX_PRIVATE_CLIENTS", default=[])
# Delay before a relay leave is pushed to clients/gateways (§4.4); live-server tests shorten it.
RELAYS_PRESENCE_DEBOUNCE_MS = env.int("RELAYS_PRESENCE_DEBOUNCE_MS", default=3000)
# How often a client socket re-evaluates its policies against the clock (§5.7).
CLIENT_RECOMPUTE_SECONDS = env.float("CLIENT_RECOMPUTE_SECONDS", default=60)
# How long an account hub gathers committed changes before pushing them (gateways/hub).
HUB_DEBOUNCE_SECONDS = env.float("HUB_DEBOUNCE_SECONDS", default=0.02)
# How often each server process compares what its hubs applied with the change log, healing
# publishes lost on the way to Redis (firezone/catchup.py): a lost change arrives within two.
STREAM_CATCHUP_SECONDS = env.float("STREAM_CATCHUP_SECONDS", default=1.0)
# The audit log's retention (issue 18): a daily job deletes change-log rows older than this
# (firezone/audit_retention.py). At least 1 day: the catch-up reads the last seconds of the log.
AUDIT_LOG_RETENTION_DAYS = env.int("AUDIT_LOG_RETENTION_DAYS", default=365)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)

# Prometheus metrics at /metrics (firezone/metrics.py), per process. Answered only to a
# REMOTE_ADDR inside these networks (CIDRs; X-Forwarded-For is not trusted); others get a 404.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
for _cidr in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_cidr.strip(), strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_exc}") from _exc
# Scrapes are plain HTTP on an internal address: no redirect to https for /metrics; nor for
# /healthz, which the container's health check asks the same way (compose.yaml).
SECURE_REDIRECT_EXEMPT = [r"^metrics$", r"^healthz$"]
# Celery workers are other processes: > 0 = each serves its metrics on 127.0.0.1:<port>
# (prefork children on <port> + child index). 0 = off.
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=0)

# Billing (Stripe, billing_sync_jobs.md §1.1). Off: no Stripe call ever, no billing page.
BILLING_ENABLED = env.bool("BILLING_ENABLED", default=False)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SIGNING_SECRET = env.str("STRIPE_WEBHOOK_SIGNING_SECRET", default="")
STRIPE_DEFAULT_PRICE_ID = env.str("STRIPE_DEFAULT_PRICE_ID", default="")
# A local stand-in for Stripe in development and tests (never in production).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# 429s are retried (§1.3): up to 3 times, base·2^n (+ up to 10 % jitter) capped at the maximum.
STRIPE_MAX_RETRIES = env.int("STRIPE_MAX_RETRIES", default=3)
STRIPE_RETRY_BASE_DELAY_MS = env.int("STRIPE_RETRY_BASE_DELAY_MS", default=1000)
STRIPE_RETRY_MAX_DELAY_MS = env.int("STRIPE_RETRY_MAX_DELAY_MS", default=10000)
# Directory sync (WorkOS). Empty keys mean the integration is off.
WORKOS_API_KEY = env.str("WORKOS_API_KEY", default="")
WORKOS_CLIENT_ID = env.str("WORKOS_CLIENT_ID", default="")
WORKOS_BASE_URL = env.str("WORKOS_BASE_URL", default="https://api.workos.com/")
# Directory sync: Google Workspace and Microsoft Entra (billing_sync_jobs.md §2.8, §2.9, §5.2,
# §5.3); a local fake in tests. Every request of the directory adapters has these (connect, read)
# timeouts, in seconds.
GOOGLE_ADMIN_API_BASE = env.str("GOOGLE_ADMIN_API_BASE", default="https://admin.googleapis.com")
GOOGLE_TOKEN_ENDPOINT = env.str(
    "GOOGLE_TOKEN_ENDPOINT", default="https://oauth2.googleapis.com/token"
)
MS_GRAPH_API_BASE = env.str("MS_GRAPH_API_BASE", default="https://graph.microsoft.com")
DIRECTORY_SYNC_HTTP_TIMEOUT = (
    env.float("DIRECTORY_SYNC_CONNECT_TIMEOUT", default=10.0),
    env.float("DIRECTORY_SYNC_READ_TIMEOUT", default=60.0),
)
# Per request: seconds before giving up, and the SDK's retries of 429/5xx/transport errors.
WORKOS_REQUEST_TIMEOUT = env.int("WORKOS_REQUEST_TIMEOUT", default=30)
WORKOS_MAX_RETRIES = env.int("WORKOS_MAX_RETRIES", default=3)
# Okta directory sync (billing_sync_jobs.md §2.10): the original sleeps 1 s before every Okta
# API request (crude rate limiting, §7 quirk 15); 0 turns it off (tests). Timeout per request.
OKTA_REQUEST_DELAY = env.float("OKTA_REQUEST_DELAY", default=0.0 if TESTING else 1.0)
OKTA_REQUEST_TIMEOUT = env.float("OKTA_REQUEST_TIMEOUT", default=30.0)

# Identity provider adapters offered for creation (domain.md §2.19, portal.md §4.13.2);
# `userpass` only when listed explicitly.
AUTH_PROVIDER_ADAPTERS = env.list(
    "AUTH_PROVIDER_ADAPTERS",
    default=[
        "email",
        "openid_connect",
        "google_workspace",
        "microsoft_entra",
        "okta",
        "jumpcloud",
        "mock",
    ],
)
# OpenID Connect discovery over plain http, for an IdP on a loopback address only (development).
OIDC_ALLOW_HTTP_LOOPBACK = env.bool("OIDC_ALLOW_HTTP_LOOPBACK", default=False)

# Global feature switches (FEATURE_<NAME>=true|false). An account feature is only on when both
# the account has it and the global switch allows it (domain.md §2.17).
FEATURES = {
    # FEATURE_<NAME>_ENABLED as in the original's deployment (FEATURE_<NAME> also accepted).
    name: env.bool(
        f"FEATURE_{name.upper()}_ENABLED", default=env.bool(f"FEATURE_{name.upper()}", default=True)
    )
    for name in ("flow_activities", *ACCOUNT_FEATURES)
}
FEATURE_SIGN_UP = env.bool(
    "FEATURE_SIGN_UP_ENABLED", default=env.bool("FEATURE_SIGN_UP", default=True)
)
# Sign-up allow-list: comma-separated email domains that may sign up; empty = any (§3.14).
SIGN_UP_EMAIL_DOMAINS = [
    d.strip().lower() for d in env.list("SIGN_UP_EMAIL_DOMAINS", default=[]) if d.strip()
]


def _routine_task_logs(record: logging.LogRecord) -> bool:
    """Log filter: the beat schedule's ticks are DEBUG, not INFO.

    Beat's "Sending due task", the worker's "received" / "succeeded" lines of the periodic tasks
    and the heartbeat's own line would otherwise fill the log every 10 s; their failures and
    every other task still log at their level. LOG_LEVEL=DEBUG (celery `-l debug`) shows them.
    """
    if record.levelno != logging.INFO:
        return True
    if record.name == "celery.beat":
        routine = str(record.msg).startswith("Scheduler: Sending due task")
    elif record.name == "firezone.tasks":
        routine = str(record.msg).startswith("heartbeat at")
    else:  # celery.app.trace, celery.worker.strategy: one dict argument with the task's name
        from celery import current_app

        name = record.args.get("name") if isinstance(record.args, dict) else None
        routine = name in {e["task"] for e in current_app.conf.beat_schedule.values()}
    if not routine:
        return True
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"routine_tasks": {"()": lambda: _routine_task_logs}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDK logs every request at INFO; billing.stripe logs the failures.
        "stripe": {"level": "WARNING"},
        # Django's default config gives `django` a console handler of its own (with DEBUG): every
        # warning would be printed twice, once bare and once through the root handler.
        "django": {"handlers": []},
        **{
            name: {"filters": ["routine_tasks"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
        },
        "firezone.tasks": {"filters": ["routine_tasks"]},
    },
}

TEST_RUNNER = "firezone.test_runner.PytestRunner"

# The REST API (portal.md §5, firezone/api/): bearer API-client tokens, JSON only, the §5.1
# error bodies, the per-account rate limit, for every API view alike.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["firezone.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["firezone.api.authentication.HasSubject"],
    "DEFAULT_THROTTLE_CLASSES": ["firezone.api.ratelimit.AccountRateLimit"],
    # NUL bytes and lone surrogates in a body: 400 like malformed JSON (firezone/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["firezone.api.parsers.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "firezone.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Firezone API",
    "DESCRIPTION": "Manage a Firezone account: resources, policies, sites, actors and more.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The documents themselves need no token and cost no rate-limit tokens.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI's JS/CSS from drf-spectacular-sidecar, served by WhiteNoise (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
