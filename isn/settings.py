"""Django settings for ISN, read from the environment.

``ISN_ENV`` is ``development`` (the default: SQLite and a file-system Celery broker under ``ISN_DATA_DIR``, secrets
generated into that folder) or ``production`` (every secret must be given; nothing falls back).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dj_database_url

from isn.crypto import decode_key
from isn.env import ConfigError, env_bool, env_choice, env_int, env_list, env_optional, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

ISN_ENV = env_choice("ISN_ENV", "development", ("development", "production"))
PRODUCTION = ISN_ENV == "production"
DEBUG = env_bool("ISN_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ConfigError("ISN_DEBUG must not be true in production")

DATA_DIR = Path(env_str("ISN_DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _development_secret(file_name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(64)) -> str:
    """A random secret kept in the data folder (mode 0600), made on first use; development only."""
    path = DATA_DIR / file_name
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(make())
    return path.read_text(encoding="utf-8").strip()


# --- secrets and hosts -------------------------------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = env_str("ISN_SECRET_KEY")
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ConfigError("ISN_SECRET_KEY must be at least 50 random characters")
    ALLOWED_HOSTS = env_list("ISN_ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ConfigError("ISN_ALLOWED_HOSTS is required in production (comma-separated host names)")
else:
    SECRET_KEY = env_optional("ISN_SECRET_KEY") or _development_secret("secret_key")
    ALLOWED_HOSTS = env_list("ISN_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

CSRF_TRUSTED_ORIGINS = env_list("ISN_CSRF_TRUSTED_ORIGINS", [])

# The master key wraps each country's key-encryption keys, the match key and the webhook secrets (isn.masterkey). It
# is versioned: each wrapped value names the version that wrapped it, and `manage.py rotate_master_key` moves them all
# to a new one. A version lives either in a PKCS#11 module (ISN_PKCS11_*: the key never leaves the module) or here as
# 32 bytes from the environment or a file (development and small deployments). ISN_MASTER_KEY_NEXT is the next
# environment key during an environment-to-environment rotation. Development keeps a generated key in the data folder;
# production must be given a key or a module.
ISN_PKCS11_MODULE = env_optional("ISN_PKCS11_MODULE")
if ISN_PKCS11_MODULE:
    if not Path(ISN_PKCS11_MODULE).is_file():
        raise ConfigError(f"ISN_PKCS11_MODULE names {ISN_PKCS11_MODULE!r}, which is not a file")
    ISN_PKCS11_TOKEN_LABEL = env_str("ISN_PKCS11_TOKEN_LABEL")
    ISN_PKCS11_PIN = env_str("ISN_PKCS11_PIN")
    # Each master key version is the token's AES key labelled "<ISN_PKCS11_KEY_LABEL>.v<version>".
    ISN_PKCS11_KEY_LABEL = env_str("ISN_PKCS11_KEY_LABEL", "isn-master")
else:
    ISN_PKCS11_TOKEN_LABEL = ISN_PKCS11_PIN = None
    ISN_PKCS11_KEY_LABEL = "isn-master"


def _master_key(name: str, text: str | None) -> bytes | None:
    try:
        return None if text is None else decode_key(text)
    except ValueError:
        raise ConfigError(f"{name} must be 32 random bytes, base64- or hex-encoded") from None


if ISN_PKCS11_MODULE:
    ISN_MASTER_KEY = _master_key("ISN_MASTER_KEY", env_optional("ISN_MASTER_KEY"))
elif PRODUCTION:
    ISN_MASTER_KEY = _master_key("ISN_MASTER_KEY", env_str("ISN_MASTER_KEY"))
else:
    ISN_MASTER_KEY = _master_key(
        "ISN_MASTER_KEY",
        env_optional("ISN_MASTER_KEY")
        or _development_secret("master_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()),
    )
ISN_MASTER_KEY_NEXT = _master_key("ISN_MASTER_KEY_NEXT", env_optional("ISN_MASTER_KEY_NEXT"))

# --- applications ------------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "isn",
    "agencies",
    "audit",
    "messaging",
]

MIDDLEWARE = [
    # First, so that it times every request, whatever answers it (isn.metrics: by URL pattern name, never the path).
    "isn.metrics.RequestMetricsMiddleware",
    "isn.middleware.RequestIdMiddleware",
    # RateLimit-Policy and RateLimit on every API answer (isn.ratelimit), whatever answered it.
    "isn.middleware.RateLimitHeadersMiddleware",
    # Errors under /api/ are problem details even when Django answers them (unknown route, server error).
    "isn.middleware.ApiProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "isn.middleware.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "isn.sessions.SessionLimitsMiddleware",
    "agencies.middleware.MembershipSessionMiddleware",
    "isn.twofactor.RequireSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "isn.urls"
WSGI_APPLICATION = "isn.wsgi.application"
ASGI_APPLICATION = "isn.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "audit.context_processors.workspace",
            ],
        },
    },
]

# --- database ----------------------------------------------------------------------------------------------------
_database_url = env_optional("DATABASE_URL")
if PRODUCTION and not _database_url:
    raise ConfigError("DATABASE_URL is required in production (postgres://user:password@host:5432/name)")
if _database_url:
    try:
        _database = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except ValueError:
        raise ConfigError(
            "DATABASE_URL is not a database URL (expected postgres://user:password@host:5432/name)"
        ) from None
    if PRODUCTION and _database["ENGINE"] != "django.db.backends.postgresql":
        raise ConfigError("DATABASE_URL must point to PostgreSQL in production")
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "isn.sqlite3")}
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The portal, the worker's processes and beat share one file. WAL lets readers go on while one writes. Every
    # transaction takes the write lock at BEGIN (IMMEDIATE): one that read first and wrote later would have to
    # upgrade its lock midway, which SQLite refuses at once with "database is locked" however long the timeout; a
    # BEGIN waits instead, up to ISN_SQLITE_BUSY_SECONDS. This also keeps the audit sealer to one at a time
    # (audit.chain). synchronous=NORMAL is safe under WAL (a power cut may lose the last commits, never corrupt
    # the file) and spares an fsync per commit.
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("ISN_SQLITE_BUSY_SECONDS", 30, minimum=1),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **_database.get("OPTIONS", {}),
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- authentication ----------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id for every new or changed password; PBKDF2 stays so older hashes still verify and are upgraded at sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"
# A session is ended after this long without a request, and this long after sign-in whatever happens (isn.sessions).
ISN_SESSION_IDLE_SECONDS = env_int("ISN_SESSION_IDLE_SECONDS", 30 * 60, minimum=60)
ISN_SESSION_ABSOLUTE_SECONDS = env_int("ISN_SESSION_MAX_AGE_SECONDS", 12 * 3600, minimum=60)
# Two factors for every person (isn.twofactor): the issuer shown in authenticator apps, and how long TOTP codes
# may drift. django-otp refuses a code at or before the last one used, so a code cannot be replayed.
OTP_TOTP_ISSUER = env_str("ISN_OTP_ISSUER", "ISN")
OTP_TOTP_TOLERANCE = 1
ISN_RECOVERY_CODES = 10
# A first second factor needs a one-time code from the person's agency admin (isn.enrolment): production's default.
# Development leaves it off, so the demo's people enrol at their first sign-in with their password alone.
ISN_ENROLMENT_CODE_REQUIRED = env_bool("ISN_ENROLMENT_CODE_REQUIRED", default=PRODUCTION)
ISN_ENROLMENT_CODE_HOURS = env_int("ISN_ENROLMENT_CODE_HOURS", 72, minimum=1)
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous callers get nothing

# --- internationalisation: the seven languages of the network ----------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("km", "ភាសាខ្មែរ"),
    ("zh-hans", "简体中文"),
    ("lo", "ພາສາລາວ"),
    ("my", "မြန်မာဘာသာ"),
    ("th", "ภาษาไทย"),
    ("vi", "Tiếng Việt"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django knows no Lao: its name for get_language_info, and date and number formats for it (and for Burmese, and
# unambiguous ones for English) in isn/formats/.
import django.conf.locale  # noqa: E402 - with the setting it serves

django.conf.locale.LANG_INFO.setdefault("lo", {"bidi": False, "code": "lo", "name": "Lao", "name_local": "ພາສາລາວ"})
FORMAT_MODULE_PATH = ["isn.formats"]
# A member's saved portal language (agencies.Membership.language) wins over the browser's: applied once the user is
# known, right after authentication.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "agencies.middleware.MemberLanguageMiddleware",
)
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION

# --- static files ------------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
# The image collects them beside the code (ISN_STATIC_ROOT=/app/static), so the data folder can be a volume that an
# upgrade does not leave serving the old ones.
STATIC_ROOT = Path(env_str("ISN_STATIC_ROOT", str(DATA_DIR / "static"))).resolve()
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it; runserver serves from the apps
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- security headers and cookies --------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = ISN_SESSION_ABSOLUTE_SECONDS
CSRF_COOKIE_HTTPONLY = True
# Strict Content-Security-Policy (django-csp 4): no inline script or style anywhere, nothing from another origin,
# no framing, forms post only here. Pages must keep scripts and styles in static files (tests/security checks).
from csp.constants import NONE as _CSP_NONE  # noqa: E402 - with the setting it serves
from csp.constants import SELF as _CSP_SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_CSP_SELF],
        "script-src": [_CSP_SELF],
        "style-src": [_CSP_SELF],
        "img-src": [_CSP_SELF, "data:"],
        "object-src": [_CSP_NONE],
        "base-uri": [_CSP_NONE],
        "frame-ancestors": [_CSP_NONE],
        "form-action": [_CSP_SELF],
    }
}
# Browser features ISN never uses, switched off for every page (isn.middleware.PermissionsPolicyMiddleware).
ISN_PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("ISN_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the load balancer's health probe speaks plain HTTP inside the host
    SECURE_HSTS_SECONDS = env_int("ISN_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host-: the browser keeps these cookies only when Secure, for this exact host and path /, so no subdomain or
    # plain-HTTP page can set or overwrite them.
    SESSION_COOKIE_NAME = "__Host-isn_session"
    CSRF_COOKIE_NAME = "__Host-isn_csrf"
    # Trust X-Forwarded-Proto only when the operator says a TLS-terminating proxy sits in front.
    if env_bool("ISN_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API ----------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "agencies.authentication.ApiKeyAuthentication",
        "isn.authentication.VerifiedSessionAuthentication",
        # Last: throttles anonymous callers per address (DRF would refuse them before any throttle ran).
        "isn.throttling.AnonymousThrottleGate",
    ],
    # Per API key and per signed-in person (agencies.throttling); counted in the cache.
    "DEFAULT_THROTTLE_CLASSES": ["agencies.throttling.ApiKeyRateThrottle", "agencies.throttling.PersonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env_str("ISN_API_RATE_PER_KEY", "1200/minute"),
        "person": env_str("ISN_API_RATE_PER_PERSON", "600/minute"),
        "anonymous": env_str("ISN_API_RATE_PER_ADDRESS", "60/minute"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["agencies.permissions.ApiKeyScopes", "agencies.permissions.IsNetworkMember"],
    "DEFAULT_PAGINATION_CLASS": "isn.api.DefaultPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "isn.schema.ApiSchema",
    "EXCEPTION_HANDLER": "isn.api.exception_handler",
    # JSON only, nested within reason (isn.input); the one upload (an item's attachment) takes multipart where it is
    # declared.
    "DEFAULT_PARSER_CLASSES": ["isn.input.JSONParser"],
    # Accept: application/problem+json is answered like application/json.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "isn.negotiation.ContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ISN: Mekong Information Sharing Network API",
    "DESCRIPTION": (
        "REST API for member agencies' systems. Every call is scoped to the caller's agency and country.\n\n"
        "Every answer carries RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11): the caller's "
        "quota and what is left of it. A method a path does not list is answered 405 with an Allow header "
        "(components/responses/MethodNotAllowed); errors are problem details (RFC 9457)."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The credentials a client sends; the anonymous throttle (isn.throttling) is not one.
    "AUTHENTICATION_WHITELIST": [
        "agencies.authentication.ApiKeyAuthentication",
        "isn.authentication.VerifiedSessionAuthentication",
    ],
    # The schema and its documentation (/api/schema/, /api/docs/) hold no data, only what the API takes and answers:
    # anyone may read them, so a signed-out visitor sees the docs. Each call is still throttled (per address).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # No validator badge: Swagger UI would send the schema's address to a validator elsewhere, which the CSP blocks.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Swagger UI's files from drf-spectacular-sidecar, served by ISN itself (WhiteNoise): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The calls ISN makes to agencies' webhooks (OpenAPI 3.1 ``webhooks``).
    "WEBHOOKS": [
        "messaging.api.webhook_calls.ITEM_WEBHOOK",
        "messaging.api.webhook_calls.CONSENT_WEBHOOK",
        "messaging.api.webhook_calls.RFI_WEBHOOK",
        "messaging.api.webhook_calls.HIT_WEBHOOK",
    ],
}

# --- Celery ------------------------------------------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
if PRODUCTION and not REDIS_URL:
    raise ConfigError("REDIS_URL is required in production (redis://host:6379/0)")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")

CELERY_QUEUE_DIR = DATA_DIR / "celery"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Above any countdown or eta ISN uses, so a delayed task is never handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 4 * 3600}
else:
    # No server needed: messages are files in the data folder, read by a real worker process.
    for _sub in ("queue", "processed", "control"):
        (CELERY_QUEUE_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after every task unless this is set, so each
# task paid for a new PostgreSQL backend with cold caches. isn.celery instead closes connections as Django does
# around a request: past CONN_MAX_AGE, after an error, or when the health check fails; this bounds reuse as well.
CELERY_DB_REUSE_MAX = 500
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "isn.tasks.worker_heartbeat", "schedule": 30.0},
}
ISN_WORKER_STALE_AFTER_SECONDS = 120
# A worker (and beat) waits for a broker that went away as long as it takes, trying again every few seconds
# (isn.celery.Consumer), rather than exiting after Celery's hundred attempts.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "isn.celery:Consumer"
# GET /metrics (isn.metrics) answers only "Authorization: Bearer <this>"; unset, the endpoint is off (404).
ISN_METRICS_TOKEN = env_optional("ISN_METRICS_TOKEN")
if ISN_METRICS_TOKEN is not None and len(ISN_METRICS_TOKEN) < 32:
    raise ConfigError("ISN_METRICS_TOKEN must be at least 32 characters (openssl rand -hex 32)")

# --- cache, lockout and client addresses (security) --------------------------------------------------------------
# The cache holds throttle counters only (never content): Redis when there is one, so every web process counts
# together; else this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("ISN_CACHE_KEY_PREFIX", "isn-cache"),
            # A request never waits long on a Redis that is away: the throttles then count per process
            # (isn.throttling.ThrottleCache) until it answers again.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "isn"}}
# Addresses of reverse proxies whose X-Forwarded-For is believed (isn.net.client_ip). Empty: nobody's is, and the
# caller's address is the connection's own, so a forged header neither dodges a lockout nor hides an address.
ISN_TRUSTED_PROXIES = env_list("ISN_TRUSTED_PROXIES", [])
# django-axes: five failed sign-ins for a username lock it for fifteen minutes, from wherever they come.
AXES_FAILURE_LIMIT = env_int("ISN_LOCKOUT_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ISN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks to lock addresses too. Not here: a Border Liaison Office's officers share one address behind its
# NAT, and one mistyping officer must not lock out the office. Addresses are throttled and audited instead.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_CLIENT_IP_CALLABLE = "isn.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLE_ADMIN = False  # attempts are in the audit trail; the admin stays read-only for its own records
AXES_VERBOSE = False

# --- e-mail ------------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "ISN_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("ISN_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("ISN_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("ISN_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("ISN_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("ISN_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("ISN_EMAIL_FROM", "ISN <isn-noreply@localhost>")

# --- logging: one line per event, with the request id (and the task in a worker); never request bodies ----------
# "line" for people reading a terminal; "json" (isn.logformat) for a log shipper: one object a line with time, level,
# logger, message, request_id, and task_id and task in a worker. The Dockerfile sets json.
ISN_LOG_FORMAT = env_choice("ISN_LOG_FORMAT", "line", ("line", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "isn.middleware.RequestIdLogFilter"},
        "task": {"()": "isn.logformat.TaskLogFilter"},
    },
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "isn.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": ISN_LOG_FORMAT,
            "filters": ["request_id", "task"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("ISN_LOG_LEVEL", "INFO")},
    # django-axes logs every sign-in at INFO; the audit trail already records them.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- audit trail: chain sealing, signed checkpoints, retention ---------------------------------------------------
# The Ed25519 key that signs checkpoints: base64 of the raw 32-byte private key, or PEM (PKCS#8). Development
# keeps a generated one in the data folder (a raw Ed25519 private key is 32 random bytes); production must be
# given one, and members keep its public key with the checkpoints they export.
if PRODUCTION:
    ISN_AUDIT_SIGNING_KEY = env_str("ISN_AUDIT_SIGNING_KEY")
else:
    ISN_AUDIT_SIGNING_KEY = env_optional("ISN_AUDIT_SIGNING_KEY") or _development_secret(
        "audit_signing_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
    )
if not ISN_AUDIT_SIGNING_KEY.startswith("-----BEGIN"):
    try:
        _signing_key_length = len(base64.b64decode(ISN_AUDIT_SIGNING_KEY, validate=True))
    except ValueError:
        _signing_key_length = 0
    if _signing_key_length != 32:
        raise ConfigError("ISN_AUDIT_SIGNING_KEY must be base64 of a raw 32-byte Ed25519 private key, or PEM")
# Hex public keys of earlier signing keys whose checkpoints audit_verify still accepts after a key rotation.
ISN_AUDIT_TRUSTED_PUBLIC_KEYS = env_list("ISN_AUDIT_TRUSTED_PUBLIC_KEYS", [])
# How long an id that never committed may hold up sealing before it is recorded as a gap.
ISN_AUDIT_GAP_GRACE_SECONDS = env_int("ISN_AUDIT_GAP_GRACE_SECONDS", 60, minimum=0)
ISN_AUDIT_CHECKPOINT_SECONDS = env_int("ISN_AUDIT_CHECKPOINT_SECONDS", 3600, minimum=60)
# Events are kept at least a year; audit_archive refuses anything younger than this.
ISN_AUDIT_RETENTION_DAYS = env_int("ISN_AUDIT_RETENTION_DAYS", 400, minimum=365)
ISN_AUDIT_ARCHIVE_DIR = DATA_DIR / "audit-archive"
# The revocation ledger (audit.ledger): every withdrawal, expiry, narrowing and key retirement, appended outside the
# database so that a restore re-applies what was shredded after its backup. Keep it beside the backups, not in them,
# and ship it to another host as it grows (README, "Back up and restore").
ISN_REVOCATION_LEDGER = Path(env_str("ISN_REVOCATION_LEDGER", str(DATA_DIR / "revocations.log"))).resolve()
# Where backup and restore find pg_dump and pg_restore; by default the server's major version under
# /usr/lib/postgresql, then PATH.
ISN_PG_BIN_DIR = env_optional("ISN_PG_BIN_DIR")
CELERY_BEAT_SCHEDULE |= {
    # The fallback for the sealing queued on commit (lost if the broker was down): it bounds the sealing delay.
    "audit-seal": {"task": "audit.tasks.seal_events", "schedule": 5.0},
    "audit-checkpoint": {"task": "audit.tasks.create_checkpoint", "schedule": float(ISN_AUDIT_CHECKPOINT_SECONDS)},
    # The fallback for ledger lines whose append failed after commit.
    "audit-reconcile-ledger": {"task": "audit.tasks.reconcile_ledger", "schedule": 60.0},
}

# --- access reviews (point 19 of issue 14; owned by the agencies app) ----------------------------------------------
from celery.schedules import crontab as _review_crontab  # noqa: E402 - kept inside this app's section

# An agency's admins confirm each of its members at least this often (agencies.reviews); a membership left
# unconfirmed longer is suspended by the daily sweep, and its person loses sessions, keys and subscriptions at once.
ISN_ACCESS_REVIEW_DAYS = env_int("ISN_ACCESS_REVIEW_DAYS", 90, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    "agencies-lapse-access-reviews": {
        "task": "agencies.tasks.lapse_access_reviews",
        "schedule": _review_crontab(minute=5, hour=0),
    },
}
# --- end of access reviews ----------------------------------------------------------------------------------------

# --- messaging: items, attachments, key rotation (owned by the messaging app) -------------------------------------
from celery.schedules import crontab as _crontab  # noqa: E402 - kept inside this app's section

ISN_ATTACHMENT_MAX_BYTES = env_int("ISN_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
ISN_ATTACHMENTS_PER_ITEM = env_int("ISN_ATTACHMENTS_PER_ITEM", 20, minimum=1)
# How far ahead a review date may be set; an item is withdrawn (expired) and its keys shredded after it.
ISN_ITEM_MAX_REVIEW_DAYS = env_int("ISN_ITEM_MAX_REVIEW_DAYS", 730, minimum=1)
ISN_KEY_REWRAP_BATCH = env_int("ISN_KEY_REWRAP_BATCH", 500, minimum=1)
# Uploads are held in memory only: a plaintext attachment must never land in a temporary file on disk. A request
# larger than this is refused before it is read (the limit plus room for the multipart envelope).
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = ISN_ATTACHMENT_MAX_BYTES + 64 * 1024
# Daily just after midnight UTC: an interval would restart its count whenever beat restarts.
CELERY_BEAT_SCHEDULE |= {
    "messaging-expire-items": {"task": "messaging.tasks.expire_items", "schedule": _crontab(minute=15, hour=0)},
    "messaging-purge-idempotency-keys": {
        "task": "messaging.tasks.purge_idempotency_keys",
        "schedule": _crontab(minute=40),
    },
    "messaging-purge-changes": {"task": "messaging.tasks.purge_changes", "schedule": _crontab(minute=25, hour=1)},
}
# The change feed: a cursor is good this long; changes are kept longer, so a cursor on its last good day still
# finds every change after it (messaging/delivery/feed.py).
ISN_FEED_CURSOR_DAYS = env_int("ISN_FEED_CURSOR_DAYS", 30, minimum=1)
ISN_FEED_RETENTION_DAYS = env_int("ISN_FEED_RETENTION_DAYS", ISN_FEED_CURSOR_DAYS + 5, minimum=ISN_FEED_CURSOR_DAYS + 1)
# --- end of messaging --------------------------------------------------------------------------------------------

# --- hit/no-hit discovery (issue 15; owned by the messaging app) --------------------------------------------------
# Identifiers checked per UTC day, counted in the database (messaging/matching/discovery.py): per person, per API key
# and per agency. A post's own check of its entities counts too. Over any of them a check answers 429.
ISN_MATCH_DAILY_PER_PERSON = env_int("ISN_MATCH_DAILY_PER_PERSON", 500, minimum=1)
ISN_MATCH_DAILY_PER_KEY = env_int("ISN_MATCH_DAILY_PER_KEY", 2000, minimum=1)
ISN_MATCH_DAILY_PER_AGENCY = env_int("ISN_MATCH_DAILY_PER_AGENCY", 5000, minimum=1)
# --- end of hit/no-hit discovery ----------------------------------------------------------------------------------

# --- routing and notifications (issue 5; owned by the messaging app) ----------------------------------------------
# Links in e-mails and webhooks point here; nothing else of an item leaves ISN in a notification.
ISN_PORTAL_URL = env_str("ISN_PORTAL_URL", "http://127.0.0.1:8000")
# The outbox relay (beat) publishes rows the request could not, and republishes rows published this long ago but
# never processed (a message lost with a broker restart or a killed worker). Consumers are idempotent.
ISN_OUTBOX_RELAY_SECONDS = env_int("ISN_OUTBOX_RELAY_SECONDS", 5, minimum=1)
ISN_OUTBOX_REDELIVER_AFTER_SECONDS = env_int("ISN_OUTBOX_REDELIVER_AFTER_SECONDS", 600, minimum=1)
ISN_OUTBOX_BATCH = env_int("ISN_OUTBOX_BATCH", 500, minimum=1)
ISN_OUTBOX_KEEP_DAYS = env_int("ISN_OUTBOX_KEEP_DAYS", 7, minimum=1)
# FLASH: unacknowledged this long after routing, escalate to supervisors and the duty desk; as long again, to the
# national focal points. The sweep runs every ISN_FLASH_CHECK_SECONDS.
ISN_FLASH_ESCALATE_AFTER_SECONDS = env_int("ISN_FLASH_ESCALATE_AFTER_SECONDS", 900, minimum=1)
ISN_FLASH_CHECK_SECONDS = env_int("ISN_FLASH_CHECK_SECONDS", 30, minimum=1)
# An e-mail claimed by a worker that died before marking it sent is sent again after this lease.
ISN_EMAIL_CLAIM_LEASE_SECONDS = env_int("ISN_EMAIL_CLAIM_LEASE_SECONDS", 600, minimum=60)
ISN_WEBHOOK_TIMEOUT_SECONDS = env_int("ISN_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
ISN_WEBHOOK_MAX_ATTEMPTS = env_int("ISN_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
ISN_WEBHOOK_BACKOFF_SECONDS = env_int("ISN_WEBHOOK_BACKOFF_SECONDS", 10, minimum=1)
ISN_WEBHOOK_ALLOW_HTTP = env_bool("ISN_WEBHOOK_ALLOW_HTTP", not PRODUCTION)
if PRODUCTION and ISN_WEBHOOK_ALLOW_HTTP:
    raise ConfigError("ISN_WEBHOOK_ALLOW_HTTP must not be true in production: webhook bodies travel over TLS")
# Off: a webhook's host must resolve only to public unicast addresses, checked when set and at every call (no
# loopback, private, link-local, metadata... address: messaging.delivery.webhooks). On in development and tests, whose
# receivers listen on 127.0.0.1; in production only for a receiver deliberately reached over a private network.
ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("ISN_WEBHOOK_ALLOW_PRIVATE_TARGETS", not PRODUCTION)
# Fault injection for tests only: routing sleeps this long per new delivery, inside its transaction.
ISN_ROUTING_PAUSE_MS = env_int("ISN_ROUTING_PAUSE_MS", 0, minimum=0)
if PRODUCTION and ISN_ROUTING_PAUSE_MS:
    raise ConfigError("ISN_ROUTING_PAUSE_MS is a test setting; it must be 0 in production")
# A retry's countdown must stay below the broker's visibility timeout, or Redis would hand the message out twice.
_longest_webhook_countdown = min(ISN_WEBHOOK_BACKOFF_SECONDS * 2 ** max(ISN_WEBHOOK_MAX_ATTEMPTS - 2, 0), 3600)
if REDIS_URL:
    _visibility_timeout = CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    if isinstance(_visibility_timeout, int) and _longest_webhook_countdown >= _visibility_timeout:
        raise ConfigError("ISN_WEBHOOK_BACKOFF_SECONDS x 2^(attempts-2) must stay below the visibility timeout")
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        # Publishing from a request must fail fast when Redis is unreachable, not hang on a dead connection.
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": 10,
        # A worker serving "urgent,default" always looks at urgent first (queue order from --queues).
        "queue_order_strategy": "priority",
    }
CELERY_BEAT_SCHEDULE |= {
    # On the urgent queue: leftover FLASH work must not wait behind a backlog of routine routing.
    "messaging-relay-outbox": {
        "task": "messaging.tasks.relay_outbox",
        "schedule": float(ISN_OUTBOX_RELAY_SECONDS),
        "options": {"queue": "urgent", "expires": float(ISN_OUTBOX_RELAY_SECONDS) * 2},
    },
    "messaging-escalate-flash": {
        "task": "messaging.tasks.escalate_flash",
        "schedule": float(ISN_FLASH_CHECK_SECONDS),
        "options": {"queue": "urgent", "expires": float(ISN_FLASH_CHECK_SECONDS) * 2},
    },
}
# Rows of the urgent queue (FLASH work) are republished much sooner: a message published just before a broker restart
# goes out again within this (plus the relay's interval) of the broker coming back, not after ten minutes.
ISN_OUTBOX_REDELIVER_URGENT_AFTER_SECONDS = env_int("ISN_OUTBOX_REDELIVER_URGENT_AFTER_SECONDS", 15, minimum=1)
# --- end of routing and notifications -----------------------------------------------------------------------------

# --- requests for information (issue 6; owned by the messaging app) ------------------------------------------------
# When the asker names no due time, the asked side has this long to answer, by priority; a due time the asker names
# may be at most ISN_RFI_MAX_DUE_DAYS ahead.
ISN_RFI_DUE_SECONDS = {
    "flash": env_int("ISN_RFI_DUE_FLASH_SECONDS", 2 * 3600, minimum=60),
    "priority": env_int("ISN_RFI_DUE_PRIORITY_SECONDS", 24 * 3600, minimum=60),
    "routine": env_int("ISN_RFI_DUE_ROUTINE_SECONDS", 7 * 24 * 3600, minimum=60),
}
ISN_RFI_MAX_DUE_DAYS = env_int("ISN_RFI_MAX_DUE_DAYS", 90, minimum=1)
# An open request past its due time reminds the asked side; this long after its due time it escalates to the asked
# agency's supervisors and its country's national focal points (0: as long again as the priority's answer time).
ISN_RFI_ESCALATE_AFTER_SECONDS = env_int("ISN_RFI_ESCALATE_AFTER_SECONDS", 0, minimum=0)
ISN_RFI_CHECK_SECONDS = env_int("ISN_RFI_CHECK_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    # On the urgent queue, like the FLASH sweep: a FLASH request has two hours, not a backlog's worth.
    "messaging-escalate-rfis": {
        "task": "messaging.tasks.escalate_rfis",
        "schedule": float(ISN_RFI_CHECK_SECONDS),
        "options": {"queue": "urgent", "expires": float(ISN_RFI_CHECK_SECONDS) * 2},
    },
}
# --- end of requests for information ------------------------------------------------------------------------------

# --- forwards and consent requests (issue 6; owned by the messaging app) ------------------------------------------
# A consent request waits this long for the originating agency's decision (FLASH items: minutes, not hours); at its
# due time its supervisors are reminded, and as long again later the originator country's national focal points.
ISN_CONSENT_DUE_HOURS = env_int("ISN_CONSENT_DUE_HOURS", 24, minimum=1)
ISN_CONSENT_FLASH_DUE_MINUTES = env_int("ISN_CONSENT_FLASH_DUE_MINUTES", 60, minimum=1)
ISN_CONSENT_CHECK_SECONDS = env_int("ISN_CONSENT_CHECK_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    "messaging-escalate-consents": {
        "task": "messaging.tasks.escalate_consents",
        "schedule": float(ISN_CONSENT_CHECK_SECONDS),
        "options": {"queue": "urgent", "expires": float(ISN_CONSENT_CHECK_SECONDS) * 2},
    },
}
# One schema name per choice set: a consent request's status is not an item's, and a target country is a country code.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "ConsentStatusEnum": "messaging.models.ConsentStatus",
        "CountryCodeEnum": "agencies.models.CountryCode",
        "EntityTypeEnum": "messaging.models.EntityType",
        "ItemStatusEnum": "messaging.models.ItemStatus",
        "ProposalKindEnum": "agencies.models.ProposalKind",
        "RfiStatusEnum": "messaging.models.RfiStatus",
    }
)
# --- end of forwards and consent requests -------------------------------------------------------------------------

# --- hit notices, digest and retention (issue 15; owned by the messaging app) -------------------------------------
# Hits (and the checks that made them) are kept this long, then deleted by a daily sweep that records the counts.
ISN_HIT_RETENTION_DAYS = env_int("ISN_HIT_RETENTION_DAYS", 365, minimum=1)
CELERY_BEAT_SCHEDULE |= {
    # 01:00 UTC is the start of the working day across the Mekong (08:00 in Bangkok, Hanoi, Phnom Penh, Vientiane).
    "messaging-hit-digest": {"task": "messaging.tasks.send_hit_digest", "schedule": _crontab(minute=0, hour=1)},
    "messaging-purge-hits": {"task": "messaging.tasks.purge_hits", "schedule": _crontab(minute=35, hour=1)},
}
# --- end of hit notices, digest and retention ---------------------------------------------------------------------
