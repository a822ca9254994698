#!/bin/sh
# Start nginx in the foreground; make a self-signed certificate first when /etc/nginx/tls has
# none (mount your own ferry.crt/ferry.key there for a real host name), and point port 80's
# redirect at FERRY_PUBLIC_HTTPS_PORT.
set -eu
if [ ! -s /etc/nginx/tls/ferry.crt ] || [ ! -s /etc/nginx/tls/ferry.key ]; then
  echo "nginx-start: no certificate in /etc/nginx/tls, making a self-signed one for ${FERRY_TLS_NAME:-localhost}"
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=${FERRY_TLS_NAME:-localhost}" \
    -addext "subjectAltName=DNS:${FERRY_TLS_NAME:-localhost},DNS:localhost,IP:127.0.0.1" \
    -keyout /etc/nginx/tls/ferry.key -out /etc/nginx/tls/ferry.crt 2>/dev/null
  chmod 0600 /etc/nginx/tls/ferry.key
fi
port="${FERRY_PUBLIC_HTTPS_PORT:-443}"
suffix=":$port"
[ "$port" = 443 ] && suffix=""
sed "s/@HTTPS_PORT_SUFFIX@/$suffix/" /etc/nginx/ferry.conf.template > /etc/nginx/conf.d/ferry.conf
exec nginx -g 'daemon off;'
