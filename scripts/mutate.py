"""`make mutate`: mutation testing with mutmut 3 of the packages [tool.mutmut] names in
pyproject.toml (app/auth, app/users, app/confirmation, app/services/email, app/newsletters,
app/transactions), then the score.

    python scripts/mutate.py [--children N] [--report-only] [--write-docs] [MUTANT ...]

Runs `mutmut run` (configuration: [tool.mutmut] in pyproject.toml; work directory:
mutants/, which keeps results between runs: only functions whose code changed are
tested again; delete mutants/ for a run from scratch), then prints the score per package
(killed / total) and every mutant that was not killed, with its diff. The same text is
written to mutants/report.md; with --write-docs it also replaces the generated block of
docs/mutation.md (between the `mutate:begin` and `mutate:end` markers).

MUTANT names (globs allowed, e.g. 'app.auth.csrf*') re-test only those mutants.

--retest TEST... [--only GLOB] (no mutmut run): each mutant that survived (or that no test reached) is run again, in the mutants/
copy the last run generated, against the given test files or tests' node ids
(`tests/x.py::test_y`) only (their files copied in first), the way
mutmut runs one (pytest with MUTANT_UNDER_TEST naming it); those that now fail are recorded
as killed. For new tests written against survivors while the code moves on: `mutmut run`
would regenerate the mutants from the changed code first.
The tests run with SHOP_TEST_CHEAP_HASHING=1 (argon2 at its cheapest, see tests/conftest.py):
about 4x less CPU per mutant. Not part of CI: a full run from scratch takes long (see
docs/mutation.md).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
DOCS = ROOT / "docs" / "mutation.md"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
PACKAGES = tuple(path.replace("/", ".") for path in CONFIG["source_paths"])
TESTS = ", ".join(CONFIG["pytest_add_cli_args_test_selection"])
BEGIN, END = "<!-- mutate:begin -->", "<!-- mutate:end -->"

# mutmut.stats.status_by_exit_code, restated so the report needs no mutmut import.
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    None: "not checked",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}
# A mutant that makes the tests hang or crash the interpreter is detected, so killed.
DETECTED = {"killed", "timeout", "segfault"}


def mutmut(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(exe), *args], cwd=ROOT, check=False, text=True, capture_output=True)


def results() -> tuple[dict[str, str], dict[str, str]]:
    """Every mutant's status and source file, from mutmut's per-file .meta records."""
    statuses: dict[str, str] = {}
    paths: dict[str, str] = {}
    for meta in sorted(MUTANTS.glob("app/**/*.py.meta")):
        data = json.loads(meta.read_text())
        source = str(meta.relative_to(MUTANTS)).removesuffix(".meta")
        for name, code in data["exit_code_by_key"].items():
            statuses[name] = STATUS.get(code, "suspicious")
            paths[name] = source
    return statuses, paths


def diff_lines(name: str, path: str) -> list[str]:
    """The mutation as -/+ lines (what `mutmut show` prints, without a process per mutant)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    try:
        diff = get_diff_for_mutant(name, path=path).splitlines()
    except Exception as exc:  # a mutant of code changed since the run: say so, go on
        return [f"(no diff: {exc})"]
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")]


def package_of(name: str) -> str:
    return next((p for p in PACKAGES if name.startswith(p + ".")), "other")


def commit() -> str:
    """The commit mutmut's last full stats run started from (else HEAD now)."""
    stats = MUTANTS / "mutmut-stats.json"
    recorded = json.loads(stats.read_text()).get("git_commit") if stats.exists() else None
    if recorded:
        return recorded[:7] + " (the run's start)"
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *CONFIG["source_paths"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out.stdout.strip() + (
        " (with uncommitted changes in the mutated packages)" if dirty else ""
    )


def report(statuses: dict[str, str], paths: dict[str, str], with_diffs: bool) -> str:
    lines = [
        f"Measured on {date.today().isoformat()}, commit {commit()}, mutmut "
        f"{mutmut('--version').stdout.split()[-1]}; tests: {TESTS}.",
        "",
        "| package | killed | total | score | survived | no tests | timeout | not checked |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_package: dict[str, Counter] = {p: Counter() for p in PACKAGES}
    for name, status in statuses.items():
        by_package.setdefault(package_of(name), Counter())[status] += 1
    for package, counts in [*by_package.items(), ("all", sum(by_package.values(), Counter()))]:
        total = sum(counts.values())
        killed = sum(counts[s] for s in DETECTED)
        score = f"{100 * killed / total:.1f}%" if total else "-"
        lines.append(
            f"| {package} | {killed} | {total} | {score} | {counts['survived']} "
            f"| {counts['no tests']} | {counts['timeout']} | {counts['not checked']} |"
        )
    lines.append("")
    lines.append("`killed` counts timeouts too (the mutant made a test hang: detected).")
    unchecked = Counter(paths[n] for n, s in statuses.items() if s == "not checked")
    if unchecked:
        lines += [
            "",
            f"Not checked yet ({sum(unchecked.values())}; `make mutate` goes on from here):",
            "",
        ]
        lines += [f"- {path}: {count}" for path, count in sorted(unchecked.items())]
    alive = sorted(n for n, s in statuses.items() if s not in DETECTED | {"not checked"})
    lines += ["", f"Checked and not killed ({len(alive)}):", ""]
    for name in alive:
        lines.append(f"- `{name}`: {statuses[name]}")
        if with_diffs:
            lines += [
                f"  `{line.strip()}`" for line in diff_lines(name, paths[name]) if line.strip()
            ]
    return "\n".join(lines) + "\n"


def retest(tests: list[str], only: list[str], unchecked: bool = False) -> None:
    """Run surviving mutants (those matching `only`, if given) against `tests` in mutants/;
    record the kills."""
    import shutil
    from fnmatch import fnmatch

    for test in {test.split("::")[0] for test in tests}:  # a file, or a test's node id in it
        target = MUTANTS / test
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / test, target)
    # Like mutmut's clean run: the tests must pass on the measured code itself. A test that
    # fails there (written for code that has changed since) would "kill" every mutant.
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    clean = subprocess.run(
        [*pytest, "-rf", *tests],
        cwd=MUTANTS,
        env=os.environ | {"MUTANT_UNDER_TEST": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    failing = re.findall(r"^FAILED (\S+)", clean.stdout, flags=re.M)
    if clean.returncode not in (0, 1) or (clean.returncode == 1 and not failing):
        print(clean.stdout[-3000:])
        raise SystemExit("the tests do not run on the measured code")
    for nodeid in failing:
        print(f"left out (fails on the measured code itself): {nodeid}")
    tests = [*tests, *(f"--deselect={nodeid}" for nodeid in failing)]
    for meta in sorted(MUTANTS.glob("app/**/*.py.meta")):
        data = json.loads(meta.read_text())
        changed = False
        for name, code in data["exit_code_by_key"].items():
            wanted = (
                ("survived", "no tests", "not checked") if unchecked else ("survived", "no tests")
            )
            if STATUS.get(code) not in wanted:
                continue  # a mutant no test reached may meet one in the new files
            if only and not any(fnmatch(name, pattern) for pattern in only):
                continue
            env = os.environ | {"MUTANT_UNDER_TEST": name}
            started = time.monotonic()
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-x",
                    "-q",
                    "-p",
                    "no:randomly",
                    "-p",
                    "no:cacheprovider",
                    *tests,
                ],
                cwd=MUTANTS,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            took = time.monotonic() - started
            # 1: a test failed; 3 and 4: pytest's internal or usage error, i.e. the mutant
            # broke the collection itself (a fixture module that cannot even be set up).
            detected = run.returncode in (1, 3, 4)
            verdict = (
                "killed"
                if detected
                else "survived"
                if run.returncode == 0
                else f"exit {run.returncode}"
            )
            print(f"{verdict:9} {took:5.1f} s  {name}", flush=True)
            if detected:
                data["exit_code_by_key"][name] = 1
                changed = True
            elif run.returncode == 0 and code is None:  # unchecked until now: a survivor
                data["exit_code_by_key"][name] = 0
                changed = True
        if changed:
            meta.write_text(json.dumps(data, indent=4))


def write_docs(text: str) -> None:
    doc = DOCS.read_text() if DOCS.exists() else f"# Mutation testing\n\n{BEGIN}\n{END}\n"
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    else:
        doc += "\n" + block + "\n"
    DOCS.write_text(doc)


def main() -> int:
    # Tests hash passwords with argon2 at its cheapest (tests/conftest.py): the tests of a
    # mutant take about a quarter of the CPU; what they check does not depend on the cost.
    os.environ.setdefault("SHOP_TEST_CHEAP_HASHING", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", help="re-test only these mutants (globs)")
    parser.add_argument("--children", type=int, default=int(os.environ.get("MUTATE_CHILDREN", 2)))
    parser.add_argument("--report-only", action="store_true", help="no run: report the last one")
    parser.add_argument("--write-docs", action="store_true", help="update docs/mutation.md")
    parser.add_argument("--retest", nargs="+", metavar="TEST", help="see the module docstring")
    parser.add_argument(
        "--only",
        action="extend",
        nargs="+",
        default=[],
        metavar="GLOB",
        help="with --retest: only the survivors matching GLOB",
    )
    parser.add_argument(
        "--unchecked",
        action="store_true",
        help="with --retest: also the mutants the last run did not reach (a stopped run), "
        "against the given tests only: a survivor there may be one the whole selection kills",
    )
    args = parser.parse_args()

    if args.retest:
        retest(args.retest, args.only, args.unchecked)
    elif not args.report_only:
        started = time.monotonic()
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("mutmut")),
                "run",
                "--max-children",
                str(args.children),
                *args.mutants,
            ],
            cwd=ROOT,
            check=False,
        )
        print(f"\nmutmut run: exit {run.returncode} after {time.monotonic() - started:.0f} s")
        if run.returncode != 0:
            return run.returncode
    os.chdir(ROOT)  # mutmut reads its configuration and mutants/ from here
    statuses, paths = results()
    if not statuses:
        print("no mutmut results in mutants/: run without --report-only first")
        return 1
    text = report(statuses, paths, with_diffs=True)
    MUTANTS.mkdir(exist_ok=True)
    (MUTANTS / "report.md").write_text(text)
    print()
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
