# acp-mcp over streamable HTTP, for replicas behind a load balancer (see README, "Hosting").
# Build from a checkout: docker build -t acp-mcp .
# Any base with Python 3.11+ and its venv module will do: --build-arg BASE_IMAGE=... (the tests use Debian's python3).
# Behind a proxy that re-signs TLS with a CA of its own, hand pip that CA bundle as a build secret (podman: the same
# flags plus --format docker, without which the HEALTHCHECK is dropped):
#   docker build --secret id=pip-cert,src=ca-bundle.crt --build-arg PIP_CERT=/run/secrets/pip-cert -t acp-mcp .
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ARG PIP_CERT=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/acp-mcp/bin:$PATH \
    ACP_MCP_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY acp_mcp ./acp_mcp
# A virtual environment: the official Python image and a distribution's externally managed Python alike.
RUN --mount=type=secret,id=pip-cert \
    python3 -m venv /opt/acp-mcp \
    && pip install --no-cache-dir . "psycopg[binary]==3.3.9" \
    && useradd --system --uid 10001 --no-create-home acp

USER 10001
EXPOSE 8000

# The caller token (ACP_MCP_HTTP_TOKEN) is required: without it the server refuses to listen on 0.0.0.0.
# The health check follows the port the server listens on (ACP_MCP_PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['ACP_MCP_PORT'], timeout=2).status != 200)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["acp-mcp"]
CMD ["--transport", "streamable-http", "--stateless", "--host", "0.0.0.0"]
