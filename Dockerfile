# The exporter in a venv on any Debian-based image with Python 3.11 or later:
#
#   podman build -t stack-exporter .                                    # python:3.11-slim
#   podman build --build-arg BASE=localhost/base:bookworm -t stack-exporter .
#
# Both stages start FROM the same base, because the venv's python is a link to the
# base's.  The image runs as a non-root user, writes nothing to its root filesystem
# (`--read-only` works) and has the SES extra.  Its health check is `stack-exporter
# healthcheck`, which reads the same web config as the server: with TLS or basic auth
# on, run it with STACK_EXPORTER_WEB_CONFIG_FILE (read by both) and, for basic auth,
# STACK_EXPORTER_HEALTHCHECK_USERNAME and STACK_EXPORTER_HEALTHCHECK_PASSWORD_FILE
# (README, "Deploy"; tests/test_image.py builds and runs it).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# pip trusts the system's CA store (the proxy's CA, when the build mounts the host's)
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/stack-exporter
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN /opt/stack-exporter/bin/pip install ".[ses]" \
    && /opt/stack-exporter/bin/pip uninstall --yes pip setuptools \
    && /opt/stack-exporter/bin/stack-exporter --version

FROM ${BASE}
# a numeric user, so Kubernetes' runAsNonRoot can check it; its name is for ps and logs
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin stack-exporter
COPY --from=build /opt/stack-exporter /opt/stack-exporter
# the .pyc files were written at install: nothing to write on a read-only root
ENV PATH=/opt/stack-exporter/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 9847
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["stack-exporter", "healthcheck"]
# exec form: the exporter is PID 1 and gets SIGTERM itself (it stops in well under a second)
ENTRYPOINT ["stack-exporter"]
CMD ["--config.file=/etc/stack-exporter/config.yml"]
