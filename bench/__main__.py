"""`make bench`: the service as the image runs it (`python -m app serve`, ACCESS_LOG=false,
WEB_CONCURRENCY 1, and 2 when Redis answers), beside the two apps of bench/baseline.py
(a bare FastAPI `/healthz`; a plain fastapi-users cookie app), each on a fresh SQLite
database (or, with `--postgres URL`, a fresh PostgreSQL database on that server, as
docker-compose deploys it), measured in one run, variants interleaved in every round:

1. `/healthz` requests/s and server CPU per request: the bare app, the service;
2. authenticated `/users/me`: the plain fastapi-users app, the service;
3. the service's `/users/me` while four clients log in back to back (one worker);
4. with two workers: `/healthz` and `/users/me` again;

then print the medians over the rounds with their ratios, as a table and as Markdown for
the README, and write them to bench/results/latest.json (latest-postgres.json with
--postgres).

The load comes from wrk (C), so it takes little of the CPU the Python server needs. Nothing
is pinned by default: the server's password-hash thread is meant to run on the core the
event loop does not use, and pinning the whole server to one core (`--pin`) would measure
a one-core deployment instead. Besides throughput and latency, the bench reports the
server's CPU time per request (user + system, all threads and worker processes, from
/proc), which is far less sensitive to other load on the machine than requests/s.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench import report
from bench.server import (
    HOST,
    BenchError,
    Server,
    login_cookie,
    migrate,
    register,
    serve_command,
    server_env,
    uvicorn_command,
)
from bench.storm import LoginStorm
from bench.wrk import INSTALL_HINT, WrkResult, run_wrk, write_script, wrk_path

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
PASSWORD = "bench-password-123"
PLAIN_COOKIE = "plain_session"  # bench/baseline.py
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STORM_SETTLE_S = 1.0  # let the storm reach a steady state before measuring
BUSY_WARNING = 0.15  # warn when other processes use more than this share of the CPUs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput and latency of /healthz and /users/me, quiet and during a "
        "login storm (Linux; needs wrk). Results: bench/results/latest.json.",
    )
    p.add_argument("--rounds", type=int, default=5, help="rounds; medians are reported (5)")
    p.add_argument("--duration", type=int, default=5, help="seconds per measurement (5)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--storm-clients", type=int, default=4, help="login clients (4)")
    p.add_argument(
        "--password-hash-threads",
        type=int,
        default=1,
        help="the server's PASSWORD_HASH_THREADS (1, the default setting)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis for the two-worker service (more than one worker needs REDIS_URL); "
        f"when it does not answer, two workers are not measured (default {DEFAULT_REDIS_URL}, "
        "or BENCH_REDIS_URL)",
    )
    p.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help="run every app on a fresh database created on this PostgreSQL server (e.g. "
        "postgresql://postgres@127.0.0.1:5432; dropped afterwards) instead of SQLite",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to one half of the cores and wrk and the login "
        "clients to the other (default: no pinning)",
    )
    p.add_argument(
        "--keep-server",
        action="store_true",
        help="print the servers' PIDs and wait for Enter before measuring (e.g. to attach py-spy)",
    )
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 20 and 1 <= args.duration <= 60):
        p.error("--rounds must be 1..20 and --duration 1..60")
    if not (1 <= args.connections <= 1000 and 1 <= args.storm_clients <= 16):
        p.error("--connections must be 1..1000 and --storm-clients 1..16")
    return args


def cpu_split(pin: bool) -> tuple[str | None, str | None, str]:
    """(server cpus, load cpus, description) for taskset."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(cpus) < 2:
        return None, None, "no CPU pinning"
    half = len(cpus) // 2
    load, srv = ",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:]))
    return srv, load, f"server pinned to CPU {srv}, wrk and login clients to CPU {load}"


def show(label: str, m: dict[str, float]) -> None:
    line = (
        f"  {label:<24} {m['rps']:>8.0f} req/s   p50 {m['p50_ms']:6.2f} ms   "
        f"p99 {m['p99_ms']:7.2f} ms   server CPU {m['server_cores']:.2f} cores"
    )
    if "cpu_us_per_request" in m:
        line += f", {m['cpu_us_per_request']:.0f} us/request"
    if "logins_per_s" in m:
        line += f"   logins {m['logins_per_s']:.1f}/s"
    print(line, flush=True)


def checked(label: str, r: WrkResult) -> WrkResult:
    if r.errors:
        raise BenchError(f"{label}: {r.errors} failed requests out of {r.requests}")
    if r.requests == 0:
        raise BenchError(f"{label}: no request completed")
    return r


def start_servers(
    args: argparse.Namespace,
    workdir: Path,
    databases: "Databases",
    server_cpus: str | None,
    redis_url: str | None,
) -> dict[str, Server]:
    """The servers, each with its own database: the service with 1 worker (and 2 when
    Redis answers: more than one worker needs REDIS_URL), the plain and the bare app."""
    servers: dict[str, Server] = {}
    worker_counts = [1, 2] if redis_url else [1]
    for workers in worker_counts:
        db_url = databases.new(f"service{workers}")
        env = server_env(db_url, args.password_hash_threads)
        env.update(WEB_CONCURRENCY=str(workers), ACCESS_LOG="false")  # the image's setting
        if workers > 1:
            env["REDIS_URL"] = redis_url or ""
        migrate(db_url, env)
        servers[f"service{workers}"] = Server(
            workdir, env, server_cpus, serve_command, name=f"service{workers}"
        )
    base_env = server_env("sqlite+aiosqlite://", args.password_hash_threads)
    base_env.update(
        BASELINE_DATABASE_URL=databases.new("plain"),
        BASELINE_SECRET=base_env["SECRET_KEY"],
    )
    servers["plain"] = Server(
        workdir, base_env, server_cpus, uvicorn_command("bench.baseline:plain_app"), name="plain"
    )
    servers["bare"] = Server(
        workdir, base_env, server_cpus, uvicorn_command("bench.baseline:bare_app"), name="bare"
    )
    return servers


class Databases:
    """Fresh, empty databases, one per app: SQLite files in the bench's directory, or
    databases created on the --postgres server and dropped when the bench leaves."""

    def __init__(self, postgres: str | None, workdir: Path) -> None:
        self.workdir = workdir
        self.server = urllib.parse.urlsplit(postgres) if postgres else None
        self.created: list[str] = []

    def __enter__(self) -> "Databases":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for database in self.created:
            psql(self.admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @property
    def admin_url(self) -> str:
        assert self.server is not None
        return self.server._replace(scheme="postgresql", path="/postgres").geturl()

    def new(self, name: str) -> str:
        if self.server is None:
            return f"sqlite+aiosqlite:///{self.workdir / f'{name}.db'}"
        database = f"shop_bench_{name}_{os.getpid()}"
        psql(
            self.admin_url, f'DROP DATABASE IF EXISTS "{database}"', f'CREATE DATABASE "{database}"'
        )
        self.created.append(database)
        return self.server._replace(scheme="postgresql+asyncpg", path=f"/{database}").geturl()


def psql(url: str, *statements: str) -> None:
    for statement in statements:
        result = subprocess.run(
            ["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", statement],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BenchError(f"psql {statement!r}: {result.stderr.strip()}")


def redis_answers(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or 6379), 2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_and_measure(
    args: argparse.Namespace,
    workdir: Path,
    databases: Databases,
    script: Path,
    server_cpus: str | None,
    load_cpus: str | None,
    redis_url: str | None,
) -> list[dict]:
    servers = start_servers(args, workdir, databases, server_cpus, redis_url)
    try:
        for name, server in servers.items():
            # Four servers start at once; the plain app has no /healthz.
            ready = ("/users/me", 401) if name == "plain" else ("/healthz", 200)
            server.wait_ready(90, *ready)
        return measure(args, servers, script, load_cpus)
    except BaseException:
        for name, server in servers.items():
            if server.proc.poll() is not None:
                print(
                    f"{name} exited with {server.proc.returncode}:\n{server.log_tail()}",
                    file=sys.stderr,
                )
        raise
    finally:
        for server in servers.values():
            server.stop()


def run(args: argparse.Namespace) -> int:
    server_cpus, load_cpus, pinning = cpu_split(args.pin)
    if load_cpus is not None:
        os.sched_setaffinity(0, {int(c) for c in load_cpus.split(",")})  # login clients too
    m = report.machine()
    print(f"Machine: {report.machine_line(m)}; {pinning}", flush=True)
    background = report.busy_fraction()
    if background is not None:
        print(f"Other load before the bench: {background:.0%} of all CPUs", flush=True)
        if background > BUSY_WARNING:
            print("WARNING: the machine is busy; the figures will be low and noisy.", flush=True)
    redis_url = args.redis_url if redis_answers(args.redis_url) else None
    if redis_url is None:
        print(f"Redis does not answer at {args.redis_url}: two workers not measured", flush=True)

    with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
        workdir = Path(tmp)
        script = write_script(workdir)
        with Databases(args.postgres, workdir) as databases:
            rounds = start_and_measure(
                args, workdir, databases, script, server_cpus, load_cpus, redis_url
            )

    cfg = {
        "rounds": args.rounds,
        "duration": args.duration,
        "connections": args.connections,
        "wrk_threads": args.wrk_threads,
        "storm_clients": args.storm_clients,
        "password_hash_threads": args.password_hash_threads,
        "pinning": pinning,
        "two_workers": redis_url is not None,
        "database": "PostgreSQL" if args.postgres else "SQLite",
        "background_load_before": None if background is None else round(background, 3),
    }
    summary = report.summarize(rounds)
    ok = report.verdicts(summary)
    md = report.markdown(summary, ok, m, cfg)
    results = RESULTS.with_name("latest-postgres.json") if args.postgres else RESULTS
    report.write_results(
        results, m, config=cfg, summary=summary, targets_met=ok, rounds=rounds, markdown=md
    )

    print()
    print(md)
    print()
    try:
        shown = results.relative_to(Path.cwd())
    except ValueError:
        shown = results
    print(f"Wrote {shown}")
    missed = [k for k, v in ok.items() if not v]
    print("Targets missed: " + ", ".join(missed) if missed else "All targets met.")
    return 0  # a benchmark, not a test: missed targets are reported, not failed


def measure(
    args: argparse.Namespace,
    servers: dict[str, Server],
    script: Path,
    load_cpus: str | None,
) -> list[dict]:
    from app.auth.cookie import COOKIE_NAME

    def signed_in(server: Server, cookie_name: str) -> dict[str, str]:
        register(server.port, "bench@example.com", PASSWORD, "+79123450000")
        cookie = login_cookie(server.port, "bench@example.com", PASSWORD, cookie_name)
        return {"Cookie": f"{cookie_name}={cookie}"}

    auth = {
        name: signed_in(servers[name], COOKIE_NAME)
        for name in servers
        if name.startswith("service")
    }
    auth["plain"] = signed_in(servers["plain"], PLAIN_COOKIE)
    storm_server = servers["service1"]
    storm_users = [(f"storm{i}@example.com", PASSWORD) for i in range(args.storm_clients)]
    for i, (email, password) in enumerate(storm_users):
        register(storm_server.port, email, password, f"+7912345{i + 1:04d}")
    if args.keep_server:
        pids = ", ".join(f"{name} {s.proc.pid}" for name, s in servers.items())
        input(f"Server PIDs: {pids}; press Enter to measure... ")

    def wrk(server: Server, path: str, duration: int, headers: dict[str, str] | None = None):
        """wrk's result and the server's CPU seconds meanwhile."""
        cpu0 = server.cpu_seconds()
        result = run_wrk(
            server.base + path,
            script=script,
            duration_s=duration,
            threads=args.wrk_threads,
            connections=args.connections,
            headers=headers,
            cpus=load_cpus,
        )
        return result, server.cpu_seconds() - cpu0

    def entry(result: WrkResult, cpu_s: float, per_request: bool) -> dict[str, float]:
        d: dict[str, float] = result.as_dict()
        d["server_cores"] = round(cpu_s / result.duration_s, 3)
        if per_request:  # in the storm the CPU also pays for logins: not per request
            d["cpu_us_per_request"] = round(cpu_s / result.requests * 1e6, 1)
        return d

    # (key in the results, server, path): measured in this order in every round.
    plan = [
        ("bare_healthz", "bare", "/healthz"),
        ("healthz", "service1", "/healthz"),
        ("plain_me", "plain", "/users/me"),
        ("me_quiet", "service1", "/users/me"),
    ]
    if "service2" in servers:
        plan += [("w2_healthz", "service2", "/healthz"), ("w2_me", "service2", "/users/me")]

    print("Warming up", flush=True)
    for key, name, path in plan:
        checked(key, wrk(servers[name], path, 2, auth.get(name) if path != "/healthz" else None)[0])

    rounds = []
    for n in range(1, args.rounds + 1):
        print(f"Round {n}/{args.rounds}", flush=True)
        measured: dict[str, dict[str, float]] = {}
        for key, name, path in plan:
            headers = auth.get(name) if path != "/healthz" else None
            r, cpu = wrk(servers[name], path, args.duration, headers)
            measured[key] = entry(checked(key, r), cpu, per_request=True)
            show(f"{name} {path}", measured[key])
        with LoginStorm(storm_server.port, storm_users, max_seconds=args.duration + 60) as storm:
            time.sleep(STORM_SETTLE_S)
            before = storm.count()
            r, cpu = wrk(storm_server, "/users/me", args.duration, auth["service1"])
            logins = storm.count() - before
        if storm.failures:
            raise BenchError(
                f"login storm: {len(storm.failures)} failed logins, first: {storm.failures[0]}"
            )
        stormy = entry(checked("/users/me (login storm)", r), cpu, per_request=False)
        stormy["logins_per_s"] = round(logins / r.duration_s, 2)
        show("service1 /users/me, storm", stormy)
        measured["me_storm"] = stormy
        rounds.append(measured)
    return rounds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if wrk_path() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    try:
        return run(args)
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
