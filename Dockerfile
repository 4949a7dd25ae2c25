# syntax=docker/dockerfile:1
# engram-audit in a container: the CLI as entrypoint, run as a non-root user.
#
#   docker build -t engram-audit:0.1.0 .
#   docker run --rm -v "$PWD:/work" --user "$(id -u):$(id -g)" engram-audit:0.1.0 \
#     check --env prod --snapshot fixtures/snapshots/prod-drifted.json -o sarif:out/prod.sarif
#
# Two stages on the same pinned base (docker-library/python: 3.12.13 on Debian trixie, slim):
# the build stage turns this checkout and its dependencies into wheels; the final stage installs
# only those wheels (no index, no compiler: the slim image has none and nothing adds one) from a
# bind mount, so neither the wheels nor the sources stay in a layer. Linted with hadolint
# (tests/test_container.py). The `demo` extra is not installed: it starts a PostgreSQL server.
ARG PYTHON_IMAGE=python:3.12.13-slim-trixie

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# engram_audit/builtin/policies is a link to ../../policies: copy both.
COPY pyproject.toml README.md LICENSE ./
COPY policies/ policies/
COPY engram_audit/ engram_audit/
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="engram-audit" \
      org.opencontainers.image.description="Policy-as-code compliance for Zep's PostgreSQL + pgvector store on Azure Flexible Server" \
      org.opencontainers.image.source="https://github.com/engram/engram-audit" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
      --no-index --find-links=/wheels /wheels/engram_audit-*.whl \
 && groupadd --system --gid 10001 engram-audit \
 && useradd --no-log-init --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /work --shell /usr/sbin/nologin engram-audit
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["engram-audit"]
CMD ["--help"]
