FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY firezone firezone
COPY accounts accounts
COPY resources resources
COPY gateways gateways
COPY billing billing
COPY directory_sync directory_sync
COPY templates templates
COPY manage.py ./
# WhiteNoise serves the collected, content-hashed and compressed static files (settings.py).
ENV STATIC_MANIFEST=true
RUN pip install . && useradd --system --home /app firezone \
    && DEBUG=true python manage.py collectstatic --noinput
USER firezone
EXPOSE 8000
# Device sockets: no lifetime cap (idle ones are closed by the app), pings every 25 s; 10 s for
# the request head and 10 s for the WebSocket to be accepted (firezone/webserver.py).
CMD ["python", "-m", "firezone.webserver", "-b", "0.0.0.0", "-p", "8000", \
     "--websocket_timeout", "-1", "--ping-interval", "25", "--ping-timeout", "30", \
     "--websocket_connect_timeout", "10", "--request-head-timeout", "10", \
     "firezone.asgi:application"]
