"""Run wrk and read its summary exactly (a Lua `done` hook prints JSON, in microseconds)."""

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "BENCH_JSON "

# wrk calls done() once at the end; latency is in microseconds, duration too.
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "non_2xx_3xx": %d, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
    .. '"mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    "%MARKER%", summary.requests, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
""".replace("%MARKER%", MARKER)

INSTALL_HINT = (
    "wrk is not installed. It generates the load from C, so the Python server keeps the CPU.\n"
    "Install it with:  sudo apt-get update && sudo apt-get install -y wrk"
)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def write_script(workdir: Path) -> Path:
    path = workdir / "done.lua"
    path.write_text(DONE_LUA)
    return path


def run_wrk(
    url: str,
    *,
    script: Path,
    duration_s: int,
    threads: int,
    connections: int,
    headers: dict[str, str] | None = None,
    cpus: str | None = None,
) -> WrkResult:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    raw = json.loads(line[len(MARKER) :])
    duration = raw["duration_us"] / 1e6
    errors = sum(
        raw[k] for k in ("non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return WrkResult(
        requests=raw["requests"],
        duration_s=round(duration, 3),
        rps=round(raw["requests"] / duration, 1),
        mean_ms=round(raw["mean_us"] / 1000, 3),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
    )
