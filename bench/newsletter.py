"""`make bench` (third part): a newsletter to 10 000 subscribers.

Starts the service as `make bench` does (one uvicorn worker, fresh SQLite database,
EMAIL_BACKEND=smtp to a local aiosmtpd sink, the dispatcher inside the app), adds 10 000
active, confirmed, opted-in users straight to the database, then per round: creates a
draft through `POST /admin/newsletters` and measures

- `send`: the wall time of `POST /admin/newsletters/{id}/send` (it queues one outbox row
  per recipient in the request's transaction) and the server's CPU time during it;
- delivery: messages/s from the send's start until the last of the newsletter's 10 000
  emails reached the sink, and the server's CPU time per message (user + system, all
  threads, and the composing process, from /proc).

`--dkim` signs every email (a fresh 2048-bit RSA key); `--compose-processes 0` composes
in a thread of the server instead of a separate process. Medians over the rounds; Markdown
and bench/results/newsletter[-dkim]-p<N>.json.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.outbox import Sink
from bench.server import BenchError, Server, login_cookie, migrate, register, request, server_env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PASSWORD = "bench-password-123"
TARGET_SEND_S = 2.0  # from the issue
TARGET_MESSAGES_PER_S = 300


class NewsletterSink(Sink):
    """Counts the newsletter emails (those with List-Unsubscribe) and when each arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.bulk: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0].lower()
        if b"\r\nlist-unsubscribe-post:" in head:
            with self._lock:
                self.bulk.append(time.time())
        return "250 OK"


def add_subscribers(db_url: str, count: int) -> None:
    from sqlalchemy import insert, update

    from app.core.db import create_engine
    from app.types.enums import UserRole
    from app.users.models import User

    async def go() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                rows = [
                    {
                        "id": uuid.uuid4(),
                        "email": f"reader-{n}@example.com",
                        "hashed_password": "!",  # never logs in
                        "name": f"Читатель {n}",
                        "role": UserRole.USER,
                        "is_active": True,
                        "is_verified": True,
                        "newsletter_opt_in": True,
                    }
                    for n in range(count)
                ]
                for start in range(0, count, 1000):
                    await conn.execute(insert(User), rows[start : start + 1000])
                await conn.execute(
                    update(User)
                    .where(User.email == "bench-admin@example.com")
                    .values(role=UserRole.ADMIN)
                )
        finally:
            await engine.dispose()

    asyncio.run(go())


def dkim_key(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.newsletter", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--recipients", type=int, default=10_000)
    p.add_argument("--dkim", action="store_true", help="sign every email with DKIM")
    p.add_argument(
        "--compose-processes",
        type=int,
        default=1,
        help="OUTBOX_COMPOSE_PROCESSES for the server (1, the default; 0: a thread)",
    )
    args = p.parse_args(argv)

    m = report.machine()
    print(f"Machine: {report.machine_line(m)}", flush=True)
    sink = NewsletterSink()
    sink_port = sink.start()
    rounds = []
    try:
        with tempfile.TemporaryDirectory(prefix="shop-bench-newsletter-") as tmp:
            workdir = Path(tmp)
            db_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            env = server_env(db_url, 1)
            env.update(
                EMAIL_BACKEND="smtp",
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(sink_port),
                SMTP_STARTTLS="false",
                OUTBOX_POLL_SECONDS="0.2",
                EMAIL_FROM="news@shop.test",
                OUTBOX_COMPOSE_PROCESSES=str(args.compose_processes),
            )
            if args.dkim:
                env.update(
                    DKIM_DOMAIN="shop.test",
                    DKIM_SELECTOR="bench",
                    DKIM_PRIVATE_KEY_FILE=str(dkim_key(workdir)),
                )
            migrate(db_url, env)
            server = Server(workdir, env, None)
            try:
                server.wait_ready()
                from app.auth.cookie import COOKIE_NAME

                register(server.port, "bench-admin@example.com", PASSWORD, "+79123450000")
                add_subscribers(db_url, args.recipients)
                cookie = login_cookie(server.port, "bench-admin@example.com", PASSWORD, COOKIE_NAME)
                headers = {"Cookie": f"{COOKIE_NAME}={cookie}", "Content-Type": "application/json"}
                for n in range(1, args.rounds + 1):
                    draft = json.dumps(
                        {
                            "subject": f"{{{{ name }}}}, выпуск {n}",
                            "html": "<h1>Новинки недели</h1><p>{{ name }}, для вас −20% на всё"
                            " до воскресенья.</p>" + "<p>Подробнее на сайте.</p>" * 10,
                            "text": "{{ name }}, для вас −20% на всё до воскресенья.",
                        }
                    ).encode()
                    status, _, body = request(
                        server.port, "POST", "/admin/newsletters", draft, headers
                    )
                    if status != 201:
                        raise BenchError(f"create: HTTP {status} {body[:300]!r}")
                    newsletter_id = json.loads(body)["id"]
                    with sink._lock:
                        sink.bulk.clear()
                    cpu0 = server.cpu_seconds()
                    started = time.time()
                    status, _, body = request(
                        server.port,
                        "POST",
                        f"/admin/newsletters/{newsletter_id}/send",
                        b"",
                        headers,
                    )
                    send_s = time.time() - started
                    send_cpu = server.cpu_seconds() - cpu0
                    if status != 202 or json.loads(body)["recipients"] != args.recipients:
                        raise BenchError(f"send: HTTP {status} {body[:300]!r}")
                    deadline = time.monotonic() + 600
                    while True:
                        with sink._lock:
                            arrived = list(sink.bulk)
                        if len(arrived) >= args.recipients:
                            break
                        if time.monotonic() > deadline:
                            raise BenchError(f"{len(arrived)} of {args.recipients} in 600 s")
                        time.sleep(0.05)
                    cpu = server.cpu_seconds() - cpu0
                    seconds = max(arrived) - started
                    result = {
                        "send_s": round(send_s, 3),
                        "send_cpu_s": round(send_cpu, 3),
                        "messages_per_s": round(args.recipients / seconds, 1),
                        "cpu_ms_per_message": round(cpu / args.recipients * 1000, 3),
                        "seconds": round(seconds, 1),
                    }
                    print(f"Round {n}/{args.rounds}: {result}", flush=True)
                    rounds.append(result)
            finally:
                server.stop()
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.stop()

    summary = {key: report.median([r[key] for r in rounds]) for key in rounds[0]}
    send_met = summary["send_s"] < TARGET_SEND_S
    rate_met = summary["messages_per_s"] >= TARGET_MESSAGES_PER_S
    md = "\n".join(
        [
            f"Newsletter ({datetime.now(UTC).date()}), {report.machine_line(m)}; SQLite, one "
            f"uvicorn worker, the dispatcher inside the app (composing in "
            f"{args.compose_processes or 'no'} separate process(es)), {args.recipients} recipients to a "
            f"local aiosmtpd sink{', DKIM-signed' if args.dkim else ''}, medians of "
            f"{args.rounds} rounds:",
            "",
            "| Measure | Value | Target |",
            "|---|---:|---|",
            f"| `send` answers in | {summary['send_s']:.2f} s (server CPU {summary['send_cpu_s']:.2f} s) | < {TARGET_SEND_S:g} s: {'met' if send_met else 'missed'} |",
            f"| Delivery, messages/s | {summary['messages_per_s']:.0f} | ≥ {TARGET_MESSAGES_PER_S}: {'met' if rate_met else 'missed'} |",
            f"| Server CPU per message | {summary['cpu_ms_per_message']:.2f} ms |  |",
        ]
    )
    name = "newsletter" + ("-dkim" if args.dkim else "") + f"-p{args.compose_processes}"
    results = RESULTS_DIR / f"{name}.json"
    report.write_results(results, m, summary=summary, rounds=rounds, markdown=md)
    print()
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
