"""Benchmark (issue 12, part a): a crowd of readers against this tree and the baseline commit.

200 concurrent closed-loop clients (wrk, no think time) read ``GET /cases?limit=50`` and OGC
items pages for 30 s, against the demo district, no response caching; the pool's waiting queue is
sized for them (``WUYE_POOL_MAX_WAITING=256``). Counted: 2xx, 503, other 5xx (goal 0), socket
errors and timeouts, p50/p99. The baseline (``--baseline``: the commit this branch started from;
default: where HEAD meets ``main``) is served from a ``git archive`` of that commit, with the same
database, in the same run, alternating rounds so that the machine's noise falls on both. wrk counts
only answered requests: a baseline that answers nothing in the run's time was frozen.

    .venv/bin/python bench/reliability_crowd.py [--seconds 30] [--clients 200] [--rounds 1] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS, ROOT, demo_database, git_revision, machine, server_versions
from bench._load import free_port, wait_ready

PATHS = [
    "/cases?limit=50",
    "/collections/street_lights/items?limit=50",
    "/cases?limit=50",
    "/collections/zones/items?limit=10",
]
ENV = {"WUYE_POOL_MAX_WAITING": "256", "WUYE_ESCALATION_INTERVAL_SECONDS": "0"}


@dataclass
class Run:
    """One wrk run's counts and latencies."""

    label: str
    requests: int
    ok: int
    s503: int
    s5xx: int
    other: int
    socket_errors: int
    timeouts: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def answered(self) -> int:
        return self.ok + self.s503 + self.s5xx + self.other


@contextmanager
def _tree(rev: str | None) -> Iterator[Path]:
    """This checkout (``None``) or an exported copy of commit ``rev``."""
    if rev is None:
        yield ROOT
        return
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="wuye-baseline-") as tmp:
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        # The vendored browser assets are installed, not committed: borrow ours.
        static = ROOT / "maps" / "static" / "node_modules"
        if static.exists() and not (Path(tmp) / "maps" / "static" / "node_modules").exists():
            (Path(tmp) / "maps" / "static" / "node_modules").symlink_to(static)
        yield Path(tmp)


@contextmanager
def _serve(tree: Path, url: str, home: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "WUYE_DATABASE_URL": url, "WUYE_HOME": str(home), **ENV, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning", "--no-access-log"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/health", proc)  # type: ignore[arg-type]
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wrk(label: str, base: str, *, clients: int, seconds: float) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.txt")
        subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{clients}",
                f"-d{seconds:g}s",
                "--timeout",
                "60s",
                "-s",
                str(ROOT / "bench" / "get_mix.lua"),
                base,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "WRK_PATHS": "|".join(PATHS), "WRK_OUT": out},
        )
        text = Path(out).read_text(encoding="utf-8")
        v = {k: float(x) for k, _, x in (line.strip().partition(" ") for line in text.splitlines())}
    return Run(
        label=label,
        requests=int(v["requests"]),
        ok=int(v["ok"]),
        s503=int(v["s503"]),
        s5xx=int(v["s5xx"]),
        other=int(v["other"]),
        socket_errors=int(v["socket_errors"]),
        timeouts=int(v["timeouts"]),
        seconds=v["duration_us"] / 1e6,
        p50_ms=v["p50_us"] / 1000,
        p99_ms=v["p99_us"] / 1000,
    )


def _row(r: Run) -> str:
    share = 100 * r.s503 / r.answered if r.answered else 0.0
    return (
        f"| {r.label} | {r.answered:,} | {r.ok:,} | {r.s503:,} ({share:.2f} %) | {r.s5xx:,} | {r.other:,} | "
        f"{r.socket_errors:,} | {r.rps:,.0f} | {r.p50_ms:,.0f} | {r.p99_ms:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", default=None, help="commit to compare with (default: merge base with main)")
    args = parser.parse_args()
    baseline = (
        args.baseline
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    url = demo_database("wuye_bench_reliability")
    load_before = os.getloadavg()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as home:
        for _ in range(args.rounds):
            for label, rev in ((f"baseline {baseline[:7]}", baseline), (f"this tree {git_revision()}", None)):
                with _tree(rev) as tree, _serve(tree, url, Path(home)) as base:
                    run = _wrk(label, base, clients=args.clients, seconds=args.seconds)
                print(_row(run), flush=True)
                runs.append(run)
    load_after = os.getloadavg()
    lines = [
        "# Reliability under a crowd (bench/reliability_crowd.py, issue 12 part a)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {server_versions(url)}",
        f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} (1/5/15 min; the machine is "
        "shared with other sessions)",
        "",
        f"{args.clients} closed-loop clients (wrk, 2 threads, no think time) for {args.seconds:g} s, cycling "
        + ", ".join(f"`{p}`" for p in PATHS)
        + f"; demo district; one uvicorn worker with the default pool (8); `WUYE_POOL_MAX_WAITING=256` "
        f"(the baseline has no such bound); {args.rounds} round(s), baseline and this tree alternating.",
        "",
        "| server | answered | 2xx | 503 | other 5xx | other | socket errors | 2xx/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_row(r) for r in runs),
        "",
    ]
    ours = [r for r in runs if not r.label.startswith("baseline")]
    theirs = [r for r in runs if r.label.startswith("baseline")]
    if ours and theirs and theirs[-1].rps:
        lines.append(
            f"Ratios (this tree / baseline, last round): 2xx/s {ours[-1].rps / theirs[-1].rps:.2f}×, "
            f"p50 {ours[-1].p50_ms / max(theirs[-1].p50_ms, 1e-9):.2f}×, "
            f"p99 {ours[-1].p99_ms / max(theirs[-1].p99_ms, 1e-9):.2f}×."
        )
    out = RESULTS / "reliability-crowd.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
