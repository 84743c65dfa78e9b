"""`python -m app serve [--host H] [--port P]`: the service as the image runs it.

uvicorn with WEB_CONCURRENCY worker processes (default: the machine's CPU count), the
request-size-limiting HTTP protocol (app/core/bodylimit.py), no proxy headers (client IPs
come from app/auth/clientip.py and TRUSTED_PROXIES), and the access log as ACCESS_LOG says.

More than one worker needs REDIS_URL: rate-limit counters kept in memory would be per
process, each worker allowing the full limit. The command refuses with that reason
(exit 1) instead of starting a service whose limits do not hold.
"""

import argparse
import os

from app.cli.common import REFUSED, Command, CommandError
from app.core.config import get_settings

HTTP_PROTOCOL = "app.core.bodylimit:LimitedHttpToolsProtocol"


def run(args: argparse.Namespace) -> None:
    import uvicorn  # noqa: PLC0415  (only this command serves)

    settings = get_settings()
    workers = settings.WEB_CONCURRENCY or os.cpu_count() or 1
    if workers > 1 and not settings.REDIS_URL:
        source = "WEB_CONCURRENCY" if settings.WEB_CONCURRENCY else "one per CPU by default"
        raise CommandError(
            f"{workers} worker processes ({source}) need REDIS_URL: without it each keeps its "
            "own rate-limit counters and allows the full limit; set REDIS_URL, or "
            "WEB_CONCURRENCY=1",
            REFUSED,
        )
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=workers,
        http=HTTP_PROTOCOL,
        proxy_headers=False,
        access_log=settings.ACCESS_LOG,
        log_level="info",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")


COMMAND = Command(
    name="serve",
    help="serve the API as the image does: WEB_CONCURRENCY workers, ACCESS_LOG",
    description=(
        "Run uvicorn with WEB_CONCURRENCY worker processes (default: the CPU count), the"
        " request-size limits and ACCESS_LOG. More than one worker needs REDIS_URL (rate"
        " limits shared between processes): without it the command refuses (exit 1)."
    ),
    configure=configure,
    run=run,
)
