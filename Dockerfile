# planloop: one image, two commands.
#   docker run IMAGE                 -> planloop serve   (gunicorn, port 8000)
#   docker run IMAGE worker          -> planloop worker  (scheduler + outbox relay)
#   docker run IMAGE db upgrade      -> apply migrations (an explicit step before serve/worker)
# Config: a planloop.toml at $PLANLOOP_CONFIG (mount it), secrets in it as env:NAME / file:/path.

# ---- build: a virtualenv with planloop and its dependencies ------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is reused until they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

COPY bot ./bot
COPY handlers ./handlers
COPY cards ./cards
COPY storage ./storage
COPY appraisal ./appraisal
COPY sources ./sources
RUN pip install --no-cache-dir --no-deps .

# ---- runtime: slim, non-root, no compiler, no pip cache ---------------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="planloop" \
      org.opencontainers.image.description="Weekly plan -> execution -> appraisal loop in Feishu/Lark, DingTalk and WeCom"

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PLANLOOP_CONFIG=/etc/planloop/planloop.toml \
    PORT=8000

RUN groupadd --system --gid 10001 planloop \
 && useradd --system --uid 10001 --gid planloop --home-dir /app --no-create-home --shell /usr/sbin/nologin planloop \
 && mkdir -p /app /data /etc/planloop \
 && chown planloop:planloop /data

COPY --from=build /opt/venv /opt/venv
# The example team file: `planloop demo` and `planloop apply examples/team.toml` find it here.
COPY examples /app/examples

WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# SQLite deployments keep the database (and the worker lock) here; PostgreSQL ones need no volume.
VOLUME ["/data"]
EXPOSE 8000

# The slim image has no curl: a few lines of Python probe /healthz on $PORT (a worker container
# sets PLANLOOP_HEALTHCHECK_URL to its own health port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "bot.ops.healthcheck"]

ENTRYPOINT ["planloop"]
CMD ["serve"]
