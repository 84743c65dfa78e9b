"""`make bench` (second part): outbox delivery.

Starts the service as `make bench` does (one uvicorn worker, fresh SQLite database), with
EMAIL_BACKEND=smtp pointed at a local SMTP sink (aiosmtpd in this process, recording when
each Message-ID arrives). Each round queues N emails (5 000) straight into `email_outbox`,
in transactions of 500 rows, the way requests would (the server's dispatcher finds them at
its next poll: OUTBOX_POLL_SECONDS=0.2 here), then waits until all N reached the sink:

- messages/s: N ÷ (last hand-off − first queueing);
- queue → hand-off time per message (the row's created_at to its arrival), p50 and p95;
- the server's CPU time per message (user + system, all threads, from /proc; with
  `--worker`, the worker process's too);
- the same drain again while wrk saturates `/users/me` for all of it, and `/users/me`
  requests/s and p99 meanwhile, against the same quietly.

`--worker` delivers with a separate `python -m app outbox run` process instead of the
app's dispatcher (OUTBOX_DISPATCHER_ENABLED=false). Medians over the rounds; Markdown and
bench/results/outbox.json (outbox-worker.json with `--worker`).
"""

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from bench import report
from bench.server import REPO, BenchError, Server, login_cookie, migrate, register, server_env
from bench.wrk import INSTALL_HINT, run_wrk, write_script, wrk_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PASSWORD = "bench-password-123"
CHUNK = 500
TARGET_MESSAGES_PER_S = 300  # from the issue, on SQLite on this machine


class Sink:
    """An SMTP server that keeps only each message's Message-ID and arrival time."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self._lock = threading.Lock()
        with socket.socket() as probe:  # a free port (aiosmtpd's readiness check needs one)
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line[:11].lower() == b"message-id:":
                with self._lock:
                    self.arrivals[line[11:].strip().decode()] = now
                break
        return "250 OK"

    def start(self) -> int:
        self.controller.start()
        return self.port

    def stop(self) -> None:
        self.controller.stop()


def queue_emails(db_url: str, count: int, tag: str) -> dict[str, float]:
    """Insert `count` outbox rows (chunks of CHUNK per transaction); Message-ID → queued at."""
    from sqlalchemy import insert

    from app.core.db import create_engine
    from app.services.email.outbox import OutboxMessage, OutboxState
    from app.services.email.sender import new_message_id

    async def go() -> dict[str, float]:
        engine = create_engine(db_url)
        queued: dict[str, float] = {}
        try:
            for start in range(0, count, CHUNK):
                now = datetime.now(UTC)
                rows = []
                for n in range(start, min(count, start + CHUNK)):
                    message_id = new_message_id("shop@example.com")
                    rows.append(
                        {
                            "message_id": message_id,
                            "to_address": f"{tag}-{n}@example.com",
                            "template": "confirmation_code",
                            "locale": "ru",
                            "data": {
                                "name": "Покупатель",
                                "code": f"{n % 1000000:06d}",
                                "ttl_minutes": 10,
                            },
                            "state": OutboxState.PENDING,
                            "attempts": 0,
                            "created_at": now,
                            "next_attempt_at": now,
                        }
                    )
                    queued[message_id] = now.timestamp()
                async with engine.begin() as conn:
                    await conn.execute(insert(OutboxMessage), rows)
        finally:
            await engine.dispose()
        return queued

    return asyncio.run(go())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(
    server: Server,
    sink: Sink,
    db_url: str,
    count: int,
    tag: str,
    wait_s: float,
    worker: subprocess.Popen[bytes] | None = None,
) -> dict[str, float]:
    def cpu_seconds() -> float:
        own = process_cpu_seconds(worker.pid) if worker is not None else 0.0
        return server.cpu_seconds() + own

    cpu0 = cpu_seconds()
    queued = queue_emails(db_url, count, tag)
    deadline = time.monotonic() + wait_s
    while True:
        with sink._lock:
            arrived = {k: sink.arrivals[k] for k in queued if k in sink.arrivals}
        if len(arrived) == count:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{len(arrived)} of {count} emails reached the sink in {wait_s:.0f} s")
        time.sleep(0.05)
    cpu = cpu_seconds() - cpu0
    first = min(queued.values())
    last = max(arrived.values())
    latencies = [arrived[k] - queued[k] for k in queued]
    return {
        "messages_per_s": round(count / (last - first), 1),
        "p50_s": round(percentile(latencies, 0.50), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "cpu_ms_per_message": round(cpu / count * 1000, 3),
        "seconds": round(last - first, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement (5)")
    p.add_argument(
        "--worker",
        action="store_true",
        help="deliver with a separate `python -m app outbox run` process instead of the "
        "app's own dispatcher (OUTBOX_DISPATCHER_ENABLED=false)",
    )
    args = p.parse_args(argv)
    if wrk_path() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    m = report.machine()
    print(f"Machine: {report.machine_line(m)}", flush=True)
    sink = Sink()
    sink_port = sink.start()
    rounds = []
    try:
        with tempfile.TemporaryDirectory(prefix="shop-bench-outbox-") as tmp:
            workdir = Path(tmp)
            db_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            env = server_env(db_url, 1)
            env.update(
                EMAIL_BACKEND="smtp",
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(sink_port),
                SMTP_STARTTLS="false",
                OUTBOX_POLL_SECONDS="0.2",
            )
            if args.worker:
                env["OUTBOX_DISPATCHER_ENABLED"] = "false"
            migrate(db_url, env)
            script = write_script(workdir)
            server = Server(workdir, env, None)
            worker = None
            if args.worker:  # in the empty work directory: no .env is read
                worker = subprocess.Popen(
                    [sys.executable, "-m", "app", "outbox", "run"],
                    cwd=workdir,
                    env={**env, "PYTHONPATH": str(REPO)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            try:
                server.wait_ready()
                from app.auth.cookie import COOKIE_NAME

                register(server.port, "bench@example.com", PASSWORD, "+79123450000")
                cookie = login_cookie(server.port, "bench@example.com", PASSWORD, COOKIE_NAME)
                auth = {"Cookie": f"{COOKIE_NAME}={cookie}"}
                me = server.base + "/users/me"

                def wrk(duration: int = args.duration) -> dict[str, float]:
                    r = run_wrk(
                        me,
                        script=script,
                        duration_s=duration,
                        threads=1,
                        connections=16,
                        headers=auth,
                    )
                    if r.errors or not r.requests:
                        raise BenchError(f"/users/me: {r.errors} errors of {r.requests}")
                    return {"rps": r.rps, "p99_ms": r.p99_ms}

                wrk()  # warm-up
                for n in range(1, args.rounds + 1):
                    print(f"Round {n}/{args.rounds}", flush=True)
                    quiet = wrk()
                    alone = drain(server, sink, db_url, args.messages, f"a{n}", 300, worker)
                    print(f"  drain: {alone}", flush=True)
                    # wrk for as long as the drain is expected to last, so all of it is loaded
                    load_s = math.ceil(alone["seconds"] * 1.5) + 2
                    during: dict[str, float] = {}
                    loader = threading.Thread(target=lambda d=during, s=load_s: d.update(wrk(s)))
                    loader.start()
                    time.sleep(0.5)
                    loaded = drain(server, sink, db_url, args.messages, f"b{n}", 300, worker)
                    loader.join()
                    print(
                        f"  /users/me quiet {quiet}, during a drain {during}; that drain: {loaded}",
                        flush=True,
                    )
                    rounds.append(
                        {
                            "drain": alone,
                            "drain_with_api_load": loaded,
                            "me_quiet": quiet,
                            "me_during_drain": during,
                        }
                    )
            finally:
                server.stop()
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=30)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.stop()

    med = report.median

    def m_of(part: str, key: str) -> float:
        return med([r[part][key] for r in rounds])

    summary = {
        "messages_per_s": m_of("drain", "messages_per_s"),
        "p50_s": m_of("drain", "p50_s"),
        "p95_s": m_of("drain", "p95_s"),
        "cpu_ms_per_message": m_of("drain", "cpu_ms_per_message"),
        "messages_per_s_with_api_load": m_of("drain_with_api_load", "messages_per_s"),
        "me_rps_quiet": m_of("me_quiet", "rps"),
        "me_rps_during_drain": m_of("me_during_drain", "rps"),
        "me_p99_ms_quiet": m_of("me_quiet", "p99_ms"),
        "me_p99_ms_during_drain": m_of("me_during_drain", "p99_ms"),
    }
    met = summary["messages_per_s"] >= TARGET_MESSAGES_PER_S
    loaded_met = summary["messages_per_s_with_api_load"] >= TARGET_MESSAGES_PER_S
    md = "\n".join(
        [
            f"Outbox delivery ({datetime.now(UTC).date()}), {report.machine_line(m)}; SQLite, one uvicorn worker, "
            f"{'a separate `outbox run` worker process' if args.worker else 'the dispatcher inside the app'}, "
            f"{args.messages} emails per drain to a local aiosmtpd sink, medians of {args.rounds} rounds:",
            "",
            "| Measure | Value | Target |",
            "|---|---:|---|",
            f"| Messages/s | {summary['messages_per_s']:.0f} | ≥ {TARGET_MESSAGES_PER_S}: {'met' if met else 'missed'} |",
            f"| Queue → hand-off p50 / p95 (s; all {args.messages} queued at once) | {summary['p50_s']:.2f} / {summary['p95_s']:.2f} |  |",
            f"| Server CPU per message | {summary['cpu_ms_per_message']:.2f} ms |  |",
            f"| Messages/s while wrk saturates `/users/me` | {summary['messages_per_s_with_api_load']:.0f} | ≥ {TARGET_MESSAGES_PER_S}: {'met' if loaded_met else 'missed'} |",
            f"| `/users/me` requests/s, quiet / during a drain | {summary['me_rps_quiet']:.0f} / {summary['me_rps_during_drain']:.0f} |  |",
            f"| `/users/me` p99, quiet / during a drain | {summary['me_p99_ms_quiet']:.1f} / {summary['me_p99_ms_during_drain']:.1f} ms |  |",
        ]
    )
    results = RESULTS_DIR / ("outbox-worker.json" if args.worker else "outbox.json")
    report.write_results(results, m, summary=summary, rounds=rounds, markdown=md)
    print()
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
