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
# Behind a reverse proxy, set the TRUSTED_PROXIES setting to its address so client IPs (rate
# limits, session list) come from its X-Forwarded-For (app/auth/clientip.py decides, not uvicorn).
# The --http protocol caps the request line and headers (app/core/bodylimit.py).
CMD ["sh", "-c", "python -m app check-config && alembic upgrade head && exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --http app.core.bodylimit:LimitedHttpToolsProtocol --no-proxy-headers"]
