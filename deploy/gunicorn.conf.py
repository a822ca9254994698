"""Gunicorn settings for Ferry (used by deploy/systemd/ferry-web.service).

Every value can be overridden from the environment (GUNICORN_*), e.g. in
/etc/ferry/ferry.env.
"""

import multiprocessing
import os

# The ASGI app: every endpoint, and the event stream (GET /api/events/), whose open streams
# wait on an event loop instead of each holding a thread.
wsgi_app = "config.asgi:application"

# nginx connects to this socket; /run/ferry is created by systemd
# (RuntimeDirectory=ferry).  umask 007 makes the socket 0770 ferry:ferry and
# provision.sh adds www-data to the ferry group.
bind = os.environ.get("GUNICORN_BIND", "unix:/run/ferry/gunicorn.sock")
umask = 0o007

# uvicorn workers (the uvicorn-worker package): each runs an event loop; Django runs the sync
# views (uploads, downloads) in threads beside it, so the loop keeps sending gunicorn its
# heartbeat during a multi-GB transfer and `timeout` only catches genuinely hung workers.
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On restart/reload give in-flight transfers time to finish
# (keep TimeoutStopSec in ferry-web.service above this).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "300"))
keepalive = 5

# Heartbeat files on tmpfs, so a busy disk cannot stall workers.
worker_tmp_dir = "/dev/shm"

# gunicorn >= 25.1 opens a control socket, by default under $HOME, which is
# read-only for the ferry user; keep it next to the app socket instead
# (older versions ignore this setting).
control_socket = "/run/ferry/gunicorn.ctl"

# Only nginx can reach the socket, so trust its X-Forwarded-* headers.
forwarded_allow_ips = "*"

# Logs go to stdout/stderr, i.e. the journal (journalctl -u ferry-web).
accesslog = "-"
# Over the unix socket the peer address is empty: log the client address
# nginx passes in X-Real-IP instead, plus the request time in ms.
access_log_format = '%({x-real-ip}i)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# /metrics sums django-prometheus' request metrics over every worker process: each writes its
# samples under PROMETHEUS_MULTIPROC_DIR (emptied when gunicorn starts; a dead worker's live
# gauges are dropped). Set before the workers import prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/run/ferry/prometheus")
# A pool of PostgreSQL connections per worker: under ASGI a connection can't outlive its
# request, and a new backend per request costs the database more than the request itself.
os.environ.setdefault("FERRY_DB_POOL", "true")


def on_starting(server):
    import shutil

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, mode=0o700, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
