# syntax=docker/dockerfile:1
# The claw-operator image: `claw-operator run` as a non-root user, on a slim Python 3.11.
# Matches helm/claw-operator: entrypoint `claw-operator run` (the chart passes only flags),
# uid/gid 65532 (the chart's runAsUser/runAsGroup), metrics and health on port 8080, and
# nothing written to the root filesystem (the chart mounts it read-only, with /tmp writable).

# ---- build: resolve and install the package into a virtualenv -------------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/claw-operator
WORKDIR /src
# Every dependency ships manylinux wheels: no compiler is needed, here or below.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/claw-operator/bin/pip install --no-compile . \
 && /opt/claw-operator/bin/pip uninstall --yes pip setuptools wheel \
 && /opt/claw-operator/bin/python -m compileall -q /opt/claw-operator/lib

# ---- runtime: the virtualenv on a clean slim base, nothing else -------------------------------
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="claw-operator" \
      org.opencontainers.image.description="Kubernetes operator for ClawInstances on Fly.io" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/claw-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 65532 claw \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin claw

COPY --from=build /opt/claw-operator /opt/claw-operator

USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["claw-operator", "run"]
