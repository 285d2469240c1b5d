"""Knowlix settings: every value comes from the environment (see ``.env.example``).

The defaults run the quick start unchanged: SQLite under ``var/``, an embedded Celery
broker on the filesystem (no Redis), and outgoing mail to the local mail catcher.
Nothing here reads the database; system parameters live in ``knowlix.params``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from knowlix.env import env_bool, env_int, env_list, env_secret, env_str
from knowlix.keys import weak_secret_key_reason

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("KNOWLIX_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Core -----------------------------------------------------------------------
DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = env_secret("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is off (`manage.py generate_keys`)"
    )
if not DEBUG and (_weak := weak_secret_key_reason(SECRET_KEY, (_DEV_SECRET,))):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for DEBUG=false: {_weak} "
        "(`manage.py generate_keys` prints a new one)"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PORT = env_int("PORT", 8000)
# The public base URL, used for OAuth redirect URLs and links in emails.
KNOWLIX_BASE_URL = env_str("KNOWLIX_BASE_URL", f"http://localhost:{PORT}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "health_check",
    "django_prometheus",
    "csp",
    "axes",
    "knowlix",
    "feed",
    "mailservers",
    "routing",
    "dnscheck",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "knowlix.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "knowlix.error_pages.AppErrorPagesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last: it answers a locked-out login itself (django-axes).
    "axes.middleware.AxesMiddleware",
]
# With DEBUG on, the app's own error pages unless a developer asks for Django's
# (which list every URL pattern and the settings): knowlix/error_pages.py.
KNOWLIX_DEBUG_PAGES = env_bool("KNOWLIX_DEBUG_PAGES", False)
DEFAULT_EXCEPTION_REPORTER = "knowlix.error_pages.AppExceptionReporter"

# --- Content-Security-Policy (django-csp) ---------------------------------------
# No inline script anywhere (every script is a file under static/), no remote
# resource: a received message's remote images load only after *Show images*
# (that page alone adds ``img-src https:``). Inline *styles* stay allowed: received
# HTML keeps its sanitized style attributes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "frame-ancestors": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
    }
}

ROOT_URLCONF = "knowlix.urls"
WSGI_APPLICATION = "knowlix.wsgi.application"
ASGI_APPLICATION = "knowlix.asgi.application"

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
                "knowlix.context_processors.knowlix",
            ],
            # {{ value|when }}: the one date style (relative, exact on hover).
            "builtins": ["knowlix.templatetags.knowlix_dates"],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'knowlix.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the web server, the worker and the mail catcher share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so worker processes started by tests see the test database;
    # one per test run (pid), so parallel runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-knowlix-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login first
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): after KNOWLIX_LOGIN_FAILURES wrong passwords for
# one user name from one address, that pair is locked out (even with the right
# password) for KNOWLIX_LOGIN_LOCKOUT_MINUTES, or until an admin unlocks it
# (Settings > Technical > Locked logins).
AXES_FAILURE_LIMIT = env_int("KNOWLIX_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = env_int("KNOWLIX_LOGIN_LOCKOUT_MINUTES", 30) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Behind the TLS proxy, the browser's address (not the proxy's, which would let
# anyone lock a user out for everybody): knowlix.middleware.client_ip.
AXES_CLIENT_IP_CALLABLE = "knowlix.middleware.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Pages are never framed; the feed's attachment preview opts in to same-origin.
X_FRAME_OPTIONS = "DENY"

# --- Behind a TLS proxy (see docs/deploy.md) --------------------------------------
# The proxy terminates TLS and tells Django so in a header, e.g. X-Forwarded-Proto:
# set SECURE_PROXY_SSL_HEADER to that header's name (its value must be "https").
# Only behind a proxy that overwrites the header: a client could send it otherwise.
_PROXY_SSL_HEADER = env_str("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
    if _PROXY_SSL_HEADER
    else None
)
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Paths answered over plain HTTP too (container healthchecks, the metrics scraper).
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing directory
# Files served at the site's root: /favicon.ico, which browsers ask for anyway.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploads above this size are refused with a clear message (bytes).
KNOWLIX_ATTACHMENT_MAX_BYTES = env_int("KNOWLIX_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
# A whole outgoing mail (bodies and attachments) above this size is refused (bytes).
KNOWLIX_MAIL_MAX_BYTES = env_int("KNOWLIX_MAIL_MAX_BYTES", 25 * 1024 * 1024)
# One post's files together (any kind of message), and any request as a whole.
KNOWLIX_POST_MAX_BYTES = env_int("KNOWLIX_POST_MAX_BYTES", 25 * 1024 * 1024)
KNOWLIX_REQUEST_MAX_BYTES = env_int(
    "KNOWLIX_REQUEST_MAX_BYTES", KNOWLIX_POST_MAX_BYTES + 1024 * 1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # form fields (not files) of a request
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Secrets at rest --------------------------------------------------------------
# Comma-separated Fernet keys, newest first; older keys still decrypt (rotation).
_DEV_FERNET = "ZGV2LW9ubHktaW5zZWN1cmUta2V5LWNoYW5nZS1tZSE="
KNOWLIX_ENCRYPTION_KEY = env_secret(
    "KNOWLIX_ENCRYPTION_KEY", _DEV_FERNET if DEBUG else ""
)
if not KNOWLIX_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "KNOWLIX_ENCRYPTION_KEY must be set when DEBUG is off "
        "(`manage.py generate_keys`)"
    )
if not DEBUG and _DEV_FERNET in KNOWLIX_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "KNOWLIX_ENCRYPTION_KEY holds the published development key: "
        "not with DEBUG=false (`manage.py generate_keys`)"
    )

# --- Celery -----------------------------------------------------------------------
# Default: kombu's filesystem transport under var/, so `make run` needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, str | int] = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Beat records a heartbeat row at each tick (knowlix.beat); it ticks at least this often.
CELERY_BEAT_SCHEDULER = "knowlix.beat:HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 10
# Three queues, so each kind of work can get its own workers (docs/deploy.md):
# sending, polling, and everything else. A worker without -Q consumes all three.
KNOWLIX_QUEUES = ("celery", "outgoing", "incoming")
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in KNOWLIX_QUEUES]
CELERY_TASK_ROUTES = {
    "mailservers.tasks.send_mail": {"queue": "outgoing"},
    "mailservers.tasks.process_outbox": {"queue": "outgoing"},
    "mailservers.tasks.recover_stuck_mail": {"queue": "outgoing"},
    "mailservers.tasks.poll_due_servers": {"queue": "incoming"},
    "mailservers.tasks.poll_server": {"queue": "incoming"},
}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}  # filled by knowlix.celery

# --- Mail -------------------------------------------------------------------------
# The deployment's own SMTP server, used when no custom outgoing server matches.
# smtp://, smtp+starttls:// or smtps://user:password@host:port
KNOWLIX_SMTP_URL = env_secret(
    "KNOWLIX_SMTP_URL", "smtp://127.0.0.1:1025" if DEBUG else ""
)
# First value of the mail.catchall.domain system parameter.
KNOWLIX_CATCHALL_DOMAIN = env_str("KNOWLIX_CATCHALL_DOMAIN", "")
# The local mail catcher started by `make run` (host:port).
KNOWLIX_MAILCATCHER = env_str("KNOWLIX_MAILCATCHER", "127.0.0.1:1025")
KNOWLIX_SMTP_TIMEOUT = env_int("KNOWLIX_SMTP_TIMEOUT", 30)
# MAIL, RCPT and DATA in one write where the server offers PIPELINING (RFC 2920).
KNOWLIX_SMTP_PIPELINING = env_bool("KNOWLIX_SMTP_PIPELINING", True)
KNOWLIX_IMAP_TIMEOUT = env_int("KNOWLIX_IMAP_TIMEOUT", 30)
# Extra CA file trusted for SMTP/IMAP/POP3 TLS (the system store is always trusted).
KNOWLIX_MAIL_CA_FILE = env_str("KNOWLIX_MAIL_CA_FILE", "")
# Incoming messages above this size are recorded for admins instead of imported (bytes).
KNOWLIX_INCOMING_MAX_BYTES = env_int("KNOWLIX_INCOMING_MAX_BYTES", 25 * 1024 * 1024)

# --- DNS authentication -------------------------------------------------------------
KNOWLIX_DNS_NAMESERVERS = env_list("KNOWLIX_DNS_NAMESERVERS", [])
KNOWLIX_DNS_TIMEOUT = float(env_str("KNOWLIX_DNS_TIMEOUT", "2"))
KNOWLIX_SPF_INCLUDE = env_str("KNOWLIX_SPF_INCLUDE", "_spf.knowlix.com")
KNOWLIX_DKIM_SELECTOR = env_str("KNOWLIX_DKIM_SELECTOR", "knowlix")
KNOWLIX_DKIM_TARGET_DOMAIN = env_str("KNOWLIX_DKIM_TARGET_DOMAIN", "knowlix.com")

# --- OAuth endpoints (sovereign clouds and tests point these elsewhere) -----------
KNOWLIX_MICROSOFT_AUTHORITY = env_str(
    "KNOWLIX_MICROSOFT_AUTHORITY", "https://login.microsoftonline.com"
)
KNOWLIX_GOOGLE_AUTH_URI = env_str(
    "KNOWLIX_GOOGLE_AUTH_URI", "https://accounts.google.com/o/oauth2/auth"
)
KNOWLIX_GOOGLE_TOKEN_URI = env_str(
    "KNOWLIX_GOOGLE_TOKEN_URI", "https://oauth2.googleapis.com/token"
)
# A CA bundle for the OAuth providers' TLS (tests point it at their own CA).
KNOWLIX_OAUTH_CA_BUNDLE = env_str("KNOWLIX_OAUTH_CA_BUNDLE", "")

# --- Health and metrics (docs/deploy.md) ------------------------------------------
# /health/beat/ fails when beat's last tick is older than this (seconds).
KNOWLIX_HEALTH_BEAT_MAX_AGE = env_int("KNOWLIX_HEALTH_BEAT_MAX_AGE", 60)
# /health/outbox/ fails when a mail is overdue (or stuck sending) this long (seconds).
KNOWLIX_HEALTH_OUTBOX_STALL = env_int("KNOWLIX_HEALTH_OUTBOX_STALL", 600)
# /metrics wants "Authorization: Bearer <token>"; unset, it answers loopback only.
KNOWLIX_METRICS_TOKEN = env_secret("KNOWLIX_METRICS_TOKEN", "")
KNOWLIX_METRICS_COLLECTORS = [
    "mailservers.metrics.MailCollector",
    "routing.metrics.RoutingCollector",
]

# --- Logging ------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
