# nginx for deploy/compose.yaml, from Debian's package (no registry image needed).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light openssl \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && rm -f /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
    && install -d -m 0750 /etc/nginx/tls
COPY nginx.conf /etc/nginx/ferry.conf.template
COPY nginx-start.sh /usr/local/bin/nginx-start
EXPOSE 80 443
CMD ["/usr/local/bin/nginx-start"]
