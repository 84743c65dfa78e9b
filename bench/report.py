"""Machine description, medians, ratios against the issue's targets, JSON and Markdown."""

import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# From the performance issue (on a 2-core machine, one worker, as the image runs it).
TARGET_ME_VS_PLAIN = 2.0  # /users/me requests/s at least 2x the plain fastapi-users app's
TARGET_ME_VS_HEALTHZ = 0.25  # /users/me throughput at least 25% of the service's /healthz
TARGET_HEALTHZ_CPU_VS_BARE = 1.2  # /healthz CPU per request at most 1.2x a bare FastAPI app's
TARGET_STORM_THROUGHPUT = 0.40  # /users/me keeps at least 40% of its throughput in the storm
TARGET_STORM_P99 = 2.0  # /users/me p99 in the storm at most 2x the quiet p99


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, object]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "kernel": platform.release(),
        "packages": {
            d: version(d)
            for d in (
                "uvicorn",
                "uvloop",
                "httptools",
                "fastapi",
                "starlette",
                "sqlalchemy",
                "aiosqlite",
                "pydantic",
            )
        },
    }


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def busy_fraction(seconds: float = 2.0) -> float | None:
    """How busy all CPUs are over `seconds` (call it while the bench is idle: other load)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1)


def machine_line(m: dict[str, object]) -> str:
    return f"{m['cpu']}, {m['cores']} cores, Python {m['python']}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def summarize(rounds: list[dict[str, dict]]) -> dict[str, float]:
    """Medians over rounds; each ratio is the median of the per-round ratios, so every
    ratio compares measurements taken seconds apart."""

    def med(part: str, key: str) -> float:
        return round(median([r[part][key] for r in rounds]), 3)

    def ratio(num: tuple[str, str], den: tuple[str, str]) -> float:
        return round(median([r[num[0]][num[1]] / r[den[0]][den[1]] for r in rounds]), 4)

    rps, cpu = "rps", "cpu_us_per_request"
    s = {
        "bare_healthz_rps": med("bare_healthz", rps),
        "bare_healthz_cpu_us_per_request": med("bare_healthz", cpu),
        "healthz_rps": med("healthz", rps),
        "healthz_cpu_us_per_request": med("healthz", cpu),
        "plain_me_rps": med("plain_me", rps),
        "plain_me_p50_ms": med("plain_me", "p50_ms"),
        "plain_me_p99_ms": med("plain_me", "p99_ms"),
        "plain_me_cpu_us_per_request": med("plain_me", cpu),
        "me_rps": med("me_quiet", rps),
        "me_p50_ms": med("me_quiet", "p50_ms"),
        "me_p99_ms": med("me_quiet", "p99_ms"),
        "me_cpu_us_per_request": med("me_quiet", cpu),
        "storm_me_rps": med("me_storm", rps),
        "storm_me_p50_ms": med("me_storm", "p50_ms"),
        "storm_me_p99_ms": med("me_storm", "p99_ms"),
        "storm_logins_per_s": med("me_storm", "logins_per_s"),
        "storm_server_cores": med("me_storm", "server_cores"),
        "me_vs_plain": ratio(("me_quiet", rps), ("plain_me", rps)),
        "me_vs_healthz": ratio(("me_quiet", rps), ("healthz", rps)),
        "healthz_cpu_vs_bare": ratio(("healthz", cpu), ("bare_healthz", cpu)),
        "storm_vs_quiet": ratio(("me_storm", rps), ("me_quiet", rps)),
        "storm_p99_vs_quiet": ratio(("me_storm", "p99_ms"), ("me_quiet", "p99_ms")),
    }
    if "w2_me" in rounds[0]:
        s.update(
            {
                "w2_healthz_rps": med("w2_healthz", rps),
                "w2_healthz_cpu_us_per_request": med("w2_healthz", cpu),
                "w2_me_rps": med("w2_me", rps),
                "w2_me_p50_ms": med("w2_me", "p50_ms"),
                "w2_me_p99_ms": med("w2_me", "p99_ms"),
                "w2_me_cpu_us_per_request": med("w2_me", cpu),
                "w2_me_vs_plain": ratio(("w2_me", rps), ("plain_me", rps)),
                "w2_me_vs_w1": ratio(("w2_me", rps), ("me_quiet", rps)),
            }
        )
    return s


def verdicts(s: dict[str, float]) -> dict[str, bool]:
    return {
        "me_vs_plain": s["me_vs_plain"] >= TARGET_ME_VS_PLAIN,
        "me_vs_healthz": s["me_vs_healthz"] >= TARGET_ME_VS_HEALTHZ,
        "healthz_cpu_vs_bare": s["healthz_cpu_vs_bare"] <= TARGET_HEALTHZ_CPU_VS_BARE,
        "storm_vs_quiet": s["storm_vs_quiet"] >= TARGET_STORM_THROUGHPUT,
        "storm_p99_vs_quiet": s["storm_p99_vs_quiet"] <= TARGET_STORM_P99,
    }


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(s: dict[str, float], ok: dict[str, bool], m: dict[str, object], cfg: dict) -> str:
    def rps(x: float) -> str:
        return f"{x:,.0f}".replace(",", " ")

    def us(x: float) -> str:
        return f"{x:,.0f} µs".replace(",", " ")

    def latency(prefix: str) -> str:
        return f"{s[prefix + '_p50_ms']:.1f} / {s[prefix + '_p99_ms']:.1f} ms"

    two = "w2_me_rps" in s
    rows = [
        (
            "`/healthz` requests/s",
            rps(s["bare_healthz_rps"]),
            "",
            rps(s["healthz_rps"]),
            rps(s["w2_healthz_rps"]) if two else "-",
        ),
        (
            "`/healthz` server CPU per request",
            us(s["bare_healthz_cpu_us_per_request"]),
            "",
            us(s["healthz_cpu_us_per_request"]),
            us(s["w2_healthz_cpu_us_per_request"]) if two else "-",
        ),
        (
            "`/users/me` requests/s",
            "",
            rps(s["plain_me_rps"]),
            rps(s["me_rps"]),
            rps(s["w2_me_rps"]) if two else "-",
        ),
        (
            "`/users/me` p50 / p99",
            "",
            latency("plain_me"),
            latency("me"),
            latency("w2_me") if two else "-",
        ),
        (
            "`/users/me` server CPU per request",
            "",
            us(s["plain_me_cpu_us_per_request"]),
            us(s["me_cpu_us_per_request"]),
            us(s["w2_me_cpu_us_per_request"]) if two else "-",
        ),
        ("`/users/me` requests/s, login storm", "", "", rps(s["storm_me_rps"]), ""),
        ("`/users/me` p50 / p99, login storm", "", "", latency("storm_me"), ""),
        ("Logins/s during the storm", "", "", f"{s['storm_logins_per_s']:.1f}", ""),
    ]
    lines = [
        "| Measure | bare FastAPI | plain fastapi-users | service, 1 worker | service, 2 workers |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "| Ratio (medians of per-round ratios) | Value | Target |", "|---|---:|---|"]
    ratios = [
        (
            "`/users/me` ÷ plain fastapi-users `/users/me`, requests/s",
            f"{s['me_vs_plain']:.2f}×",
            f"≥ {TARGET_ME_VS_PLAIN:g}×: {_mark(ok['me_vs_plain'])}",
        ),
        (
            "`/users/me` ÷ `/healthz`, requests/s",
            f"{s['me_vs_healthz']:.1%}",
            f"≥ {TARGET_ME_VS_HEALTHZ:.0%}: {_mark(ok['me_vs_healthz'])}",
        ),
        (
            "`/healthz` ÷ bare FastAPI, CPU per request",
            f"{s['healthz_cpu_vs_bare']:.2f}×",
            f"≤ {TARGET_HEALTHZ_CPU_VS_BARE:g}×: {_mark(ok['healthz_cpu_vs_bare'])}",
        ),
        (
            "Storm ÷ quiet `/users/me` throughput",
            f"{s['storm_vs_quiet']:.0%}",
            f"≥ {TARGET_STORM_THROUGHPUT:.0%}: {_mark(ok['storm_vs_quiet'])}",
        ),
        (
            "Storm ÷ quiet `/users/me` p99",
            f"{s['storm_p99_vs_quiet']:.2f}×",
            f"≤ {TARGET_STORM_P99:g}×: {_mark(ok['storm_p99_vs_quiet'])}",
        ),
    ]
    if two:
        ratios += [
            ("2 workers ÷ 1 worker, `/users/me` requests/s", f"{s['w2_me_vs_w1']:.2f}×", ""),
            (
                "2 workers ÷ plain fastapi-users, `/users/me` requests/s",
                f"{s['w2_me_vs_plain']:.2f}×",
                "",
            ),
        ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in ratios]
    background = cfg.get("background_load_before")
    busy = (
        "" if background is None else f" Other load before the run: {background:.0%} of the CPUs."
    )
    lines.append("")
    lines.append(
        f"Machine: {machine_line(m)}. The service as the image runs it (`python -m app serve`: "
        f"uvloop, httptools, ACCESS_LOG=false, WEB_CONCURRENCY workers), "
        f"{cfg.get('database', 'SQLite')}, "
        f"{cfg['password_hash_threads']} password-hash thread; the baselines under one uvicorn "
        f"worker, same loop and parser, no access log; wrk -t{cfg['wrk_threads']} "
        f"-c{cfg['connections']}, {cfg['storm_clients']} login clients; "
        f"{cfg['pinning']}. Medians of {cfg['rounds']} rounds of {cfg['duration']} s, the "
        f"variants interleaved in each round.{busy}"
    )
    return "\n".join(lines)


def write_results(path: Path, m: dict[str, object], **parts: object) -> None:
    """bench/results/<name>.json: when, the machine, then the bench's own parts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": m, **parts}
    path.write_text(json.dumps(record, indent=2) + "\n")
