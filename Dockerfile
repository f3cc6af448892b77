# syntax=docker/dockerfile:1
# One image for every SPM process: the container's command picks it
#   spm run ingest|attribution|metrics|gateway, spm migrate, ...
# The builder installs the project into a virtualenv; the runtime stage copies only
# that virtualenv, so no compiler, pip cache or source tree ships.
#
# The base image is pinned by tag in both stages; bump them together.
# checkov:skip=CKV_DOCKER_2:No HEALTHCHECK on purpose: Kubernetes ignores it and probes /healthz and /readyz itself.

FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/spm \
    PATH=/opt/spm/bin:$PATH

# The runtime stage runs this same interpreter path, so the venv's shebangs stay valid.
RUN python -m venv /opt/spm

WORKDIR /src
# Metadata first: dependency layers are reused while only the source changes.
COPY pyproject.toml README* ./
COPY libs ./libs
COPY services ./services
COPY spm ./spm
RUN pip install --no-cache-dir . \
    && python -m compileall -q /opt/spm/lib

FROM python:3.11.14-slim-bookworm AS runtime

ARG SPM_UID=10001
ARG SPM_GID=10001
# A fixed UID/GID so the Kubernetes securityContext (runAsUser 10001) and the image agree.
RUN groupadd --system --gid "${SPM_GID}" spm \
    && useradd --system --uid "${SPM_UID}" --gid spm --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin spm

COPY --from=builder /opt/spm /opt/spm

ENV PATH=/opt/spm/bin:$PATH \
    VIRTUAL_ENV=/opt/spm \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SPM_MODE=production \
    SPM_HOST=0.0.0.0 \
    SPM_LOG_JSON=true

WORKDIR /tmp
USER 10001:10001

# gateway, ingest, attribution, metrics (each process listens on its own).
EXPOSE 8000 8001 8002 8003

# No HEALTHCHECK: Kubernetes probes /healthz and /readyz itself.
ENTRYPOINT ["spm"]
CMD ["--help"]
