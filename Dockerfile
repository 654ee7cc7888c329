# syntax=docker/dockerfile:1.7
# Build: docker build -t returns-router .
# Run:   docker run -p 8000:8000 -e DATABASE_URL=postgresql+asyncpg://... returns-router

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only the dependencies go into the venv, so a change to the code does not reinstall them;
# the code itself is copied into /srv and run from there, beside its migrations.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install . && pip uninstall -y returns-router

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    LOG_FORMAT=json DATABASE_URL=sqlite+aiosqlite:////data/returns-router.db
RUN groupadd --system --gid 10001 router \
 && useradd --system --uid 10001 --gid router --home-dir /srv --shell /usr/sbin/nologin router \
 && mkdir -p /data && chown router:router /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
# `python -m app` runs the package from /srv; app/db/migrate.py finds ../migrations beside it.
# The code stays root's: the service can read it, not change it.
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
USER router
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["python", "-m", "app", "serve", "--host", "0.0.0.0", "--port", "8000"]
