# VoiceCRM: one image for the web (daphne), Celery workers and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libpq5 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .

# collectstatic only needs a syntactically valid configuration, not real secrets.
RUN DEBUG=0 SECRET_KEY=collectstatic-only-key-0123456789-abcdefghijklmnopqrstuvwxyz \
    python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 voicecrm && mkdir -p /data/media /data/cache && chown -R voicecrm /data
USER voicecrm
ENV MEDIA_ROOT=/data/media SPEECH_CACHE_DIR=/data/cache TRUST_PROXY_HEADERS=1
EXPOSE 8000
# The websocket message limit is enforced by daphne itself, before a message is buffered. No
# --proxy-headers: it believes X-Forwarded-For from any peer; the app reads it from TRUSTED_PROXIES only.
# On SIGTERM live calls end politely within SHUTDOWN_GRACE_SECONDS (voicecrm/asgi.py); daphne then
# gives each closed connection as long to store its call (--application-close-timeout), and
# docker-compose.yml's stop_grace_period leaves room for both.
ENV SHUTDOWN_GRACE_SECONDS=20
CMD ["sh", "-c", "exec daphne --bind 0.0.0.0 --port 8000 --websocket-max-message-size ${WEBSOCKET_MAX_MESSAGE_BYTES:-16384} --application-close-timeout ${SHUTDOWN_GRACE_SECONDS} voicecrm.asgi:application"]
