# syntax=docker/dockerfile:1
# ctgw in a small image: Debian's Python, the gateway in a venv, run as user ctgw.
#   docker build -t ctgw:0.1.0 .
#   docker run -d -p 8080:8080 -p 127.0.0.1:4573:4573 \
#     -v ctgw-conf:/etc/ctgw -v ctgw-data:/var/lib/ctgw ctgw:0.1.0
# docs/operating.md, "Running the image", says how to configure it and how this file is checked
# without a Docker engine (tests/image/). Keep each RUN a plain sh command: that test runs them.

# Build stage: the gateway and its dependencies as wheels, installed into /opt/ctgw.
FROM debian:trixie-slim AS build
# ARG, not ENV: set while building, not left in the image.
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY numberpool ./numberpool
COPY reports ./reports
# The runtime venv gets no pip of its own: the build venv's pip installs into it.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels . \
    && python3 -m venv --without-pip /opt/ctgw \
    && /opt/build/bin/pip --python /opt/ctgw/bin/python install --no-index --find-links /wheels ctgw

# Final stage: Python, the venv, a user, the config and the store as volumes.
FROM debian:trixie-slim
ARG DEBIAN_FRONTEND=noninteractive
# uid and gid 10001 are fixed: a host folder mounted as the store is chowned to them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 ctgw \
    && useradd --uid 10001 --gid ctgw --no-create-home --home-dir /var/lib/ctgw \
        --shell /usr/sbin/nologin ctgw \
    && install -d -m 0750 -o root -g ctgw /etc/ctgw \
    && install -d -m 0700 -o ctgw -g ctgw /var/lib/ctgw
COPY --from=build /opt/ctgw /opt/ctgw
COPY --chown=root:ctgw --chmod=0640 docker/gateway.toml /etc/ctgw/gateway.toml
ENV PATH=/opt/ctgw/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    CTGW_CONFIG=/etc/ctgw/gateway.toml
# /etc/ctgw: gateway.toml (a new named volume starts with the image's copy);
# /var/lib/ctgw: the SQLite store (ctgw.db and its -wal/-shm files).
VOLUME ["/etc/ctgw", "/var/lib/ctgw"]
# HTTP (API, swap.js, staff pages) and FastAGI, as docker/gateway.toml sets them.
EXPOSE 8080 4573
USER ctgw
WORKDIR /var/lib/ctgw
# No curl in the image: Python asks /healthz (503 or no answer: unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CTGW_HTTP_PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["ctgw", "serve", "--config", "/etc/ctgw/gateway.toml"]
