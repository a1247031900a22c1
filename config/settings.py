"""Témoin settings.

One module, read from environment variables. With none set, the embedded default applies:
SQLite, the local-disk write-once store and a filesystem Celery broker under ``TEMOIN_DATA_DIR``,
so that ``make run`` needs no service. Production sets the variables listed in docs/deployment.md.
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# --- Core -----------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="embedded-default-insecure-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DATA_DIR = Path(env.str("TEMOIN_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "devices",
    "devices.axis",
    "evidence",
    "evidence.disclosure",
    "evidence.redaction",
    "audit",
    "config.apps.TemoinConfig",
]

MIDDLEWARE = [
    # First: every log line of the request carries its id (config/ops/logging.py).
    "config.ops.logging.RequestIdMiddleware",
    # DEBUG's technical 404 lists every route: replaced by the plain page (config/middleware.py).
    "config.middleware.PlainNotFoundMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.FrenchFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Supervisors, legal staff, DPO, mayor and admin give a TOTP code after the password.
    "accounts.second_factor.SecondFactorMiddleware",
    # Then a temporary password set by the administrator is replaced before any other page (issue 20).
    "accounts.password_policy.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: locks out repeated login failures (django-axes).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Embedded default: SQLite in WAL mode with immediate transactions, so that the web process,
# the Celery worker and dockd can write concurrently without "database is locked" errors.
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'temoin.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-temoin.sqlite3")}
# Persistent connections: a new PostgreSQL connection per request cost a large share of the
# server's CPU in the shift-change load test (bench/load.py), and a new SQLite connection (file
# open, PRAGMAs) a share of each Axis upload's (bench/axis.py); health-checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("TEMOIN_DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Users and authentication ---------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Repeated login failures lock the account for this address (the CNIL's 2021 notice to a commune
# cited weak protection of access); every failure is also in the custody log.
AXES_FAILURE_LIMIT = env.int("TEMOIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.int("TEMOIN_LOGIN_LOCKOUT_MINUTES", default=15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
LOGIN_URL = "login"
# TOTP second factor for supervisor, legal, dpo, mayor and admin (accounts/second_factor.py).
# Bearer token of the deployment's operator (the monitoring system): /metrics and the health
# endpoint's details, deployment-wide (empty: a superuser's session only; an organisation's
# administrator sees their own organisation's figures).
TEMOIN_METRICS_TOKEN = env.str("TEMOIN_METRICS_TOKEN", default="")
# /api/health/ computes at most once per this many seconds per web process (anonymous bursts read
# that result); the workers' state comes from the beat's check, failing when older than the second.
TEMOIN_HEALTH_CACHE_SECONDS = env.float("TEMOIN_HEALTH_CACHE_SECONDS", default=5.0)
TEMOIN_HEALTH_WORKERS_STALE_SECONDS = env.int("TEMOIN_HEALTH_WORKERS_STALE_SECONDS", default=120)
# --- Rate limits (audit/throttle.py, docs/security.md) ----------------------------------------
# Requests per client address and minute, 0 for none. Login failures lock out through django-axes.
TEMOIN_RATE_AXIS_AUTH = env.int("TEMOIN_RATE_AXIS_AUTH", default=30)
TEMOIN_RATE_SHARE_DOWNLOAD = env.int("TEMOIN_RATE_SHARE_DOWNLOAD", default=30)
TEMOIN_RATE_ACCESS_REQUEST_SEARCH = env.int("TEMOIN_RATE_ACCESS_REQUEST_SEARCH", default=60)
# Failed logins per address: the first of each window is a custody entry, the others are counted
# on it (a flood, or a spray of usernames, cannot grow the log without bound).
TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS = env.int("TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS", default=600)
# Reverse proxies whose X-Forwarded-For gives the client's address (the compose's Caddy: 1).
TEMOIN_TRUSTED_PROXY_HOPS = env.int("TEMOIN_TRUSTED_PROXY_HOPS", default=0)
TEMOIN_REQUIRE_TOTP = env.bool("TEMOIN_REQUIRE_TOTP", default=True)
OTP_TOTP_ISSUER = env.str("TEMOIN_TOTP_ISSUER", default="Témoin")
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env.int("TEMOIN_SESSION_SECONDS", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("TEMOIN_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind the TLS reverse proxy of a deployment (docs/deployment.md): trust its X-Forwarded-Proto,
# redirect plain HTTP and tell browsers to use HTTPS only (HSTS).
TEMOIN_BEHIND_TLS = env.bool("TEMOIN_BEHIND_TLS", default=not DEBUG)
if TEMOIN_BEHIND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("TEMOIN_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^axis/"]  # docking stations follow the storage URL they are given
    SECURE_HSTS_SECONDS = env.int("TEMOIN_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False

# Content-Security-Policy (django-csp): scripts and styles only from our own origin, no frames,
# no plugins; media and images only from ourselves (the media URLs are same-origin, tokenised).
# Inline style attributes remain allowed for the templates' small layout tweaks; no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    },
}

# --- Internationalisation: French first, English available ------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
TIME_ZONE = env.str("TEMOIN_TIME_ZONE", default="Europe/Paris")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
# The dashboard is a package of the evidence app, not an app: its static files are listed here.
STATICFILES_DIRS = [BASE_DIR / "evidence" / "dashboard" / "static"]
STATIC_ROOT = Path(env.str("TEMOIN_STATIC_ROOT", default=str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Production (DJANGO_DEBUG=false): WhiteNoise serves the files collected by `collectstatic` (the
# image runs it at build time) with hashed names, cached for a year, and gzip-compressed copies.
# With debug on (`make run`, the tests) the files are served as they are, no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # A token is refused while its user's password is temporary (issue 20).
        "accounts.password_policy.TokenAuthenticationUnlessTemporary",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON without NaN/1e400, lone surrogates, NUL or deep nesting (config/parsers.py, issue 17).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Témoin API",
    "DESCRIPTION": "Evidence management for body-worn cameras (ARCHITECTURE.md §7).",
    "VERSION": "0.1.0",
    # Swagger UI served from our own static files (drf-spectacular-sidecar): no CDN, CSP-compatible.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Object store ---------------------------------------------------------------------------
# With S3_ENDPOINT_URL set, evidence goes to an S3 bucket with Object Lock (MinIO in compose.yaml);
# otherwise to the embedded write-once directory store under DATA_DIR/store.
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
S3_BUCKET = env.str("S3_BUCKET", default="temoin-evidence")
S3_ACCESS_KEY_ID = env.str("S3_ACCESS_KEY_ID", default="")
S3_SECRET_ACCESS_KEY = env.str("S3_SECRET_ACCESS_KEY", default="")
S3_REGION = env.str("S3_REGION", default="us-east-1")
S3_PART_SIZE = env.int("S3_PART_SIZE", default=16 * 1024 * 1024)
STORE_BACKEND = env.str("TEMOIN_STORE", default="s3" if S3_ENDPOINT_URL else "local")
STORE_LOCAL_ROOT = Path(env.str("TEMOIN_STORE_ROOT", default=str(DATA_DIR / "store")))
# Local store: read back through the page cache after fsync (default), or from the disk itself.
STORE_VERIFY_FROM_DISK = env.bool("TEMOIN_STORE_VERIFY_FROM_DISK", default=False)

# --- Celery ---------------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport, so that `make run` needs no Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "broker"
    _queue_dir.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(DATA_DIR / "broker-processed"),
        "control_folder": str(DATA_DIR / "broker-control"),
        "store_processed": False,
    }
# The longest task (a transcode of a long clip) must finish well inside the visibility timeout,
# or Redis would hand the same task to a second worker while the first is still running.
TEMOIN_TASK_TIME_LIMIT = env.int("TEMOIN_TASK_TIME_LIMIT", default=3 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env.int(
    "TEMOIN_BROKER_VISIBILITY_TIMEOUT", default=TEMOIN_TASK_TIME_LIMIT + 3600
)
# Redis: kombu looks for unacknowledged tasks to hand out again every interval × throttle seconds
# (10 × 10 by default). With a visibility timeout of minutes (tests, small deployments) that sweep
# would dominate the redelivery after a worker died: sweep at a quarter of the timeout instead.
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] < 400:
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        unacked_restore_interval=max(1, CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 4),
        unacked_restore_throttle=1,
    )
CELERY_TASK_TIME_LIMIT = TEMOIN_TASK_TIME_LIMIT
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "media"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Evidence -------------------------------------------------------------------------------
# CSI R241-13: one calendar month from the day of recording (per-organisation setting).
TEMOIN_DEFAULT_RETENTION = env.str("TEMOIN_DEFAULT_RETENTION", default="P1M")
# A recording whose month was already over when its camera was docked (and whose camera clock is
# known to be right) is due: it is kept this long for a supervisor to place a hold if a procedure
# needs it, then erased (evidence/retention/dates.py). ISO 8601 duration, days or hours.
TEMOIN_LATE_DOCKING_GRACE = env.str("TEMOIN_LATE_DOCKING_GRACE", default="P3D")
# CSI R241-13 (LEGAL.md rule 6): a training package is made only from fully anonymised copies; it is
# kept under its own rule, apart from the recordings it came from, then erased by the sweep.
TEMOIN_TRAINING_RETENTION = env.str("TEMOIN_TRAINING_RETENTION", default="P3Y")
TEMOIN_DOCK_NAME = env.str("TEMOIN_DOCK_NAME", default="local")
# Largest file a partner may upload through a requisition link (tus Tus-Max-Size; docs/requisitions.md).
TEMOIN_REQUISITION_MAX_SIZE = env.int("TEMOIN_REQUISITION_MAX_SIZE", default=64 * 1024 ** 3)
# Export bundles (ZIPs) uploaded through a requisition: beyond these, the bundle is kept as evidence
# but not unpacked (member count, unpacked total), or a member is not (compression ratio: zip bomb).
TEMOIN_BUNDLE_MAX_MEMBERS = env.int("TEMOIN_BUNDLE_MAX_MEMBERS", default=5000)
TEMOIN_BUNDLE_MAX_UNPACKED = env.int("TEMOIN_BUNDLE_MAX_UNPACKED", default=128 * 1024 ** 3)
TEMOIN_BUNDLE_MAX_RATIO = env.int("TEMOIN_BUNDLE_MAX_RATIO", default=100)
# An unfinished upload not touched for this long after its link expired is removed from staging
# (ISO 8601); one not touched for TEMOIN_UPLOAD_ABANDON_IDLE is removed even while the link works.
TEMOIN_UPLOAD_ABANDON_AFTER = env.str("TEMOIN_UPLOAD_ABANDON_AFTER", default="P1D")
TEMOIN_UPLOAD_ABANDON_IDLE = env.str("TEMOIN_UPLOAD_ABANDON_IDLE", default="P7D")
# Free space kept on the staging volume: a creation whose Upload-Length would eat into it answers 507.
TEMOIN_STAGING_FREE_MARGIN = env.int("TEMOIN_STAGING_FREE_MARGIN", default=2 * 1024 ** 3)
# Map tiles of the recording, intervention and access-request maps (docs/operations.md, "Maps"): a
# Leaflet URL template, XYZ or WMTS in the Web Mercator grid ({z}, {x}, {y}; {s} for subdomains).
# Default: IGN's Géoplateforme, Plan IGN v2 (public, no key). Empty: no background at all; the
# tracks, markers and scale are drawn either way. TEMOIN_MAP_TILES_URL and TEMOIN_MAP_TILES_ATTRIBUTION
# are the former names, still read.
TEMOIN_MAP_TILES_IGN = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2"
    "&STYLE=normal&TILEMATRIXSET=PM&FORMAT=image/png&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}")
TEMOIN_MAP_TILES = env.str(
    "TEMOIN_MAP_TILES", default=env.str("TEMOIN_MAP_TILES_URL", default=TEMOIN_MAP_TILES_IGN)).strip()
TEMOIN_MAP_ATTRIBUTION = env.str("TEMOIN_MAP_ATTRIBUTION", default=env.str(
    "TEMOIN_MAP_TILES_ATTRIBUTION",
    default="© IGN – Géoplateforme, Plan IGN" if TEMOIN_MAP_TILES == TEMOIN_MAP_TILES_IGN else ""))


def _tiles_origin(url: str) -> str:
    """The tile server's origin for the CSP's img-src ({s} subdomains as a wildcard); "" if same-origin or none."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


if _tiles_origin(TEMOIN_MAP_TILES):
    # Without it the browser refuses every tile (img-src 'self'): the maps would show no background.
    # Only the tile server is added, nothing for scripts or connections.
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"].append(_tiles_origin(TEMOIN_MAP_TILES))
TEMOIN_SIDECAR_MAX_BYTES = env.int("TEMOIN_SIDECAR_MAX_BYTES", default=1024 * 1024)
TEMOIN_CHUNK_SIZE = env.int("TEMOIN_CHUNK_SIZE", default=8 * 1024 * 1024)
# Clips up to this size stay in memory during the pull, so that the read-back compares the stored
# object with them byte for byte; larger ones are hashed again on read-back.
TEMOIN_READBACK_COMPARE_MAX = env.int("TEMOIN_READBACK_COMPARE_MAX", default=512 * 1024 * 1024)
# Axis uploads: 1 MiB receive buffers each web process keeps for the next clips (devices/axis/wsgi_body.py).
TEMOIN_AXIS_BUFFER_POOL = env.int("TEMOIN_AXIS_BUFFER_POOL", default=256 * 1024 * 1024)
TEMOIN_FFMPEG_THREADS = env.int("TEMOIN_FFMPEG_THREADS", default=0)

# --- Axis content destination (devices.axis, docs/axis.md) -----------------------------------
# Public base URL of Témoin as docking stations reach it: base of the X-Storage-Url handed to
# them (behind a TLS proxy the request alone does not tell the scheme).
TEMOIN_PUBLIC_URL = env.str("TEMOIN_PUBLIC_URL", default="")
TEMOIN_AXIS_TOKEN_SECONDS = env.int("TEMOIN_AXIS_TOKEN_SECONDS", default=3600)
TEMOIN_AXIS_MAX_UPLOADS = env.int("TEMOIN_AXIS_MAX_UPLOADS", default=16)  # per web process, then 503
TEMOIN_AXIS_FREE_SPACE_RESERVE = env.int("TEMOIN_AXIS_FREE_SPACE_RESERVE", default=64 * 1024 * 1024)

# --- Logging (config/ops/logging.py, docs/operations.md) -------------------------------------
# TEMOIN_LOG_FORMAT=json: one JSON object per line (timestamp, level, logger, message, request id,
# Celery task id) for a log collector; otherwise human text with the same ids in brackets.
TEMOIN_LOG_FORMAT = env.str("TEMOIN_LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.ops.logging.ContextFilter"}},
    "formatters": {
        "plain": {"()": "config.ops.logging.TextFormatter"},
        "json": {"()": "config.ops.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"],
                             "formatter": "json" if TEMOIN_LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env.str("TEMOIN_LOG_LEVEL", default="INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"},
                "werkzeug": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Mail (retention notices to supervisors, access-request reminders to the DPO) -----------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="temoin@localhost")

# --- Custody log (audit app) -----------------------------------------------------------------
# Ed25519 private key (PEM) signing the checkpoints; created on first use when absent.
CUSTODY_SIGNING_KEY = Path(env.str("TEMOIN_CUSTODY_KEY", default=str(DATA_DIR / "keys" / "custody-ed25519.pem")))
# Optional RFC 3161 time-stamping authority for checkpoints (empty: no timestamp).
CUSTODY_TSA_URL = env.str("TEMOIN_TSA_URL", default="")
# CA certificate chain that verifies the authority's time-stamp tokens (openssl ts -verify).
CUSTODY_TSA_CA_FILE = env.str("TEMOIN_TSA_CA_FILE", default="")
# CSI R241-14: the log is kept three years (a system check refuses another value unless the
# deployment states the legal basis of its own period: organisations under another framework).
CUSTODY_RETENTION_YEARS = env.int("TEMOIN_CUSTODY_RETENTION_YEARS", default=3)
CUSTODY_RETENTION_BASIS = env.str("TEMOIN_CUSTODY_RETENTION_BASIS", default="")
# Compliance audit (audit/compliance.py): how long a state may last before it is a violation (an
# erasure due but not yet swept, an erasure begun but not finished, a write still in progress).
TEMOIN_COMPLIANCE_GRACE = env.str("TEMOIN_COMPLIANCE_GRACE", default="PT2H")

# Celery keeps the project's log format (JSON lines under TEMOIN_LOG_FORMAT=json).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-media": {"task": "evidence.requeue_stale", "schedule": 300.0},
    # CSI R241-13: erasure one month after recording; the sweep runs at least hourly.
    "retention-sweep": {"task": "evidence.retention_sweep", "schedule": 900.0},
    "retention-notice": {"task": "evidence.retention_notice", "schedule": 24 * 3600.0},
    # GDPR art. 12(3): the DPO is reminded of access requests due within 7 and 2 days, and overdue.
    "access-request-reminders": {"task": "disclosure.access_request_reminders", "schedule": 24 * 3600.0},
    # Staging files and multipart uploads left by workers killed mid-write (docs/operations.md).
    "store-sweep-incomplete": {"task": "evidence.store_sweep_incomplete", "schedule": 6 * 3600.0},
    # Every legal invariant over database, store and log, daily; violations are alerted (docs/compliance.md).
    "compliance-audit": {"task": "audit.compliance_audit", "schedule": 24 * 3600.0},
    "store-orphans-settle": {"task": "evidence.store_orphans_settle", "schedule": 6 * 3600.0},
    # Partners' tus uploads abandoned in staging (TEMOIN_UPLOAD_ABANDON_*), bundles never unpacked.
    "requisition-staging-sweep": {"task": "requisitions.staging_sweep", "schedule": 3600.0},
    "custody-verify": {"task": "audit.verify_chain", "schedule": 3600.0},
    "custody-checkpoint": {"task": "audit.checkpoint", "schedule": 6 * 3600.0},
    # CSI R241-14: the log is kept three years, then purged after a signed checkpoint.
    "custody-purge": {"task": "audit.purge", "schedule": 24 * 3600.0},
    # The workers' health, recorded for /sante/: requests read it instead of broadcasting (issue 17).
    "health-refresh": {"task": "audit.health_refresh", "schedule": 30.0},
    "request-windows-prune": {"task": "audit.request_windows_prune", "schedule": 6 * 3600.0},
    "login-failures-report": {"task": "audit.login_failures_report", "schedule": 300.0},
}
