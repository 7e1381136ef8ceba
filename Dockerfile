# acp-mcp over streamable HTTP, for replicas behind a load balancer (see README, "Hosting").
# Build from a checkout: docker build -t acp-mcp .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY acp_mcp ./acp_mcp
RUN pip install --no-cache-dir . "psycopg[binary]==3.3.9" \
    && useradd --system --uid 10001 --no-create-home acp

USER 10001
EXPOSE 8000

# The caller token (ACP_MCP_HTTP_TOKEN) is required: without it the server refuses to listen on 0.0.0.0.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["acp-mcp"]
CMD ["--transport", "streamable-http", "--stateless", "--host", "0.0.0.0", "--port", "8000"]
