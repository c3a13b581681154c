"""Benchmark: load 1,000,000 street lights through our import path vs geopandas ``to_postgis``.

Same generated points, same database, same run, alternating A/B rounds.
Each load runs in its own subprocess so that its peak memory (VmHWM) is
its own. Results go to ``bench/results/import.md``.

    .venv/bin/python bench/import_bench.py [--rows 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from bench._common import RESULTS, demo_database, git_revision, machine, peak_rss_mib, sample_points, server_versions

DISTRICT = "430104"


def _points(url: str, rows: int, seed: int) -> gpd.GeoDataFrame:
    """``rows`` street lights at random positions inside the demo zones (deterministic)."""
    with psycopg.connect(url) as conn:
        wkb = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()
        assert wkb is not None
    zones = shapely.from_wkb(bytes(wkb[0]))
    rng = np.random.default_rng(seed)
    x, y = sample_points(zones, rows, rng, batch=rows)
    return gpd.GeoDataFrame(
        {
            "code": np.char.add("BL-", np.arange(rows).astype(str)),
            "condition": rng.choice(["normal", "faulty", "repairing"], rows, p=[0.9, 0.06, 0.04]),
            "power_w": rng.choice([30, 60, 100], rows),
            "installed_on": (np.datetime64("2010-01-01") + rng.integers(0, 4000, rows))
            .astype("datetime64[D]")
            .astype(str),
        },
        geometry=shapely.points(x, y),
        crs="EPSG:4490",
    )


def _worker(which: str, url: str, rows: int, seed: int) -> dict[str, float]:
    frame = _points(url, rows, seed)
    if which == "ours":
        from geo.io.importer import frame_data, import_data
        from layers.catalogue import load_catalogue

        data = frame_data(frame.drop(columns="geometry"), np.asarray(frame.geometry.values, dtype=object))
        with psycopg.connect(url) as conn:
            start = time.perf_counter()
            result = import_data(
                conn,
                load_catalogue()["street_lights"],
                data,
                source="bench",
                district_code=DISTRICT,
                mode="replace",
                actor="bench",
            )
            elapsed = time.perf_counter() - start
        assert result.inserted == rows, result
    else:
        from sqlalchemy import create_engine

        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        frame = frame.rename_geometry("geom")
        start = time.perf_counter()
        frame.to_postgis("street_lights_gpd", engine, if_exists="replace", index=False)
        elapsed = time.perf_counter() - start
        engine.dispose()
    with psycopg.connect(url) as conn:
        table = "street_lights" if which == "ours" else "street_lights_gpd"
        got = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 (fixed names)
    assert got == (rows,), got
    peak = peak_rss_mib()
    return {"seconds": elapsed, "rows_per_s": rows / elapsed, "peak_mib": peak}


def _run(which: str, url: str, rows: int, seed: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", which, "--url", url, "--rows", str(rows), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _prepare(rows: int) -> str:
    return demo_database("wuye_bench_import")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", choices=["ours", "to_postgis"])
    parser.add_argument("--url")
    parser.add_argument("--out", default=str(RESULTS / "import.md"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.url, args.rows, args.seed)))
        return
    url = _prepare(args.rows)
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "to_postgis": []}
    for i in range(args.rounds):
        order = ["ours", "to_postgis"] if i % 2 == 0 else ["to_postgis", "ours"]
        for which in order:
            res = _run(which, url, args.rows, args.seed)
            runs[which].append(res)
            print(
                f"round {i + 1} {which:10} {res['seconds']:8.2f} s {res['rows_per_s']:12,.0f} rows/s "
                f"peak {res['peak_mib']:7.0f} MiB",
                flush=True,
            )
    _write(args, url, runs)


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _write(args: argparse.Namespace, url: str, runs: dict[str, list[dict[str, float]]]) -> None:
    ours, base = runs["ours"], runs["to_postgis"]
    ratio = _median(ours, "rows_per_s") / _median(base, "rows_per_s")
    lines = [
        "# Import benchmark: 1,000,000 points into `street_lights`",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}",
        f"- machine: {machine()}",
        f"- database: {server_versions(url)} (embedded cluster, same database for both)",
        f"- rows: {args.rows:,}; rounds: {args.rounds}, alternating A/B; each load in its own process",
        "- ours: `geo.importer.import_data` (validation against the layer spec, inside-district check, "
        "COPY in 50,000-row chunks written by Arrow's CSV writer while the previous chunk is sent, indexes rebuilt "
        "after a bulk load, one batch record), mode `replace`",
        "- baseline: `GeoDataFrame.to_postgis(if_exists='replace')` (GeoAlchemy2 + SQLAlchemy, psycopg 3), "
        "no validation, index built after",
        "- peak memory: VmHWM of the loading process, which also generated the points",
        "",
        "| path | median s | median rows/s | peak MiB (max) | runs (s) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, rs in (("ours (COPY)", ours), ("geopandas to_postgis", base)):
        lines.append(
            f"| {name} | {_median(rs, 'seconds'):.2f} | {_median(rs, 'rows_per_s'):,.0f} | "
            f"{max(r['peak_mib'] for r in rs):,.0f} | " + ", ".join(f"{r['seconds']:.2f}" for r in rs) + " |"
        )
    goal_speed = "met" if ratio >= 10 else "NOT met"
    peak = max(r["peak_mib"] for r in ours)
    goal_mem = "met" if peak <= 1536 else "NOT met"
    lines += [
        "",
        f"**Ratio (ours / to_postgis, median rows/s): {ratio:.1f}×** "
        f"(goal ≥ 10×: {goal_speed}); our peak memory {peak:,.0f} MiB (goal ≤ 1,536 MiB: {goal_mem}).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
