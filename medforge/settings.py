"""MedForge settings: every knob read from the environment with django-environ.

Three profiles share this file (MEDFORGE_ENV): `local` (the run command: SQLite, an embedded
filesystem Celery broker, directory workspaces, GPUs declared here), `test` (the test command:
MariaDB, Redis) and `production` (compose: MariaDB, Redis, ZFS, NVML). Every setting is
documented in deploy/compose/.env.example.
"""
from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("MEDFORGE_ENV_FILE")
if _env_file:
    environ.Env.read_env(_env_file)

# pytest (>= 8.2) exports PYTEST_VERSION, so a bare `pytest` gets the test profile.
MEDFORGE_ENV = env("MEDFORGE_ENV", default="test" if os.environ.get("PYTEST_VERSION") else "local")
LOCAL = MEDFORGE_ENV == "local"
TESTING = MEDFORGE_ENV == "test"
PRODUCTION = MEDFORGE_ENV == "production"

VAR_DIR = Path(env("MEDFORGE_VAR_DIR", default=str(BASE_DIR / "var")))

# --- Core -----------------------------------------------------------------------------------
SECRET_KEY = env("SECRET_KEY", default="" if PRODUCTION else "insecure-dev-key-change-me-" + "x" * 24)
if PRODUCTION and not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set in production")
DEBUG = env.bool("DEBUG", default=LOCAL)
BUILD_VERSION = env("BUILD_VERSION", default="0.1.0")
BUILD_COMMIT = env("BUILD_COMMIT", default="")

# --- Hosts ----------------------------------------------------------------------------------
DOMAIN = env("DOMAIN", default="localhost")
MEDFORGE_BASE_DOMAIN = env("MEDFORGE_BASE_DOMAIN", default=f"medforge.{DOMAIN}")
BASE_DOMAIN = MEDFORGE_BASE_DOMAIN
# How users reach the platform (for links such as "Open IDE"): scheme and the edge's port.
PUBLIC_SCHEME = env("PUBLIC_SCHEME", default="https" if PRODUCTION else "http")
PUBLIC_PORT = env.int("PUBLIC_PORT", default=8000 if LOCAL else 0)  # 0 = the scheme's default
PLATFORM_HOSTS = [
    BASE_DOMAIN,
    f"external.{BASE_DOMAIN}",
    f"internal.{BASE_DOMAIN}",
    f"api.{BASE_DOMAIN}",
]
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=[BASE_DOMAIN, f".{BASE_DOMAIN}", "localhost", "127.0.0.1", "testserver"],
)
# Addresses whose X-Forwarded-For is believed (the edge proxy). CIDRs allowed.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1/32", "::1/128"])

# --- Apps -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "medforge.api",
    "medforge.accounts",
    "medforge.ops",
    "sessions_app",
    "competitions",
    "routing",
    "status",
    "web",
]

MIDDLEWARE = [
    # Forward auth (GET /api/v2/auth/session-proxy) is answered here, before anything else:
    # it is on the hot path of every IDE request and needs none of the middleware below.
    "routing.middleware.ForwardAuthMiddleware",
    "medforge.api.middleware.RequestIdMiddleware",
    "medforge.ops.middleware.MetricsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "medforge.api.middleware.OriginGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "medforge.api.middleware.ApiProblemMiddleware",
]

ROOT_URLCONF = "medforge.urls"
WSGI_APPLICATION = "medforge.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db = {
    "local": f"sqlite:///{VAR_DIR / 'medforge.sqlite3'}",
    "test": "mysql://root@127.0.0.1:3306/medforge",
}.get(MEDFORGE_ENV, "mysql://medforge@db:3306/medforge")
DATABASES = {"default": env.db("DATABASE_URL", default=_default_db)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE takes the
    # write lock at BEGIN so select_for_update-style sections serialize instead of deadlocking.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20,
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"charset": "utf8mb4", "isolation_level": "read committed"}
    )
    DATABASES["default"]["TEST"] = {
        "NAME": env("DB_TEST_NAME", default="test_medforge"),
        "CHARSET": "utf8mb4",
        "COLLATION": "utf8mb4_unicode_ci",
    }
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Redis, cache, Celery -------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="" if LOCAL else "redis://127.0.0.1:6379/0")
_cache_default = (
    f"filecache://{VAR_DIR / 'cache'}" if LOCAL
    else (REDIS_URL.replace("redis://", "rediscache://", 1) if REDIS_URL else "locmemcache://")
)
CACHES = {"default": env.cache("CACHE_URL", default=_cache_default)}
if CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
    CACHES["default"].setdefault("KEY_PREFIX", env("CACHE_KEY_PREFIX", default="mf"))
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

_broker_default = "filesystem://" if LOCAL else (REDIS_URL or "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_broker_default)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _q = VAR_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_q), "data_folder_out": str(_q),
        "processed_folder": str(VAR_DIR / "celery" / "processed"), "store_processed": False,
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"competitions.tasks.*": {"queue": "scoring"}}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every beat entry of the platform, in this one place, named for its cadence. Each expires when
# the next one is due: a pass queued behind a busy worker is worthless by then.
SESSION_POLL_INTERVAL_SECONDS = max(1, env.int("SESSION_POLL_INTERVAL_SECONDS", default=30))
CELERY_BEAT_SCHEDULE = {
    "sessions-reconcile-every-poll-interval": {
        "task": "sessions_app.tasks.reconcile",
        "schedule": float(SESSION_POLL_INTERVAL_SECONDS),
        "options": {"expires": float(SESSION_POLL_INTERVAL_SECONDS)},
    },
    "sessions-cull-idle-every-minute": {
        "task": "sessions_app.tasks.cull_idle",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "competitions-requeue-stale-scoring-every-minute": {
        "task": "competitions.tasks.requeue_stale",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}

# --- Auth, passwords, tokens ----------------------------------------------------------------
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
API_TOKEN_MAX_PER_USER = env.int("API_TOKEN_MAX_PER_USER", default=20)

# Cookies go to the base domain so every platform host (and session host) receives them.
SESSION_COOKIE_NAME = "mf_session"
SESSION_COOKIE_DOMAIN = env("SESSION_COOKIE_DOMAIN", default=BASE_DOMAIN)
SESSION_COOKIE_SECURE = PUBLIC_SCHEME == "https"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
CSRF_COOKIE_NAME = "mf_csrftoken"
CSRF_COOKIE_DOMAIN = SESSION_COOKIE_DOMAIN
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
_port = f":{PUBLIC_PORT}" if PUBLIC_PORT else ""
PUBLIC_BASE_URL = f"{PUBLIC_SCHEME}://{BASE_DOMAIN}{_port}"
CSRF_TRUSTED_ORIGINS = [f"{PUBLIC_SCHEME}://{h}{_port}" for h in PLATFORM_HOSTS] + [
    f"http://{h}:{p}" for h in PLATFORM_HOSTS for p in (8000,)
]

# --- Rate limits (shared through the cache) -------------------------------------------------
RATE_LIMIT_LOGIN = env("RATE_LIMIT_LOGIN", default="10/m")
RATE_LIMIT_SIGNUP = env("RATE_LIMIT_SIGNUP", default="10/m")
RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT = env("RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT", default="5/15m")

# --- DRF / OpenAPI --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "medforge.accounts.authentication.BearerTokenAuthentication",
        "medforge.accounts.authentication.CookieSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["medforge.api.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "medforge.api.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "medforge.api.schema.MedforgeAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedForge API",
    "DESCRIPTION": "GPU IDE sessions and competitions. Every success is an envelope "
    "`{data, meta}`; every error is RFC 9457 problem+json.",
    "VERSION": "v2",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v2",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "medforge.api.schema.envelope_postprocessing_hook",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionExposureEnum": "sessions_app.models.Exposure",
        "PackExposureEnum": "sessions_app.models.PackExposure",
    },
    # Swagger UI assets are served by the platform itself (no CDN: hosts may be offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024  # larger uploads stream to a temporary file

# --- CORS: the platform's own origins only (never session hosts) ----------------------------
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOWED_ORIGINS = [f"{PUBLIC_SCHEME}://{h}{_port}" for h in PLATFORM_HOSTS]
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["X-Request-Id", "Retry-After"]

# --- Sessions (GPU IDE containers) ----------------------------------------------------------
SESSION_POLL_BACKOFF_MAX_SECONDS = env.int("SESSION_POLL_BACKOFF_MAX_SECONDS", default=300)
SESSION_START_TIMEOUT_SECONDS = env.int("SESSION_START_TIMEOUT_SECONDS", default=300)
SESSION_STOP_TIMEOUT_SECONDS = env.int("SESSION_STOP_TIMEOUT_SECONDS", default=30)
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=0)
# The server-sent event stream of a session's timeline: how long one connection lasts (the
# client reconnects with Last-Event-ID) and how often it looks for new events.
SESSION_EVENTS_STREAM_SECONDS = env.int("SESSION_EVENTS_STREAM_SECONDS", default=120)
SESSION_EVENTS_STREAM_POLL_SECONDS = env.float("SESSION_EVENTS_STREAM_POLL_SECONDS", default=0.5)
# How often a starting session's IDE port is probed; the start latency users see is
# quantised by it, and a probe is one cheap loopback GET.
SESSION_READY_POLL_INTERVAL_SECONDS = env.float("SESSION_READY_POLL_INTERVAL_SECONDS",
                                                default=0.02)
RECONCILE_ENABLED = env.bool("RECONCILE_ENABLED", default=not TESTING)
SESSION_GPU_MODE = env("SESSION_GPU_MODE", default="nvidia" if PRODUCTION else "none")
SESSION_PUBLISH_MODE = env("SESSION_PUBLISH_MODE", default="network" if PRODUCTION else "loopback")
SESSION_CPU_LIMIT = env.float("SESSION_CPU_LIMIT", default=8.0 if PRODUCTION else 1.0)
SESSION_MEMORY_LIMIT = env("SESSION_MEMORY_LIMIT", default="32g" if PRODUCTION else "512m")
SESSION_PIDS_LIMIT = env.int("SESSION_PIDS_LIMIT", default=4096 if PRODUCTION else 256)
SESSION_SHM_SIZE = env("SESSION_SHM_SIZE", default="8g" if PRODUCTION else "64m")
SESSION_CAP_ADD = env.list("SESSION_CAP_ADD", default=[])
SESSION_EXTERNAL_NETWORK = env("SESSION_EXTERNAL_NETWORK", default="medforge-external-sessions")
SESSION_INTERNAL_NETWORK = env("SESSION_INTERNAL_NETWORK", default="medforge-internal-sessions")
DOCKER_BASE_URL = env("DOCKER_BASE_URL", default=None)
DOCKER_TIMEOUT_SECONDS = env.float("DOCKER_TIMEOUT_SECONDS", default=30.0)
# The pack the run command and the tests build locally (deploy/packs/local/build.sh).
LOCAL_PACK_IMAGE = env("LOCAL_PACK_IMAGE", default="medforge/pack-local:dev")
DEFAULT_PACK_IMAGE = env("DEFAULT_PACK_IMAGE", default="")

# --- Forward auth (routing/): how long decisions are cached; every state change invalidates.
FORWARD_AUTH_CREDENTIAL_CACHE_SECONDS = env.int("FORWARD_AUTH_CREDENTIAL_CACHE_SECONDS",
                                                default=300)
FORWARD_AUTH_SESSION_CACHE_SECONDS = env.int("FORWARD_AUTH_SESSION_CACHE_SECONDS", default=60)
FORWARD_AUTH_NEGATIVE_CACHE_SECONDS = env.int("FORWARD_AUTH_NEGATIVE_CACHE_SECONDS", default=60)
# After an invalidation, refills are refused this long so a slow reader cannot re-cache stale data.
FORWARD_AUTH_INVALIDATION_HOLD_SECONDS = env.int("FORWARD_AUTH_INVALIDATION_HOLD_SECONDS",
                                                 default=3)
# Per-process copies, trusted only while the Redis invalidation channel answers.
FORWARD_AUTH_LOCAL_CACHE_SECONDS = env.int("FORWARD_AUTH_LOCAL_CACHE_SECONDS", default=30)
# IDE activity (idle culling) is written to the database at most this often per process.
FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS = env.int("FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS", default=30)

# --- Workspaces and snapshots ---------------------------------------------------------------
WORKSPACE_BACKEND = env("WORKSPACE_BACKEND", default="zfs" if PRODUCTION else "directory")
WORKSPACE_ROOT = env("WORKSPACE_ROOT", default=str(VAR_DIR / "workspaces"))
WORKSPACE_ZFS_ROOT = env("WORKSPACE_ZFS_ROOT", default="tank/medforge/workspaces")
WORKSPACE_ZFS_QUOTA = env("WORKSPACE_ZFS_QUOTA", default=None)
WORKSPACE_ZFS_MOUNTPOINT_BASE = env("WORKSPACE_ZFS_MOUNTPOINT_BASE", default=None)
WORKSPACE_ZFS_BIN = env("WORKSPACE_ZFS_BIN", default="zfs")
WORKSPACE_ZPOOL_BIN = env("WORKSPACE_ZPOOL_BIN", default="zpool")
SNAPSHOT_KEEP_PER_USER = env.int("SNAPSHOT_KEEP_PER_USER", default=10)
SNAPSHOT_KEEP_DAYS = env.int("SNAPSHOT_KEEP_DAYS", default=14)

# --- GPUs -----------------------------------------------------------------------------------
GPU_DISCOVERY = env("GPU_DISCOVERY", default="auto" if PRODUCTION else "static")
GPU_STATIC = env.json(
    "GPU_STATIC",
    default=[
        {"index": i, "uuid": f"GPU-local-{i:04d}", "name": "Simulated GPU", "memory_mb": 24576}
        for i in range(env.int("GPU_STATIC_COUNT", default=4))
    ],
)

# --- Competitions ---------------------------------------------------------------------------
TRAINING_DATA_ROOT = env("TRAINING_DATA_ROOT", default=str(VAR_DIR / "data" / "training"))
PUBLIC_EVAL_DATA_ROOT = env("PUBLIC_EVAL_DATA_ROOT", default=str(VAR_DIR / "data" / "public-eval"))
TEST_HOLDOUTS_DIR = env("TEST_HOLDOUTS_DIR", default=str(VAR_DIR / "data" / "holdouts"))
SUBMISSIONS_DIR = env("SUBMISSIONS_DIR", default=str(VAR_DIR / "submissions"))
SUBMISSION_UPLOAD_MAX_BYTES = env.int("SUBMISSION_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
SCORING_TIME_LIMIT_SECONDS = env.int("SCORING_TIME_LIMIT_SECONDS", default=600)

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files from gunicorn itself (local run and the API image alike).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = LOCAL

# --- I18N -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Security headers -----------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Operations: metrics access and multiprocess metrics ------------------------------------
# /metrics answers loopback and these networks (CIDRs); anyone else needs Bearer METRICS_TOKEN.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# Parent of every service's PROMETHEUS_MULTIPROC_DIR (compose: one shared volume); "" = only this
# process's own PROMETHEUS_MULTIPROC_DIR, or the in-process registry when that is unset too.
METRICS_MULTIPROC_ROOT = env("METRICS_MULTIPROC_ROOT", default="")

# --- Logging (structured JSON lines; see medforge/logging.py) ------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="console" if LOCAL else "json")
LOGGING_CONFIG = None
from medforge.logging import configure_logging  # noqa: E402

configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT)
