# villagecast production image: Debian ffmpeg and espeak-ng, non-root, data in the /data volume.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VILLAGECAST_DATA_DIR=/data \
    VILLAGECAST_HOST=0.0.0.0 \
    VILLAGECAST_PORT=8080

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --create-home --home-dir /home/villagecast villagecast \
    && mkdir -p /data \
    && chown villagecast:villagecast /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY devices ./devices
COPY recordings ./recordings
COPY streaming ./streaming
COPY broadcast ./broadcast
COPY web ./web
RUN pip install --no-cache-dir '.[postgres]'

USER villagecast
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VILLAGECAST_PORT', '8080'), timeout=4)"]

CMD ["villagecast", "serve"]
