# The API image: locked dependencies, non-root, migrations applied at start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
COPY templates ./templates

RUN useradd --system --uid 10001 shop
USER shop

EXPOSE 8000
# Requests are logged by the reverse proxy in front (nginx, a load balancer), so the
# service's own access log is off; ACCESS_LOG=true turns it on where nothing else logs.
ENV ACCESS_LOG=false
# `python -m app serve` (app/cli/serve.py) runs WEB_CONCURRENCY uvicorn workers (default:
# the CPU count) and refuses more than one without REDIS_URL (rate limits must be shared).
# Behind a reverse proxy, set the TRUSTED_PROXIES setting to its address so client IPs (rate
# limits, session list) come from its X-Forwarded-For (app/auth/clientip.py decides, not uvicorn).
CMD ["sh", "-c", "python -m app check-config && alembic upgrade head && exec python -m app serve --host 0.0.0.0 --port 8000"]
