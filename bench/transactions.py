"""`make bench` (fourth part): order lists over a million orders.

Per database (SQLite, and PostgreSQL when reachable): a fresh, migrated database seeded
by `python -m app seed --transactions N` (default 1 000 000 over 10 000 users, one of whom
holds a tenth), the service started as `make bench` starts it (one uvicorn worker), then,
for each list, REQUESTS sequential requests over one keep-alive connection:

- `first`: that customer's `GET /transactions` first page (limit 20);
- `deep`: the same list after --deep-steps (1 000) cursor steps (the 20 001st order on);
- `admin status`: `GET /admin/transactions?status=delivered`, first page, and as deep;
  the same for `status=not_paid_in_time` (the deadline applied: an OR in the query), and
  the customer's own `not_paid_in_time` first page;

p50/p95 client-side latency and the server's CPU time per request (from /proc). Targets
(the issue): deep within 1.5× of first (p50); every list under 20 ms p95 on PostgreSQL.
Markdown on stdout; bench/results/transactions-<database>.json.

    python -m bench.transactions [--transactions N] [--users U] [--requests R]
                                 [--deep-steps S] [--database sqlite|postgresql|both]
"""

import argparse
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.server import HOST, BenchError, Server, login_cookie, migrate, server_env

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
COOKIE = "shop_session"
DEEP_STEPS = 1000
PAGE = 20
TARGET_DEEP_RATIO = 1.5
TARGET_P95_MS = 20.0


def run_cli(env: dict[str, str], *args: str, timeout: float = 3600) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=None,  # the progress bar goes to the terminal
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"python -m app {' '.join(args)} failed: {result.stdout}")
    return result.stdout


def postgres_database() -> tuple[str, Any] | None:
    """A fresh PostgreSQL database (its URL and a function dropping it), or None."""
    import asyncio

    import asyncpg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")
    name = f"bench_orders_{secrets.token_hex(4)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL not reachable ({exc}); SQLite only", flush=True)
        return None
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    return url, lambda: asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Client:
    """One keep-alive connection; each call returns (status, body, seconds)."""

    def __init__(self, port: int, cookie: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {"Cookie": f"{COOKIE}={cookie}"}

    def get(self, path: str) -> tuple[int, bytes, float]:
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # uvicorn closes a connection idle for 5 s (while the other client walked its
            # cursor): reconnect once; the warm-up requests absorb it.
            self.conn.close()
            return self._get(path)

    def _get(self, path: str) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - start


def deep_cursor(client: Client, path: str, steps: int) -> str:
    """The cursor after `steps` pages of `path`."""
    cursor = None
    for _ in range(steps):
        sep = "&" if "?" in path else "?"
        status, body, _ = client.get(path + (f"{sep}cursor={cursor}" if cursor else ""))
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status} {body[:200]!r}")
        cursor = json.loads(body)["next_cursor"]
        if cursor is None:
            raise BenchError(f"{path} ended before {steps} pages")
    assert cursor is not None
    return cursor


def measure(server: Server, client: Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(10):  # warm caches and the connection
        client.get(path)
    cpu_before = server.cpu_seconds()
    latencies = []
    for _ in range(requests):
        status, body, seconds = client.get(path)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status} {body[:200]!r}")
        latencies.append(seconds * 1000)
    cpu = server.cpu_seconds() - cpu_before
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "cpu_ms_per_request": round(cpu / requests * 1000, 2),
    }


def bench_database(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = server_env(url, 1)
    migrate(url, env)
    print(f"[{kind}] seeding {args.transactions} orders over {args.users} users", flush=True)
    started = time.monotonic()
    out = run_cli(env, "seed", "--transactions", str(args.transactions), "--users", str(args.users))
    seed_seconds = time.monotonic() - started
    found = re.search(r"(seed-\S+@example\.com) holds (\d+)\..*: (\S+)\s*$", out)
    if not found:
        raise BenchError(f"unexpected seed output: {out}")
    heavy, held, password = found.group(1), int(found.group(2)), found.group(3)
    admin_email = f"bench-admin-{secrets.token_hex(3)}@example.com"
    admin_password = secrets.token_urlsafe(12)
    run_cli(
        env, "create-admin", "--email", admin_email, "--password", admin_password, "--name", "Bench"
    )
    server = Server(workdir, env, None)
    try:
        server.wait_ready()
        customer = Client(server.port, login_cookie(server.port, heavy, password, COOKIE))
        staff = Client(server.port, login_cookie(server.port, admin_email, admin_password, COOKIE))
        mine = f"/transactions?limit={PAGE}"
        by_status = f"/admin/transactions?status=delivered&limit={PAGE}"
        # not_paid_in_time applies the deadline: stored so, or unpaid and overdue (an OR).
        expired = f"/admin/transactions?status=not_paid_in_time&limit={PAGE}"
        lists = {
            "first page (customer)": (customer, mine),
            "deep page (customer)": (
                customer,
                f"{mine}&cursor={deep_cursor(customer, mine, args.deep_steps)}",
            ),
            "status=delivered, first page (admin)": (staff, by_status),
            "status=delivered, deep page (admin)": (
                staff,
                f"{by_status}&cursor={deep_cursor(staff, by_status, args.deep_steps)}",
            ),
            "status=not_paid_in_time, first page (admin)": (staff, expired),
            "status=not_paid_in_time, deep page (admin)": (
                staff,
                f"{expired}&cursor={deep_cursor(staff, expired, args.deep_steps)}",
            ),
            "customer's not_paid_in_time, first page": (
                customer,
                f"{mine}&status=not_paid_in_time",
            ),
        }
        figures = {}
        for name, (client, path) in lists.items():
            figures[name] = measure(server, client, path, args.requests)
            print(f"[{kind}] {name}: {figures[name]}", flush=True)
    finally:
        server.stop()
    first = figures["first page (customer)"]["p50_ms"]
    deep = figures["deep page (customer)"]["p50_ms"]
    return {
        "database": kind,
        "orders": args.transactions,
        "users": args.users,
        "heavy_customer_orders": held,
        "seed_seconds": round(seed_seconds, 1),
        "requests_per_list": args.requests,
        "deep_steps": args.deep_steps,
        "lists": figures,
        "deep_vs_first_p50": round(deep / first, 2),
        "worst_p95_ms": max(f["p95_ms"] for f in figures.values()),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"**{result['database']}**, {result['orders']:,} orders over {result['users']:,} users "
        f"(the customer holds {result['heavy_customer_orders']:,}); seeded in "
        f"{result['seed_seconds']} s; {result['requests_per_list']} sequential requests per list; the deep page is "
        f"{result['deep_steps']} cursor steps in",
        "",
        "| list | p50 ms | p95 ms | server CPU ms/request |",
        "|---|---|---|---|",
    ]
    for name, f in result["lists"].items():
        lines.append(f"| {name} | {f['p50_ms']} | {f['p95_ms']} | {f['cpu_ms_per_request']} |")
    lines.append("")
    lines.append(
        f"Deep page vs first (p50): {result['deep_vs_first_p50']}× (target ≤ {TARGET_DEEP_RATIO}); "
        f"worst p95 {result['worst_p95_ms']} ms (target < {TARGET_P95_MS} ms on PostgreSQL)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--deep-steps", type=int, default=DEEP_STEPS, help="cursor steps to the deep page"
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    m = report.machine()
    print(f"Machine: {report.machine_line(m)}", flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    status = 0
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as tmp:
        targets: list[tuple[str, str, Any]] = []
        if args.database in ("sqlite", "both"):
            targets.append(("sqlite", f"sqlite+aiosqlite:///{tmp}/orders.db", None))
        if args.database in ("postgresql", "both"):
            made = postgres_database()
            if made is not None:
                targets.append(("postgresql", made[0], made[1]))
        for kind, url, drop in targets:
            try:
                result = bench_database(kind, url, args, Path(tmp))
            except BenchError as exc:
                print(f"[{kind}] {exc}", file=sys.stderr)
                status = 1
                continue
            finally:
                if drop is not None:
                    drop()
            result["machine"] = m
            (RESULTS_DIR / f"transactions-{kind}.json").write_text(json.dumps(result, indent=2))
            print(markdown(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
