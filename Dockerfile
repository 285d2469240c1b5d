# The Knowlix image: web, worker and beat run it with `scripts/service NAME`
# (docker-compose.yml). It runs as the unprivileged user "knowlix".
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KNOWLIX_VAR_DIR=/app/var
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin knowlix
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir . \
    && mkdir -p /app/var/media /app/var/staticfiles \
    && chown -R knowlix:knowlix /app/var
USER knowlix
EXPOSE 8000
CMD ["scripts/service", "web"]
