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

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ISN_ENV=production \
    ISN_DATA_DIR=/var/lib/isn

# SoftHSM2, a software PKCS#11 module, for trying the master key in a module (README: the master key in a hardware
# module); production mounts its HSM vendor's library instead and names it in ISN_PKCS11_MODULE.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends softhsm2 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 isn \
    && useradd --system --uid 10001 --gid isn --home-dir /var/lib/isn --no-create-home --shell /usr/sbin/nologin isn \
    && install --directory --owner=isn --group=isn --mode=0750 /var/lib/isn

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
# $ISN_DATA_DIR/static; collected as root, the files stay read-only for the app user.
RUN ISN_SECRET_KEY=build-only-collectstatic-not-a-secret-0123456789abcdefghijklmnop \
    ISN_ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@build.invalid:5432/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    ISN_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    ISN_AUDIT_SIGNING_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput

EXPOSE 8000

# Production settings redirect plain HTTP to HTTPS and reject unknown Host headers, so the probe names an allowed
# host and sends X-Forwarded-Proto: https (gunicorn trusts it from 127.0.0.1; Django too when
# ISN_BEHIND_TLS_PROXY=true). It never follows a redirect out of the container. /healthz answers 503, failing the
# probe, when the database or the broker is down.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; from isn.env import env_list; host = (env_list('ISN_ALLOWED_HOSTS', []) + ['localhost'])[0].lstrip('.').replace('*', 'localhost'); no_redirect = type('NoRedirect', (u.HTTPRedirectHandler,), {'redirect_request': lambda *args: None}); u.build_opener(no_redirect).open(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host, 'X-Forwarded-Proto': 'https'}), timeout=8)"]

USER isn

# sh -c only to expand the two variables; exec hands PID 1 to gunicorn so it receives docker stop's SIGTERM.
# FORWARDED_ALLOW_IPS: the addresses of the proxies whose X-Forwarded-* headers gunicorn trusts.
CMD ["sh", "-c", "exec gunicorn isn.wsgi:application --bind 0.0.0.0:8000 --workers \"${GUNICORN_WORKERS:-3}\" --access-logfile - --forwarded-allow-ips \"${FORWARDED_ALLOW_IPS:-127.0.0.1}\""]
