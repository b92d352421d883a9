# syntax=docker/dockerfile:1
# qualitymosaic tile server: the viewer is built with node, the server runs on slim Python.

FROM node:20-bookworm-slim AS viewer
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR \
    GDAL_HTTP_MERGE_CONSECUTIVE_RANGES=YES \
    GDAL_HTTP_MULTIPLEX=YES \
    GDAL_HTTP_VERSION=2 \
    GDAL_CACHEMAX=200 \
    VSI_CACHE=TRUE \
    VSI_CACHE_SIZE=5000000 \
    CPL_VSIL_CURL_CACHE_SIZE=200000000 \
    TILER_HOST=0.0.0.0 \
    TILER_PORT=8000 \
    TILER_WORKERS=2 \
    TILER_DEMO_DIR=/opt/qualitymosaic/demo
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY tiler/ tiler/
COPY --from=viewer /src/tiler/static/viewer/ tiler/static/viewer/
# the same install script CI runs
RUN bash scripts/install.sh \
    && useradd --system --uid 10001 --home-dir /nonexistent tiler \
    && tiler demo --output "$TILER_DEMO_DIR" \
    && chown -R tiler "$TILER_DEMO_DIR"
USER tiler
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['TILER_PORT']}/healthz\", timeout=4)"]
# collections: pass paths as arguments (docker run IMAGE tiler serve /data/items.json) or
# TILER_COLLECTIONS='["/data/items.json"]'; workers from TILER_WORKERS
CMD ["tiler", "serve"]
