# ISN production image: gunicorn serves the portal and API; the same image runs migrate, the Celery worker and beat
# (see docker-compose.yml). Build: docker build -t isn .

# --- stage 1: the runtime dependencies in a virtualenv (requirements.txt only, no test or lint tools) -------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt

# --- stage 2: the runtime image -----------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# ISN_DATA_DIR holds what a host must keep (the audit archive, the revocation ledger, beat's schedule): mount a
# volume there. Static files are collected beside the code instead, so a volume never serves old ones after an
# upgrade. Logs go to the container's output (stderr) as one JSON object a line (time, level, logger, message,
# request_id; task_id and task in a worker), for the log shipper; ISN_LOG_FORMAT=line gives plain lines.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ISN_ENV=production \
    ISN_DATA_DIR=/var/lib/isn \
    ISN_STATIC_ROOT=/app/static \
    ISN_LOG_FORMAT=json

# The PKCS#11 module (the hardware module's or SoftHSM2's shared library) is mounted here by the operator, read-only,
# with its configuration; ISN_PKCS11_MODULE names the library inside it (e.g. /opt/pkcs11/libsofthsm2.so), and
# ISN_PKCS11_TOKEN_LABEL with ISN_PKCS11_PIN_FILE sign in to the token. Unset, the master key comes from
# ISN_MASTER_KEY or ISN_MASTER_KEY_FILE.

# SoftHSM2, a software PKCS#11 module, for trying the master key in a module (README: the master key in a hardware
# module); production mounts its HSM vendor's library instead and names it in ISN_PKCS11_MODULE.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends softhsm2 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 isn \
    && useradd --system --uid 10001 --gid isn --home-dir /var/lib/isn --no-create-home --shell /usr/sbin/nologin isn \
    && install --directory --owner=isn --group=isn --mode=0750 /var/lib/isn \
    && install --directory --mode=0755 /opt/pkcs11

# The venv keeps its absolute path (/opt/venv): its scripts' shebangs point there.
COPY --from=build /opt/venv /opt/venv

# Only the code that runs (not tests/, bench/ or the tooling files); it stays root-owned, so the app cannot change it.
WORKDIR /app
COPY manage.py ./
COPY isn ./isn
COPY agencies ./agencies
COPY audit ./audit
COPY messaging ./messaging
COPY locale ./locale

# Production settings refuse to load without these, but collectstatic never connects to the database or broker,
# so throwaway values set for this one command suffice; none of them stays in the image. STATIC_ROOT is
# $ISN_STATIC_ROOT (/app/static); collected as root, the files stay read-only for the app user.
RUN ISN_SECRET_KEY=build-only-collectstatic-not-a-secret-0123456789abcdefghijklmnop \
    ISN_ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@build.invalid:5432/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    ISN_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    ISN_AUDIT_SIGNING_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput

# 8000: the portal, the API, /healthz and /metrics (Prometheus text format, only with
# "Authorization: Bearer $ISN_METRICS_TOKEN"; off, 404, while no token is set). There is no separate metrics port.
EXPOSE 8000
VOLUME ["/var/lib/isn"]

# Production settings redirect plain HTTP to HTTPS and reject unknown Host headers, so the probe names an allowed
# host and sends X-Forwarded-Proto: https (gunicorn trusts it from 127.0.0.1; Django too when
# ISN_BEHIND_TLS_PROXY=true). It never follows a redirect out of the container. /healthz answers 503, failing the
# probe, when the database or the broker is down.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; from isn.env import env_list; host = (env_list('ISN_ALLOWED_HOSTS', []) + ['localhost'])[0].lstrip('.').replace('*', 'localhost'); no_redirect = type('NoRedirect', (u.HTTPRedirectHandler,), {'redirect_request': lambda *args: None}); u.build_opener(no_redirect).open(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host, 'X-Forwarded-Proto': 'https'}), timeout=8)"]

USER isn

# sh -c only to expand the variables; exec hands PID 1 to gunicorn so it receives docker stop's SIGTERM.
# FORWARDED_ALLOW_IPS: the addresses of the proxies whose X-Forwarded-* headers gunicorn trusts. With
# PROMETHEUS_MULTIPROC_DIR set (compose mounts an empty tmpfs there), /metrics adds up every gunicorn worker's
# request histogram; the folder is emptied first, as prometheus_client asks. No access log: each request's id is in
# ISN's own JSON lines, and an access log line would carry query strings (search terms) into the logs.
CMD ["sh", "-c", "if [ -n \"$PROMETHEUS_MULTIPROC_DIR\" ]; then mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && find \"$PROMETHEUS_MULTIPROC_DIR\" -mindepth 1 -delete; fi; exec gunicorn isn.wsgi:application --bind 0.0.0.0:8000 --workers \"${GUNICORN_WORKERS:-3}\" --no-control-socket --forwarded-allow-ips \"${FORWARDED_ALLOW_IPS:-127.0.0.1}\""]
