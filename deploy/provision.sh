#!/bin/bash
# Provision (or update) Ferry on a Debian 12 host: nginx (HTTPS) -> gunicorn's uvicorn workers
# -> Django, a django-q2 worker (qcluster), Postgres (local, or a URL to a managed one), and a
# Docker engine the ferry user may use to run jobs (example images built, example operations
# loaded, miniwdl's one-node swarm initialised).
#
#   sudo deploy/provision.sh [SOURCE_DIR]     (default: this repository)
#
# Run it again after an upgrade, or just again: what is already right is left alone (the
# environment file, secrets, database, certificate, venv), changed code or config is installed,
# and services are restarted only when something they run changed (nginx is reloaded).
#
# On the first run these variables (if set) seed /etc/ferry/ferry.env; afterwards that file is
# the one place for them (edit it and run this script again):
#   ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, CORS_ALLOWED_ORIGINS, DATABASE_URL (a non-local URL:
#   Postgres is neither installed nor managed here), FERRY_REGISTRATION_OPEN, FERRY_ADMIN_EMAIL,
#   FERRY_VAR_DIR (jobs' folders live under it: with the host's engine, a path the engine sees
#   at the same place), FERRY_SERVER_NAME, FERRY_TLS_CERT, FERRY_TLS_KEY (a self-signed pair is
#   made when both files are missing), FERRY_Q_BROKER (orm or redis), FERRY_LOAD_EXAMPLES,
#   SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE, SECURE_SSL_REDIRECT.
# See deploy/ferry.env.example for every setting.
set -euo pipefail

SRC_DIR=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
PREFIX=/opt/ferry
APP_DIR=$PREFIX/app
VENV_DIR=$PREFIX/venv
ENV_DIR=/etc/ferry
ENV_FILE=$ENV_DIR/ferry.env
PY=/usr/bin/python3 # Debian's interpreter, also used for the venv
MANAGE=/usr/local/bin/ferry-manage

log() { printf '\n==> %s  [%s]\n' "$*" "$(date -u +%T)"; }
note() { printf '    %s\n' "$*"; }
die() {
    printf 'provision: %s\n' "$*" >&2
    exit 1
}

[[ $EUID -eq 0 ]] || die "must run as root"
[[ -f $SRC_DIR/pyproject.toml && -f $SRC_DIR/manage.py ]] ||
    die "$SRC_DIR does not look like the Ferry source tree"
# shellcheck source=/dev/null
. /etc/os-release
[[ ${VERSION_CODENAME:-} == bookworm ]] ||
    echo "provision: warning: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}" >&2

# What changed in this run decides what is restarted at the end: code only -> ferry-web reloads
# gracefully (new workers with the new code, in-flight requests finish; no downtime) and the
# worker restarts; units, environment, dependencies or groups -> both restart.
RESTART_APP=no
RELOAD_NGINX=no

# A setting: the value in $ENV_FILE once it exists, else the environment, else the default.
setting() {
    local name=$1 default=$2 value
    if [[ -f $ENV_FILE ]] && value=$(grep -E "^$name=" "$ENV_FILE" | tail -n 1) && [[ -n $value ]]; then
        printf '%s\n' "${value#*=}"
    else
        printf '%s\n' "${!name:-$default}"
    fi
}

# Install $1 as $2 (mode $3, owner $4) only when its content differs; true when it did.
install_if_changed() {
    local src=$1 dst=$2 mode=$3 owner=${4:-root:root}
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        return 1
    fi
    install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dst"
    note "installed $dst"
}

# Does a Docker engine answer on DOCKER_HOST (a unix socket) or /var/run/docker.sock?
docker_socket() {
    local host=${DOCKER_HOST:-unix:///var/run/docker.sock}
    printf '%s\n' "${host#unix://}"
}
engine_answers() {
    "$PY" - "$(docker_socket)" <<'PY'
import socket, sys

try:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sys.argv[1])
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        sys.exit(0 if s.recv(64).split(b" ")[1:2] == [b"200"] else 1)
except (OSError, IndexError):
    sys.exit(1)
PY
}

DATABASE_URL_SEED=${DATABASE_URL:-}
VAR_DIR=$(setting FERRY_VAR_DIR /var/lib/ferry)
[[ $VAR_DIR == /* ]] || die "FERRY_VAR_DIR must be an absolute path (got '$VAR_DIR')"
SERVER_NAME=$(setting FERRY_SERVER_NAME "$(hostname -f 2>/dev/null || hostname)")
TLS_CERT=$(setting FERRY_TLS_CERT "$ENV_DIR/tls/ferry.crt")
TLS_KEY=$(setting FERRY_TLS_KEY "$ENV_DIR/tls/ferry.key")
BROKER=$(setting FERRY_Q_BROKER orm)
LOAD_EXAMPLES=$(setting FERRY_LOAD_EXAMPLES true)
[[ $BROKER == orm || $BROKER == redis ]] || die "FERRY_Q_BROKER must be orm or redis (got '$BROKER')"

# Is the database on this host (then Postgres is installed, and its role and database made)?
db_url_local() {
    "$PY" - "$1" <<'PY'
import sys
from urllib.parse import unquote, urlsplit

u = urlsplit(sys.argv[1])
local = u.scheme.startswith("postg") and (u.hostname or "localhost") in ("localhost", "127.0.0.1", "::1")
if not (local and u.username and u.password and u.path.strip("/")):
    sys.exit(1)
print(unquote(u.username), unquote(u.password), unquote(u.path.strip("/")), sep="\n")
PY
}

install_packages() {
    log "Installing system packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # python3 first: the checks below need it.
    # procps: /bin/kill, which ferry-web.service reloads gunicorn with.
    local packages=(python3 python3-venv nginx rsync ca-certificates openssl git busybox-static procps)
    apt-get install -y -q --no-install-recommends "${packages[@]}"
    local db_url
    db_url=$(setting DATABASE_URL "$DATABASE_URL_SEED")
    if [[ -z $db_url ]] || db_url_local "$db_url" >/dev/null; then
        apt-get install -y -q --no-install-recommends postgresql
    else
        note "DATABASE_URL points at another host: Postgres is not installed here"
    fi
    if [[ $BROKER == redis ]]; then
        apt-get install -y -q --no-install-recommends redis-server
        systemctl enable --now redis-server.service
    fi
}

# The Docker engine jobs run on. One that already answers (e.g. a socket handed in) is used
# as it is: no second dockerd is installed or started.
ensure_engine() {
    log "Docker engine for jobs"
    if engine_answers; then
        note "an engine already answers on $(docker_socket); using it"
    else
        apt-get install -y -q --no-install-recommends docker.io
        systemctl enable --now docker.service
        local _
        for _ in $(seq 60); do engine_answers && break || sleep 1; done
        engine_answers || die "the Docker engine does not answer on $(docker_socket)"
        note "docker.io installed and started"
    fi
}

create_user_and_dirs() {
    log "Creating user and directories"
    if ! id -u ferry >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$PREFIX" --no-create-home \
            --shell /usr/sbin/nologin ferry
        note "created user ferry"
    fi
    # nginx reaches the gunicorn socket and the static files through the group.
    if ! id -nG www-data | tr ' ' '\n' | grep -qx ferry; then
        usermod -a -G ferry www-data
        RELOAD_NGINX=restart
    fi
    install -d -o root -g root -m 0755 "$PREFIX" "$APP_DIR"
    install -d -o root -g ferry -m 0750 "$ENV_DIR"
    install -d -o ferry -g ferry -m 0750 "$VAR_DIR"
    install -d -o ferry -g ferry -m 0700 "$VAR_DIR/storage"
    install -d -o ferry -g ferry -m 0755 "$VAR_DIR/static"
}

# Group membership, not rootless Docker: jobs' folders are bind-mounted by their host path and
# miniwdl needs the engine's swarm mode, both of which the shared system engine gives as they
# are. Members of the socket's group can control the engine (root-equivalent on this host): the
# ferry user has no shell and no password.
grant_engine_access() {
    local sock gid group
    sock=$(docker_socket)
    gid=$(stat -c %g "$sock")
    [[ $gid != 0 ]] || die "$sock belongs to group root: give it a group of its own (e.g. docker)"
    if ! group=$(getent group "$gid" | cut -d: -f1) || [[ -z $group ]]; then
        group=ferry-docker
        groupadd --system --gid "$gid" "$group"
        note "created group $group (gid $gid) for $sock"
    fi
    if ! id -nG ferry | tr ' ' '\n' | grep -qx "$group"; then
        usermod -a -G "$group" ferry
        note "added ferry to group $group (gid $gid), which owns $sock"
        RESTART_APP=yes
    else
        note "ferry is in group $group (gid $gid), which owns $sock"
    fi
}

write_env_file() {
    log "Configuring $ENV_FILE"
    # A Fernet key (32 random bytes, URL-safe base64) for the credentials Ferry stores encrypted.
    fernet_key() { "$PY" -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"; }
    if [[ -f $ENV_FILE ]]; then
        if ! grep -q '^FERRY_CREDENTIAL_KEYS=' "$ENV_FILE"; then
            echo "FERRY_CREDENTIAL_KEYS=$(fernet_key)" >>"$ENV_FILE"
            note "added FERRY_CREDENTIAL_KEYS to $ENV_FILE"
            RESTART_APP=yes
        fi
        if [[ $BROKER == redis ]] && ! grep -q '^FERRY_Q_REDIS_URL=' "$ENV_FILE"; then
            echo "FERRY_Q_REDIS_URL=redis://127.0.0.1:6379/0" >>"$ENV_FILE"
            note "added FERRY_Q_REDIS_URL (this host's redis-server) to $ENV_FILE"
            RESTART_APP=yes
        fi
        note "keeping existing $ENV_FILE"
        return
    fi
    gen() { "$PY" -c "import secrets; print(secrets.token_urlsafe($1))"; }
    local db_url=${DATABASE_URL_SEED:-postgres://ferry:$(gen 24)@127.0.0.1:5432/ferry}
    local broker_line="# FERRY_Q_REDIS_URL=redis://127.0.0.1:6379/0"
    [[ $BROKER == redis ]] && broker_line="FERRY_Q_REDIS_URL=${FERRY_Q_REDIS_URL:-redis://127.0.0.1:6379/0}"
    umask 027
    cat >"$ENV_FILE.tmp" <<EOF
# Generated by provision.sh on $(date -u +%Y-%m-%dT%H:%MZ); every setting is described in
# /opt/ferry/app/deploy/ferry.env.example. Edit, then run provision.sh again.
DJANGO_SETTINGS_MODULE=config.settings.production
SECRET_KEY=$(gen 50)
FERRY_CREDENTIAL_KEYS=$(fernet_key)
DEBUG=false
DATABASE_URL=$db_url
ALLOWED_HOSTS=${ALLOWED_HOSTS:-$SERVER_NAME,localhost,127.0.0.1}
CSRF_TRUSTED_ORIGINS=${CSRF_TRUSTED_ORIGINS:-}
CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-}
FERRY_VAR_DIR=$VAR_DIR
FERRY_STORAGE_ROOT=$VAR_DIR/storage
STATIC_ROOT=$VAR_DIR/static
FERRY_REGISTRATION_OPEN=${FERRY_REGISTRATION_OPEN:-false}
FERRY_ADMIN_EMAIL=${FERRY_ADMIN_EMAIL:-admin@ferry.local}
# Read by provision.sh only.
FERRY_SERVER_NAME=$SERVER_NAME
FERRY_TLS_CERT=$TLS_CERT
FERRY_TLS_KEY=$TLS_KEY
FERRY_Q_BROKER=$BROKER
$broker_line
FERRY_LOAD_EXAMPLES=$LOAD_EXAMPLES
EOF
    # Plain-HTTP boxes only (behind another TLS proxy): secure cookies and Django's redirect off.
    local var
    for var in SESSION_COOKIE_SECURE CSRF_COOKIE_SECURE SECURE_SSL_REDIRECT; do
        if [[ -n ${!var:-} ]]; then echo "$var=${!var}" >>"$ENV_FILE.tmp"; fi
    done
    umask 022
    chown root:ferry "$ENV_FILE.tmp"
    chmod 0640 "$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    note "created $ENV_FILE"
}

setup_postgres() {
    log "Setting up Postgres"
    local db_url db_parts db_user db_pass db_name
    db_url=$(setting DATABASE_URL "")
    if ! db_parts=$(db_url_local "$db_url"); then
        note "DATABASE_URL is not a local postgres URL with credentials; not managing the database"
        return
    fi
    systemctl enable --now postgresql
    local _
    for _ in $(seq 30); do pg_isready -q -h /var/run/postgresql && break || sleep 1; done
    pg_isready -q -h /var/run/postgresql || die "postgres is not accepting connections"
    { read -r db_user; read -r db_pass; read -r db_name; } <<<"$db_parts"
    # Only what is missing is created; the password is set only when it does not match.
    runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 \
        -v role="$db_user" -v pw="$db_pass" -v db="$db_name" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_authid WHERE rolname = :'role' AND rolcanlogin
   AND rolpassword IS NOT NULL) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
    note "role '$db_user' and database '$db_name' are ready"
}

copy_app() {
    log "Copying application from $SRC_DIR to $APP_DIR"
    [[ $SRC_DIR != "$APP_DIR" ]] || return 0
    local changes
    # -O: directories' times are not synced (compileall adds __pycache__ to them afterwards).
    changes=$(rsync -a -O --delete --itemize-changes --chown=root:root --chmod=u+rwX,go+rX,go-w \
        --exclude='.git/' --exclude='/.venv/' --exclude='/venv/' --exclude='/var/' \
        --exclude='.vagrant/' --exclude='node_modules/' --exclude='__pycache__/' \
        --exclude='*.pyc' --exclude='.pytest_cache/' --exclude='.tox/' --exclude='.*_cache/' \
        --exclude='/build/' --exclude='*.egg-info/' \
        "$SRC_DIR/" "$APP_DIR/")
    if [[ -n $changes ]]; then
        note "$(wc -l <<<"$changes") paths updated"
        RESTART_APP=${RESTART_APP/no/reload}
    else
        note "unchanged"
    fi
}

install_venv() {
    log "Python environment in $VENV_DIR"
    # (Re)create the venv when missing or broken (e.g. after a Python upgrade).
    if ! runuser -u ferry -- "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
        rm -rf "$VENV_DIR"
        "$PY" -m venv "$VENV_DIR"
    fi
    # Runtime dependencies only; reinstalled when pyproject.toml changed. The code itself runs
    # from $APP_DIR (the services' working directory).
    local stamp=$VENV_DIR/.ferry-pyproject.sha256 want target=$APP_DIR
    [[ $BROKER == redis ]] && target="$APP_DIR[redis]"
    want="$(sha256sum "$APP_DIR/pyproject.toml" | cut -d' ' -f1) $BROKER"
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
        note "dependencies unchanged"
    else
        "$VENV_DIR/bin/pip" install -q --upgrade pip
        "$VENV_DIR/bin/pip" install -q "$target"
        echo "$want" >"$stamp"
        RESTART_APP=yes
        note "dependencies installed"
    fi
    # Pre-compile as root: the ferry user cannot write into $APP_DIR.
    "$VENV_DIR/bin/python" -m compileall -q "$APP_DIR" >/dev/null || true
    install_if_changed "$APP_DIR/deploy/ferry-manage" "$MANAGE" 0755 || true
}

migrate_and_collect() {
    log "Migrating database and collecting static files"
    "$MANAGE" migrate --noinput
    "$MANAGE" collectstatic --noinput
    # nginx (www-data) reads them; earlier releases collected them private to ferry.
    local static_root
    static_root=$(setting STATIC_ROOT "$VAR_DIR/static")
    find "$static_root" -type d ! -perm 0755 -exec chmod 0755 {} +
    find "$static_root" -type f ! -perm 0644 -exec chmod 0644 {} +
    "$MANAGE" check --deploy --fail-level WARNING
}

ensure_certificate() {
    log "TLS certificate"
    if [[ -f $TLS_CERT && -f $TLS_KEY ]]; then
        note "using $TLS_CERT and $TLS_KEY"
        return
    fi
    [[ ! -e $TLS_CERT && ! -e $TLS_KEY ]] ||
        die "only one of $TLS_CERT and $TLS_KEY exists: provide both, or neither for a self-signed pair"
    install -d -m 0755 "$(dirname "$TLS_CERT")"
    install -d -m 0700 "$(dirname "$TLS_KEY")"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$SERVER_NAME" \
        -addext "subjectAltName=DNS:$SERVER_NAME,DNS:localhost,IP:127.0.0.1" \
        -keyout "$TLS_KEY" -out "$TLS_CERT" 2>/dev/null
    chmod 0600 "$TLS_KEY"
    chmod 0644 "$TLS_CERT"
    note "generated a self-signed certificate for $SERVER_NAME: $TLS_CERT (replace it for production)"
    RELOAD_NGINX=${RELOAD_NGINX/no/yes}
}

install_nginx_site() {
    log "nginx site"
    local static_root rendered
    static_root=$(setting STATIC_ROOT "$VAR_DIR/static")
    rendered=$(mktemp)
    sed -e "s|@SERVER_NAME@|$SERVER_NAME|g" -e "s|@TLS_CERT@|$TLS_CERT|g" \
        -e "s|@TLS_KEY@|$TLS_KEY|g" -e "s|@STATIC_ROOT@|${static_root%/}|g" \
        "$APP_DIR/deploy/nginx/ferry.conf" >"$rendered"
    if install_if_changed "$rendered" /etc/nginx/sites-available/ferry.conf 0644; then
        RELOAD_NGINX=${RELOAD_NGINX/no/yes}
    fi
    rm -f "$rendered"
    if install_if_changed "$APP_DIR/deploy/nginx/ferry-proxy.conf" \
        /etc/nginx/snippets/ferry-proxy.conf 0644; then
        RELOAD_NGINX=${RELOAD_NGINX/no/yes}
    fi
    if [[ $(readlink /etc/nginx/sites-enabled/ferry.conf || true) != /etc/nginx/sites-available/ferry.conf ]]; then
        ln -sfn /etc/nginx/sites-available/ferry.conf /etc/nginx/sites-enabled/ferry.conf
        RELOAD_NGINX=${RELOAD_NGINX/no/yes}
    fi
    if [[ -e /etc/nginx/sites-enabled/default ]]; then
        rm -f /etc/nginx/sites-enabled/default # it also claims default_server on :80
        RELOAD_NGINX=${RELOAD_NGINX/no/yes}
    fi
    nginx -t -q
}

install_units() {
    log "systemd units"
    local changed=no unit
    for unit in ferry-web.service ferry-worker.service; do
        if install_if_changed "$APP_DIR/deploy/systemd/$unit" "/etc/systemd/system/$unit" 0644; then
            changed=yes
        fi
    done
    if [[ $changed == yes ]]; then
        systemctl daemon-reload
        RESTART_APP=yes
    fi
    systemctl enable --quiet ferry-web.service ferry-worker.service nginx.service
}

# Restart what runs changed code/config; otherwise only start what is not running.
apply_services() {
    log "Services"
    if [[ $RESTART_APP == yes ]]; then
        systemctl restart ferry-web.service ferry-worker.service
        note "restarted ferry-web and ferry-worker"
    elif [[ $RESTART_APP == reload ]] && systemctl is-active --quiet ferry-web.service; then
        systemctl reload ferry-web.service
        systemctl restart ferry-worker.service
        note "reloaded ferry-web gracefully (new code), restarted ferry-worker"
    elif [[ $RESTART_APP == reload ]]; then
        systemctl restart ferry-web.service ferry-worker.service
        note "restarted ferry-web and ferry-worker"
    else
        systemctl start ferry-web.service ferry-worker.service
        note "ferry-web and ferry-worker left running"
    fi
    if ! systemctl is-active --quiet nginx.service || [[ $RELOAD_NGINX == restart ]]; then
        # restart (not reload): nginx workers must pick up the new ferry group.
        systemctl restart nginx.service
        note "restarted nginx"
    elif [[ $RELOAD_NGINX == yes ]]; then
        systemctl reload nginx.service
        note "reloaded nginx"
    else
        note "nginx left running"
    fi
}

# miniwdl runs WDL tasks as services of the engine's swarm mode: set up a one-node swarm now,
# listening on 127.0.0.1 only, rather than have miniwdl do it on the first WDL job. An engine
# that is already in a swarm is left as it is.
prepare_engine_for_jobs() {
    log "Docker swarm (miniwdl) and example operations"
    runuser -u ferry -- "$VENV_DIR/bin/python" - <<'PY'
import docker

client = docker.from_env()
state = client.info()["Swarm"]["LocalNodeState"]
if state == "active":
    print("    the engine is already in a swarm (miniwdl uses it)")
else:
    client.swarm.init(listen_addr="127.0.0.1", advertise_addr="127.0.0.1")
    print("    initialised a one-node swarm on 127.0.0.1")
PY
    if [[ ${LOAD_EXAMPLES,,} =~ ^(1|true|yes)$ ]]; then
        "$MANAGE" ferry_load_examples
    else
        note "FERRY_LOAD_EXAMPLES is off: example operations not loaded"
    fi
}

check_health() {
    log "Checking https://127.0.0.1/healthz"
    local status= _
    for _ in $(seq 60); do
        status=$("$PY" -c 'import ssl, urllib.request as r
try:
    print(r.urlopen("https://127.0.0.1/healthz", timeout=5, context=ssl._create_unverified_context()).status)
except Exception as e:
    print(getattr(e, "code", 0))') || true
        [[ $status =~ ^[1-4] ]] && break
        sleep 1
    done
    if [[ $status == 200 ]]; then
        echo "Ferry is up: https://$SERVER_NAME/ (admin: ferry-manage ferry_ensure_admin)"
    elif [[ $status =~ ^4 ]]; then
        echo "provision: warning: /healthz answered $status (is 127.0.0.1 in ALLOWED_HOSTS?)" >&2
    else
        journalctl -u ferry-web.service -n 30 --no-pager >&2 || true
        die "/healthz did not answer (last status: ${status:-none})"
    fi
}

install_packages
ensure_engine
create_user_and_dirs
grant_engine_access
write_env_file
setup_postgres
copy_app
install_venv
migrate_and_collect
ensure_certificate
install_nginx_site
install_units
apply_services
log "Ensuring the admin user"
"$MANAGE" ferry_ensure_admin
prepare_engine_for_jobs
check_health
