# syntax=docker/dockerfile:1
#
# One image for all three services (users, rules, sync). They share the runtime (server
# bootstrap, auth, metrics, migrations) and the generated protobuf code, and they are
# released together: one build, one SBOM, one vulnerability scan, one tag to roll out.
# Each container picks its service with `command` in the Kubernetes manifests, e.g.
# `steward-rules serve`, `steward-sync migrate`, `steward-users await-schema --timeout 600`.
#
#   docker build -t steward:dev .
#   docker run --rm -p 50051:50051 --env-file users.env steward:dev    # or: steward:dev steward-rules serve
#   (users.env: STEWARD_JWT_SECRET, STEWARD_USERS_DATABASE_URL=postgresql+psycopg://..., STEWARD_MIGRATE_ON_START=true)
#
# The image writes nothing outside /tmp (the root filesystem may be read-only), so give it a
# database URL rather than relying on the SQLite default under ./var.
#
# Both stages must use the same base: /opt/venv's interpreter links to /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------
# Build stage: compilers, the virtualenv, generated protobuf code.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# durable-rules ships as source only: its C engine needs a compiler (this stage only).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
# The pins are read from [project].dependencies, so there is no second list to keep in sync.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Generated code is not committed: build it from the contracts, like `make protos` does. The
# compiler (grpcio-tools, the `codegen` extra) gets a virtualenv of its own, left in this stage:
# it builds the code, the services do not run it.
RUN python -m venv /opt/codegen \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['codegen']))" \
        > /tmp/codegen.txt \
    && /opt/codegen/bin/pip install -r /tmp/codegen.txt
COPY protos/ protos/
COPY scripts/gen_protos.py scripts/
RUN /opt/codegen/bin/python scripts/gen_protos.py && python -m compileall -q gen

# The services themselves (with the alembic migrations as package data).
COPY services/ services/
RUN pip install --no-deps . \
    && PYTHONPATH=/src/gen python -P -c "import services.users.app, services.rules.app, services.sync.app"

# ---------------------------------------------------------------------------------------
# Runtime stage: the interpreter, the virtualenv and gen/ only; no compilers, no pip runs.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="steward" \
      org.opencontainers.image.description="Steward gRPC services: users, rules, sync (one image, pick with the command)"

# A fixed numeric uid/gid: Kubernetes checks runAsNonRoot against it (runAsUser: 10001).
RUN groupadd --system --gid 10001 steward \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin steward

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/steward/gen \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STEWARD_HOST=0.0.0.0 \
    STEWARD_LOG_FORMAT=json

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/gen /opt/steward/gen

# Nothing is written here: the root filesystem may be read-only (Kubernetes mounts /tmp).
WORKDIR /opt/steward
USER 10001:10001

# gRPC: users 50051, rules 50052, sync 50053; Prometheus /metrics: 9451, 9452, 9453.
EXPOSE 50051 50052 50053 9451 9452 9453 50061

# Python is PID 1 and handles SIGTERM itself (NOT_SERVING, drain, exit 0).
CMD ["steward-users", "serve"]
