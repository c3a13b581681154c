"""Hostile input, counted (issue 13 Check): the test suite's hostile inputs by kind, and a
schemathesis run over /api against a real server, with an administrator's token and with none.

Goal: 0 answers with a 5xx. Writes bench/results/security.md.

    PYTHONPATH=. python -m bench.security [--examples 25] [--skip-tests] [--only-guarded]

It also records (issue 13 points 2 and 3) the trilateration attack of tests/test_guarded.py and the
size of the access matrix (tests/test_access_matrix.py); ``--only-guarded`` rewrites just that part.

The server is ``wuye``'s app under uvicorn (as tests/live.py and bench/_load.py start it) on a
fresh copy of the demo district. schemathesis sends every operation of /api ``--examples`` times
per phase (examples, coverage, fuzzing, stateful); its HAR report is read back for the number of
requests and their statuses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg

from bench._common import RESULTS, ROOT, demo_database, git_revision, machine, server_versions
from bench._load import our_server

DISTRICT = "430104"
# The goal is the first (no 5xx); the other two say whether answers match what /api documents.
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Pages drawn by headless Chromium (PDF reports, map snapshots) take seconds each: fuzzing them
# thousands of times measures the renderer, not input handling (their inputs are a code and ?lang).
SKIPPED = r"(\.pdf$|/snapshot)"
SKIPPED_NOTE = "the GET operations that render PDFs or map snapshots in Chromium (`.pdf`, `/snapshot`)"


def _admin_token(url: str) -> str:
    from geo.access import users

    with psycopg.connect(url, autocommit=True) as conn:
        user = users.create_user(
            conn,
            username="bench-security-admin",
            password="bench-password",
            role="admin",
            district_code=DISTRICT,
            actor="bench",
        )
        token, _ = users.issue_token(conn, user, ttl=timedelta(hours=3))
    return token


def suite_tally() -> dict[str, dict[str, int]]:
    """Run the hostile-input tests and read back what they sent, by kind, and how many got 5xx."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "WUYE_HOSTILE_TALLY": folder, "PYTHONPATH": str(ROOT)}
        tests = ["tests/test_hostile.py", "tests/test_hostile_live.py"]
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *tests],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
        sent: Counter[str] = Counter()
        five_xx: Counter[str] = Counter()
        for path in Path(folder).glob("*.json"):
            data = json.loads(path.read_text())
            sent.update(data["sent"])
            five_xx.update(data["five_xx"])
    return {kind: {"sent": sent[kind], "five_xx": five_xx[kind]} for kind in sorted(sent)} | {
        "_tests_passed": {"sent": int(run.returncode == 0), "five_xx": 0}
    }


GUARDED_HEADING = "## Reporters and the public grid (trilateration)"


def trilateration() -> dict[str, object]:
    """Run the trilateration test and read back what the attack learnt."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "WUYE_GUARDED_RESULTS": folder, "PYTHONPATH": str(ROOT)}
        test = "tests/test_guarded.py::test_trilateration_learns_nothing_finer_than_the_public_cell"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", test],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        path = Path(folder, "trilateration.json")
        results: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    return results | {"passed": run.returncode == 0}


def matrix_size() -> dict[str, int]:
    """The access matrix's dimensions, read from the test module (no database needed)."""
    import importlib

    m = importlib.import_module("tests.test_access_matrix")  # (the tests are not type-checked)

    roles = len(m.ROLES)
    return {
        "routes": len(m.CASES),
        "roles": roles,
        "route_role_checks": len(m.CASES) * roles,
        "scoped_routes": len(m.SCOPED_CASES),
        "scope_checks": len(m.SCOPED_CASES) * len(m.SCOPED_ROLES) * 2,
        "field_rows": len(m.FIELD_TABLE),
        "fields": len(next(iter(m.FIELD_TABLE.values()))),
    }


def guarded_section() -> list[str]:
    """The trilateration result and the access matrix's size, as markdown lines."""
    tri, size = trilateration(), matrix_size()
    out = [
        GUARDED_HEADING,
        "",
        "`tests/test_guarded.py`: two victims in one public 50 m cell, "
        f"{tri.get('victims_apart_m')} m apart; an anonymous attacker reports {tri.get('probes')} probes around the "
        "public grid point (three 20 m around it, as the issue's attack, and one more in the cell) and reads "
        "`possible_duplicates` and the public case view.",
        "",
        _table(
            [
                ("attacker's whole view identical for both victims", tri.get("public_views_identical")),
                ("what a probe learns of a victim", f"`{json.dumps(tri.get('public_answer'), ensure_ascii=False)}`"),
                (
                    "the same probes answered in metres (staff in scope) locate the victim to",
                    f"{tri.get('exact_error_m')} m",
                ),
                ("test passed", tri.get("passed")),
            ],
            ("", "result"),
        ),
        "",
        "Goal met when the view is identical: the attack learns nothing finer than the cell.",
        "",
        "## Access matrix (tests/test_access_matrix.py)",
        "",
        _table(
            [
                ("routes (method × path)", size["routes"]),
                ("roles", size["roles"]),
                ("route × role checks", size["route_role_checks"]),
                ("scoped routes × scoped roles × inside/outside", size["scope_checks"]),
                ("case fields × viewers (roles + the reporter)", f"{size['fields']} × {size['field_rows']}"),
            ],
            ("dimension", "size"),
        ),
        "",
    ]
    return out


@dataclass
class Run:
    """One schemathesis run: statuses of its requests, the 5xx by operation, its summary."""

    statuses: Counter[int]
    five_xx: Counter[str]
    seconds: float
    tail: str
    failing: list[str]


def schemathesis_run(base: str, examples: int, headers: dict[str, str], har: Path) -> Run:
    """One schemathesis run; the statuses of every request it made, from its HAR report."""
    cmd = [
        str(SCHEMATHESIS),
        "run",
        f"{base}/api",
        "--url",
        base,
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--continue-on-failure",
        "--exclude-path-regex",
        SKIPPED,
        "--generation-deterministic",  # no example database either (nothing left in the tree)
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    for name, value in headers.items():
        cmd += ["--header", f"{name}: {value}"]
    if headers:  # signing out or changing the password would end the token's session mid-run
        cmd += ["--exclude-path", "/auth/logout", "--exclude-path", "/auth/password"]
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - started
    statuses: Counter[int] = Counter()
    five_xx: Counter[str] = Counter()
    if har.exists():
        for entry in json.loads(har.read_text())["log"]["entries"]:
            status = int(entry["response"]["status"])
            statuses[status] += 1
            if status >= 500:
                five_xx[f"{entry['request']['method']} {entry['request']['url'].split('?')[0]}"] += 1
    tail = "\n".join((run.stdout.strip() or run.stderr.strip()).splitlines()[-25:])
    # the failing operations: schemathesis heads each with "____ METHOD /path ____"
    failing = [line.strip("_ ").strip() for line in run.stdout.splitlines() if line.startswith("____")]
    return Run(statuses, five_xx, seconds, tail, failing)


def _table(rows: Sequence[tuple[object, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25, help="schemathesis --max-examples per operation")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the hostile-input tests")
    parser.add_argument("--only-guarded", action="store_true", help="rewrite only the trilateration/matrix part")
    args = parser.parse_args()
    if args.only_guarded:
        path = RESULTS / "security.md"
        kept = path.read_text(encoding="utf-8").split(GUARDED_HEADING)[0].rstrip("\n") if path.exists() else ""
        load = os.getloadavg()
        note = f"(rewritten {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at {git_revision()}; "
        note += f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f})"
        section = guarded_section()
        section.insert(1, "")
        section.insert(2, note)
        path.write_text(kept + "\n\n" + "\n".join(section) + "\n", encoding="utf-8")
        print("\n".join(section))
        return

    tally = {} if args.skip_tests else suite_tally()
    url = demo_database("wuye_bench_security")
    token = _admin_token(url)
    runs: dict[str, Run] = {}
    with our_server(url, extra_env={"WUYE_DISTRICT_CODE": DISTRICT}) as base, tempfile.TemporaryDirectory() as tmp:
        for who, headers in (("admin", {"Authorization": f"Bearer {token}"}), ("anonymous", {})):
            runs[who] = schemathesis_run(base, args.examples, headers, Path(tmp, f"{who}.har"))
            print(f"{who}: {runs[who].statuses.total()} requests, statuses {dict(runs[who].statuses)}")
    load = os.getloadavg()
    out = [
        "# Hostile input (issue 13 Check)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at {git_revision()}; {machine()}; "
        f"{server_versions(url)}; load average after the run {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.",
        "",
        "## Hostile inputs in the test suite",
        "",
        "`tests/test_hostile.py` (every declared text input of every route with a NUL, the inputs that",
        "answered 500 before, other control characters and lone surrogates, CQL2 out of range and too big,",
        "strict GeoJSON, If-Match, lengths, dates, imports) and `tests/test_hostile_live.py` (a real port:",
        "50 hostile clients at once, Hypothesis-generated text and CQL2 filters).",
        "",
    ]
    if tally:
        rows = [(k, v["sent"], v["five_xx"]) for k, v in tally.items() if not k.startswith("_")]
        rows.append(("**total**", sum(r[1] for r in rows), sum(r[2] for r in rows)))
        out += [_table(rows, ("kind", "inputs sent", "answered 5xx")), ""]
        out += [f"Tests passed: {'yes' if tally['_tests_passed']['sent'] else 'NO'}.", ""]
    out += ["## schemathesis over /api", ""]
    version = subprocess.run([str(SCHEMATHESIS), "--version"], capture_output=True, text=True).stdout.strip()
    out += [
        f"{version}, `--max-examples {args.examples}`, checks `{CHECKS}`, 2 workers, every phase; "
        f"the demo district (seed 2023). Left out: {SKIPPED_NOTE}.",
        "",
    ]
    rows2 = []
    for who, run in runs.items():
        n5 = sum(c for s, c in run.statuses.items() if s >= 500)
        by = ", ".join(f"{s}: {c}" for s, c in sorted(run.statuses.items()))
        rows2.append((who, run.statuses.total(), n5, f"{run.seconds:.0f} s", by))
    out += [_table(rows2, ("token", "requests", "5xx", "time", "statuses")), ""]
    for who, run in runs.items():
        if run.five_xx:
            out += [f"5xx ({who}):", "", *[f"- {k}: {v}" for k, v in run.five_xx.items()], ""]
    for who, run in runs.items():
        out += [f"schemathesis's summary ({who}):", "", "```", run.tail, "```", ""]
        if run.failing:
            out += [f"Operations with a failed check ({who}):", ""]
            out += [f"- `{op}`" for op in run.failing]
            out += [""]
    out += guarded_section()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "security.md").write_text("\n".join(out) + "\n", encoding="utf-8")
    for who, run in runs.items():
        print(f"--- {who} ---\n{run.tail}")


if __name__ == "__main__":
    main()
