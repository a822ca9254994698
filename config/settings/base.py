"""Settings shared by every context. Values come from the environment (django-environ)."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

from executors.cromwell import options_from_environment as cromwell_options_from_environment

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()

INSECURE_DEFAULT_SECRET_KEY = "ferry-insecure-development-key-do-not-use-in-production"  # noqa: S105

SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

FERRY_VAR_DIR = Path(env.str("FERRY_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
FERRY_STORAGE_ROOT = Path(
    env.str("FERRY_STORAGE_ROOT", default=str(FERRY_VAR_DIR / "storage"))
).resolve()
# Uploads are spooled here while they are hashed; it must be on the same filesystem as the
# storage root so that the finished file is moved into place by a rename, not copied.
FILE_UPLOAD_TEMP_DIR = str(FERRY_STORAGE_ROOT / ".incoming")
# Each process spools into its own folder there (api.storage.spool); a sweeper (web and worker start, and
# every 10 minutes) removes the folders of processes that are gone at once, and anything in the
# spool whose owner it can't judge (another host's, older names) unwritten for this long.
FERRY_SPOOL_ORPHAN_AGE_S = env.int("FERRY_SPOOL_ORPHAN_AGE_S", default=24 * 3600)
# Creates sent with an Idempotency-Key header are answered again from the first answer for this
# long (api.idempotency); then the key may be used anew.
FERRY_IDEMPOTENCY_KEY_TTL_S = env.int("FERRY_IDEMPOTENCY_KEY_TTL_S", default=24 * 3600)
# GET /api/events/ (Server-Sent Events, ASGI): a comment line every HEARTBEAT seconds; a stream
# ends after MAX seconds (the browser reconnects with Last-Event-ID); stream tokens live TOKEN
# seconds. PostgreSQL wakes streams with LISTEN/NOTIFY (NOTIFY=False: poll, as on SQLite, every
# POLL seconds; with NOTIFY a safety read every SAFETY_POLL seconds).
FERRY_EVENTS_HEARTBEAT_SECONDS = env.float("FERRY_EVENTS_HEARTBEAT_SECONDS", default=15.0)
FERRY_EVENTS_MAX_SECONDS = env.float("FERRY_EVENTS_MAX_SECONDS", default=3600.0)
FERRY_EVENTS_TOKEN_SECONDS = env.int("FERRY_EVENTS_TOKEN_SECONDS", default=60)
FERRY_EVENTS_NOTIFY = env.bool("FERRY_EVENTS_NOTIFY", default=True)
FERRY_EVENTS_POLL_SECONDS = env.float("FERRY_EVENTS_POLL_SECONDS", default=0.5)
FERRY_EVENTS_SAFETY_POLL_SECONDS = env.float("FERRY_EVENTS_SAFETY_POLL_SECONDS", default=5.0)
# A stream whose client reads slower than events come is ended (with a retry hint: the client
# reconnects with Last-Event-ID and catches up from the table) once this many events wait for it.
FERRY_EVENTS_QUEUE_MAX = env.int("FERRY_EVENTS_QUEUE_MAX", default=1000)
# An open stream tells the worker what it watches (api.watches): leases renewed every RENEW
# seconds, gone TTL seconds after a server process died; a stream without a filter watches its
# user's workspaces, at most MAX_WORKSPACES of them.
FERRY_WATCH_TTL_S = env.float("FERRY_WATCH_TTL_S", default=60.0)
FERRY_WATCH_RENEW_S = env.float("FERRY_WATCH_RENEW_S", default=20.0)
FERRY_WATCH_MAX_WORKSPACES = env.int("FERRY_WATCH_MAX_WORKSPACES", default=50)
# Fernet keys for stored credentials, newest first (python -c "from cryptography.fernet import
# Fernet; print(Fernet.generate_key().decode())"). Empty: one derived from SECRET_KEY.
FERRY_CREDENTIAL_KEYS = env.list("FERRY_CREDENTIAL_KEYS", default=[])
FERRY_REGISTRATION_OPEN = env.bool("FERRY_REGISTRATION_OPEN", default=False)
# Type checks (table/json/text) read the whole file; JSON documents above this size are not
# parsed in full (only their framing is checked) to keep memory bounded.
FERRY_JSON_PARSE_MAX_BYTES = env.int("FERRY_JSON_PARSE_MAX_BYTES", default=64 * 1024 * 1024)
FERRY_MAX_UPLOAD_BYTES = env.int("FERRY_MAX_UPLOAD_BYTES", default=1024**4)

INSTALLED_APPS = [
    "api.apps.FerryAdminConfig",  # django.contrib.admin with a rate-limited sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_prometheus",
    "api",
    "operations",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.log_context.LogContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{FERRY_VAR_DIR / 'ferry.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Reuse connections between requests (a new Postgres connection costs ~12 ms of server CPU).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Under ASGI each request's sync code runs in a thread of its own, so a connection can't outlive
# its request (config.asgi: CONN_MAX_AGE=0): with FERRY_DB_POOL (deploy/gunicorn.conf.py sets
# it for the web workers) a pool per process keeps them open instead of a new PostgreSQL
# backend per request. A connection is held from a request's first query to its end; at most
# FERRY_DB_POOL_MAX per process (the web workers times it must stay below max_connections).
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env.bool(
    "FERRY_DB_POOL", default=False
):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("FERRY_DB_POOL_MAX", default=16),
        "timeout": env.float("FERRY_DB_POOL_TIMEOUT_S", default=30.0),
    }
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Parameters travel apart from the statement (psycopg's server-side binding): no quoting of
    # every value into the SQL text on the client, and a statement a connection runs again and
    # again (a job's status UPDATE, the event INSERT, a lease) is prepared once and then only
    # executed, not parsed and planned each time. Measured on a trivial job's path (issue 14).
    # FERRY_DB_SERVER_BINDING=false behind a pooler that can't keep prepared statements (e.g.
    # PgBouncer in transaction mode before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool(
        "FERRY_DB_SERVER_BINDING", default=True
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (app server and worker) share the file: wait on locks, use WAL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "api.User"

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

STATIC_URL = "/static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(FERRY_VAR_DIR / "static"))

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(FERRY_STORAGE_ROOT)},
    },
    # Where uploaded files and job results are kept (buckets come as other backends).
    "files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(FERRY_STORAGE_ROOT / "files")},
    },
    # Public by nature, and served by nginx (another user): readable by all, unlike uploads.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "OPTIONS": {"file_permissions_mode": 0o644, "directory_permissions_mode": 0o755},
    },
}

# Where new files and job results go unless a workspace chooses otherwise: empty for the local
# "files" storage above, or a bucket prefix such as s3://ferry-data/files or gs://ferry/files.
FERRY_STORAGE_LOCATION = env.str("FERRY_STORAGE_LOCATION", default="")
# How Ferry reaches buckets with the site's own (environment/instance) credentials, per scheme:
# fields of api.storage.buckets.BucketConfig. Locations with stored keys are registered as credentials.
FERRY_BUCKETS: dict[str, dict[str, Any]] = {
    "s3": {
        k: v
        for k, v in {
            "endpoint_url": env.str("FERRY_S3_ENDPOINT_URL", default="") or None,
            "region": env.str("FERRY_S3_REGION", default="") or None,
            "access_key_id": env.str("FERRY_S3_ACCESS_KEY_ID", default="") or None,
            "secret_access_key": env.str("FERRY_S3_SECRET_ACCESS_KEY", default="") or None,
        }.items()
        if v is not None
    },
    "gs": {
        k: v
        for k, v in {
            "project": env.str("FERRY_GCS_PROJECT", default="") or None,
            "api_endpoint": env.str("FERRY_GCS_API_ENDPOINT", default="") or None,
        }.items()
        if v is not None
    },
}
# The site's bucket, when it is one, is also a Django storage (django-storages backends).
if FERRY_STORAGE_LOCATION.startswith(("s3://", "gs://")):
    _scheme, _, _rest = FERRY_STORAGE_LOCATION.partition("://")
    _bucket, _, _prefix = _rest.partition("/")
    if _scheme == "s3":
        _s3 = FERRY_BUCKETS["s3"]
        STORAGES["site-bucket"] = {
            "BACKEND": "api.storage.backends.FerryS3Storage",
            "OPTIONS": {
                "bucket_name": _bucket,
                "location": _prefix.strip("/"),
                "endpoint_url": _s3.get("endpoint_url"),
                "region_name": _s3.get("region")
                or ("us-east-1" if _s3.get("endpoint_url") else None),
                "access_key": _s3.get("access_key_id"),
                "secret_key": _s3.get("secret_access_key"),
                "addressing_style": "path" if _s3.get("endpoint_url") else None,
                "signature_version": "s3v4",
                "file_overwrite": True,
                "default_acl": None,
            },
        }
    else:
        STORAGES["site-bucket"] = {
            "BACKEND": "api.storage.backends.FerryGCSStorage",
            "OPTIONS": {
                "bucket_name": _bucket,
                "location": _prefix.strip("/"),
                "project_id": FERRY_BUCKETS["gs"].get("project"),
                "file_overwrite": True,
                "default_acl": None,
            },
        }
# Further bucket prefixes that the site's credentials may read (for POST /api/files/import/).
FERRY_IMPORT_LOCATIONS = env.list("FERRY_IMPORT_LOCATIONS", default=[])
# Direct browser uploads/downloads: signed URL lifetime, how long a pending upload may take, and
# when an upload is split into presigned multipart parts.
FERRY_SIGNED_URL_EXPIRES_S = env.int("FERRY_SIGNED_URL_EXPIRES_S", default=900)
FERRY_PENDING_UPLOAD_EXPIRES_S = env.int("FERRY_PENDING_UPLOAD_EXPIRES_S", default=24 * 3600)
FERRY_MULTIPART_UPLOAD_ABOVE = env.int("FERRY_MULTIPART_UPLOAD_ABOVE", default=256 * 1024**2)
FERRY_MULTIPART_PART_SIZE = env.int("FERRY_MULTIPART_PART_SIZE", default=64 * 1024**2)
# When the bucket can't vouch for a declared sha256, Ferry reads the object: inline in the
# completing request up to this size, else in a worker while the file stays pending.
FERRY_INLINE_VERIFY_MAX_BYTES = env.int("FERRY_INLINE_VERIFY_MAX_BYTES", default=64 * 1024**2)

# Every upload is spooled to disk and hashed as it arrives; nothing is held in memory.
FILE_UPLOAD_HANDLERS = ["api.storage.uploads.HashingUploadHandler"]
# Stored files are private to Ferry's account and group; Docker job containers join the group
# of their (bind-mounted) input files to read them. Folders are 0700 (api.private_paths).
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Sign-in rate limits count in this cache, so it must be shared by every web worker (and every
# app server): a table in the database by default (created by `migrate`); CACHE_URL may name
# another shared cache, e.g. redis://127.0.0.1:6379/1.
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://ferry_cache")}
# Requests per account (the email submitted, or the signed-in user) and per client address;
# "N/second|minute|hour|day", empty for no limit. A refused request answers 429 with Retry-After.
FERRY_THROTTLE_RATES: dict[str, str | None] = {
    scope: env.str("FERRY_THROTTLE_" + scope.upper().replace("-", "_"), default=default) or None
    for scope, default in {
        "sign-in-account": "20/hour",
        "sign-in-address": "100/hour",
        "token-refresh-account": "120/hour",
        "token-refresh-address": "600/hour",
        "password-change-account": "10/hour",
        "password-change-address": "30/hour",
        "register-account": "5/hour",
        "register-address": "20/hour",
    }.items()
}

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# What a frontend on another origin may read of an answer besides the CORS-safelisted headers:
# the version of what it read (ETag, for If-None-Match and If-Match), downloads' names and
# ranges, replayed creates, and when to retry a 429 or 503.
CORS_EXPOSE_HEADERS = [
    "Content-Disposition",
    "Content-Length",
    "Content-Range",
    "ETag",
    "Idempotent-Replayed",
    "Retry-After",
]
# A frontend on another origin may send these besides django-cors-headers' defaults: conditional
# requests, resuming the event stream, upload checksums and idempotent creates.
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "if-none-match",
    "if-match",
    "last-event-id",
    "idempotency-key",
    "x-checksum-sha256",
)

CSRF_FAILURE_VIEW = "api.exception_handlers.csrf_failure"

LOGIN_URL = "rest_framework:login"
LOGIN_REDIRECT_URL = "/api/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies are bounded in size (DATA_UPLOAD_MAX_MEMORY_SIZE) and depth (MAX_JSON_DEPTH).
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "api.filters.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "api.schema.FerryAutoSchema",
    "EXCEPTION_HANDLER": "api.exception_handlers.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "api.renderers.FastJSONRenderer",
        "api.renderers.FerryBrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Proxies in front of Ferry whose X-Forwarded-For is trusted for the client address that
    # rate limits count (0: REMOTE_ADDR; 1 behind deploy/'s nginx, set in production settings).
    "NUM_PROXIES": env.int("FERRY_TRUSTED_PROXIES", default=0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "USER_ID_FIELD": "id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a digest of the password hash: a password change revokes every access and
    # refresh token issued before it (api.serializers.accounts checks refresh tokens).
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "api.serializers.accounts.RevocableTokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Ferry API",
    "DESCRIPTION": (
        "Users, workspaces and files; operations run by pluggable executors. "
        "Every error answers with one JSON shape: {code, message, details}."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # GET /api/events/ is a plain async view: a hook documents it (api.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_event_stream",
    ],
    # Several models have a "kind" with its own choices: name this one's enum by what it is.
    "ENUM_NAME_OVERRIDES": {"ElementKindEnum": "api.models.ElementKind"},
    # Operations are tagged by the resource their path starts with (api.schema.resource_tag).
    "TAGS": [
        {"name": "auth", "description": "Sign in, tokens, your account."},
        {"name": "workspaces", "description": "Workspaces and their members."},
        {"name": "files", "description": "Upload, import, download, move files."},
        {"name": "sets", "description": "Observation and feature sets."},
        {"name": "operations", "description": "The catalog of operations."},
        {"name": "jobs", "description": "Run operations and follow their jobs."},
        {"name": "events", "description": "What changed, as a stream."},
        {"name": "credentials", "description": "Bucket credentials (staff)."},
        {"name": "cromwell-servers", "description": "Cromwell servers (staff)."},
        {"name": "executors", "description": "Executors and their health (staff)."},
        {"name": "health", "description": "Liveness and readiness probes."},
    ],
}

Q_CLUSTER = {
    "name": "ferry",
    "orm": "default",
    "workers": env.int("FERRY_Q_WORKERS", default=4),
    # Relocating large results may take long (streamed copies across providers).
    "timeout": 3 * 3600,
    "retry": 3 * 3600 + 300,
    "max_attempts": 1,
    "catch_up": False,
    # Job state lives in Ferry's own tables; don't keep a row per successful task.
    "save_limit": -1,
    "label": "Ferry tasks",
    # The queue table, its idle pusher woken by NOTIFY rather than looking every 0.2 s.
    "broker_class": "operations.broker.NotifiedORM",
}
# How long an idle pusher waits for a task's NOTIFY before it looks at the queue table anyway
# (tasks due again after their retry time, a notice missed while the listener reconnected).
FERRY_Q_WAKE_S = env.float("FERRY_Q_WAKE_S", default=1.0)
# Several worker hosts on one database: a Redis broker (e.g. redis://127.0.0.1:6379/0) instead
# of polling the database's queue table (see deploy/PROVISIONING-NOTES.md).
if FERRY_Q_REDIS_URL := env.str("FERRY_Q_REDIS_URL", default=""):
    Q_CLUSTER["redis"] = FERRY_Q_REDIS_URL
    del Q_CLUSTER["orm"]
    del Q_CLUSTER["broker_class"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.logs.json_formatter"},  # one JSON object a line, with job_id
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("FERRY_LOG_FORMAT", default="json"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Executors: alias -> backend class and options (loaded like STORAGES; checked at start-up).
FERRY_WORK_ROOT = Path(env.str("FERRY_WORK_ROOT", default=str(FERRY_VAR_DIR / "work"))).resolve()
EXECUTORS: dict[str, dict[str, Any]] = {
    "local-docker": {
        "BACKEND": "executors.docker.DockerExecutor",
        "OPTIONS": {
            "work_root": str(FERRY_WORK_ROOT / "docker"),
            # Defaults every operation gets, and the ceilings an operation may ask for.
            "defaults": {"memory_mb": 1024, "cpus": 1.0, "pids": 256, "timeout_s": 3600},
            "ceilings": {"memory_mb": 16384, "cpus": 4.0, "pids": 4096, "timeout_s": 7 * 86400},
        },
    },
    # WDL workflows on the local Docker engine (a one-node swarm), one run folder per job.
    "local-miniwdl": {
        "BACKEND": "executors.miniwdl.MiniwdlExecutor",
        "OPTIONS": {
            "work_root": str(FERRY_WORK_ROOT / "miniwdl"),
            "defaults": {"timeout_s": 24 * 3600},
            "ceilings": {"timeout_s": 7 * 86400},
        },
    },
}
# A Cromwell server from the environment (others are registered at /api/cromwell-servers/ and
# run as "cromwell:<name>"): FERRY_CROMWELL_URL and the FERRY_CROMWELL_* variables that set what a
# registered server's options can (README, "Configuration"); checked at start-up (ferry.E005).
try:
    _cromwell_options = cromwell_options_from_environment(os.environ)
except ValueError as _cromwell_problem:
    raise ImproperlyConfigured(str(_cromwell_problem)) from None
if _cromwell_options is not None:
    EXECUTORS["cromwell"] = {
        "BACKEND": "executors.cromwell.CromwellExecutor",
        "OPTIONS": _cromwell_options,
    }
# The in-memory executor (executors/dummy.py: runs follow a script, nothing runs) for trying
# Ferry without an engine: FERRY_DUMMY_EXECUTOR=true adds it; route a mode to "dummy" to use it.
if env.bool("FERRY_DUMMY_EXECUTOR", default=False):
    EXECUTORS["dummy"] = {"BACKEND": "executors.dummy.DummyExecutor", "OPTIONS": {}}
# Which executor runs each operation mode; "cromwell:<name>" names a registered Cromwell server.
EXECUTOR_ROUTING = {
    "docker": "local-docker",
    "wdl": env.str("FERRY_WDL_EXECUTOR", default="local-miniwdl"),
}
# The poll loop: one worker at a time cycles over every active job.
FERRY_POLL_INTERVAL_S = env.float("FERRY_POLL_INTERVAL_S", default=0.5)
FERRY_POLL_LOOP_S = env.float("FERRY_POLL_LOOP_S", default=25.0)
# Each cycle polls only the jobs that are due (operations.runner.PollSchedule), a page of at most
# FERRY_POLL_PAGE of them per executor (and the jobs an engine's events told of): a job someone watches (an open event stream on it or its
# workspace) every WATCHED seconds, the others every UNWATCHED seconds; jobs of an executor that
# reports exits as events (Docker) need no polling to finish and are reconciled every
# EVENTS_RECONCILE seconds (a container removed outside Ferry, a deadline passed).
FERRY_POLL_PAGE = env.int("FERRY_POLL_PAGE", default=500)
FERRY_POLL_WATCHED_S = env.float("FERRY_POLL_WATCHED_S", default=1.0)
FERRY_POLL_UNWATCHED_S = env.float("FERRY_POLL_UNWATCHED_S", default=15.0)
FERRY_POLL_EVENTS_RECONCILE_S = env.float("FERRY_POLL_EVENTS_RECONCILE_S", default=60.0)
# A job just submitted is polled as if watched for this long (its start is seen at once).
FERRY_POLL_NEW_S = env.float("FERRY_POLL_NEW_S", default=30.0)
# An executor's poll counters (ExecutorHealth: /metrics, GET /api/executors/) are written at most
# this often while its polls succeed (a failure, or a change of health, at once).
FERRY_POLL_RECORD_EVERY_S = env.float("FERRY_POLL_RECORD_EVERY_S", default=1.0)
# Threads of the poll loop's process that submit the new jobs of the engines it waits on
# (operations.runner.LoopSubmits), instead of a task per job through the queue. Each mostly
# waits on the engine (create, start); with fewer threads than jobs arriving at once, new jobs
# queue behind the starts (make bench, 4 clients: 2 threads left the machine 93 % busy, 4 97 %).
FERRY_LOOP_SUBMITTERS = env.int("FERRY_LOOP_SUBMITTERS", default=4)
FERRY_RESUBMIT_AFTER_S = env.float("FERRY_RESUBMIT_AFTER_S", default=30.0)
# The poll loop finalizes a job in the pass that sees its run exit when its results are local
# files of at most this many bytes in all, while the pass has spent less than this many seconds
# finalizing; other jobs are finalized by a task of their own.
FERRY_INLINE_FINALIZE_BYTES = env.int("FERRY_INLINE_FINALIZE_BYTES", default=16 * 1024 * 1024)
FERRY_INLINE_FINALIZE_S = env.float("FERRY_INLINE_FINALIZE_S", default=2.0)
# A FINALIZING job no live worker holds (its finalize task was lost) is finalized again after.
FERRY_REFINALIZE_AFTER_S = env.float("FERRY_REFINALIZE_AFTER_S", default=30.0)
# Leases (the poll loop; a job's submit and finalize) last this long and are renewed by a
# heartbeat while their holder works: a killed worker's lease passes on within this time, and
# at once to a worker started on the same host (it sees the holder's process is gone).
FERRY_LEASE_TTL_S = env.float("FERRY_LEASE_TTL_S", default=15.0)
# Each worker process writes a heartbeat this often; /readyz fails when the newest is older
# than FERRY_WORKER_STALE_S (no worker is alive to run jobs).
FERRY_WORKER_HEARTBEAT_S = env.float("FERRY_WORKER_HEARTBEAT_S", default=10.0)
FERRY_WORKER_STALE_S = env.float("FERRY_WORKER_STALE_S", default=60.0)
# Who may scrape /metrics: clients in these networks (CIDRs), or with
# "Authorization: Bearer <FERRY_METRICS_TOKEN>". Nobody else (404, so it isn't advertised).
FERRY_METRICS_NETWORKS = env.list("FERRY_METRICS_NETWORKS", default=["127.0.0.1/32", "::1/128"])
FERRY_METRICS_TOKEN = env.str("FERRY_METRICS_TOKEN", default="")
# How a worker names its host in lease holders (default: the hostname).
FERRY_WORKER_HOST = env.str("FERRY_WORKER_HOST", default="")
# How many more times a job is run when its engine restarted under it (only for operations
# whose spec says safe_to_retry; the others fail saying the engine restarted).
FERRY_ENGINE_RESTART_RETRIES = env.int("FERRY_ENGINE_RESTART_RETRIES", default=2)
