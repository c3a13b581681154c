"""Benchmark: bulk assignment of 1,000,000 case points to zones and sections, ours vs geopandas.

Same points, same polygons, same database, same run, alternating A/B:
(i)   the join alone: our set-based SELECT (into a temp table) vs ``sjoin`` on frames already in memory;
(ii)  re-assignment after a boundary edit that moves ~1% of the points, written back: ours rewrites only
      the rows inside the changed area vs the whole geopandas path (read, sjoin, write every row back);
(iii) first assignment of every point, written back: ours vs the whole geopandas path.
Each measurement runs in its own process (peak memory = its own VmHWM). Results: bench/results/cases.md.

    .venv/bin/python bench/assign.py [--rows 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from bench._common import RESULTS, demo_database, git_revision, machine, peak_rss_mib, sample_points, server_versions

DISTRICT = "430104"
CATEGORIES = ["garbage_pile", "light_out", "drain_blocked", "stairwell_clutter", "illegal_parking", "road_uneven"]
RESET = (
    "UPDATE cases SET subdistrict_code = NULL, community_code = NULL, zone_code = NULL, section_code = NULL, "
    "unit_code = NULL, routing_rule = NULL"
)
SHIFT = 0.0004  # degrees east: moves jinling's edge by ~40 m, about 1% of the points change zone


def _prepare(rows: int, seed: int) -> str:
    url = demo_database("wuye_bench_assign")
    with psycopg.connect(url) as conn:
        zones = shapely.from_wkb(bytes(conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()[0]))
        district = shapely.from_wkb(bytes(conn.execute("SELECT ST_AsBinary(geom) FROM districts").fetchone()[0]))
    rng = np.random.default_rng(seed)
    x, y = sample_points(zones, int(rows * 0.9), rng, batch=int(rows * 0.9) * 4)
    ox, oy = sample_points(district, rows - len(x), rng, batch=(rows - len(x)) * 4)  # one in ten outside every zone
    x, y = np.concatenate([x, ox]), np.concatenate([y, oy])
    frame = pd.DataFrame(
        {
            "code": np.char.add("B-", np.arange(rows).astype(str)),
            "district_code": DISTRICT,
            "category": rng.choice(CATEGORIES, rows),
            "state": "registered",
            "geom": shapely.to_wkb(shapely.set_srid(shapely.points(x, y), 4490), hex=True, include_srid=True),
        }
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY cases (code, district_code, category, state, geom) FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, rows, 100_000):
                buf = io.StringIO()
                frame.iloc[start : start + 100_000].to_csv(buf, header=False, index=False)
                copy.write(buf.getvalue())
        cur.execute("ANALYZE cases")
    return url


# ----------------------------------------------------------------------------- geopandas path
def _layers(conn: psycopg.Connection) -> dict[str, gpd.GeoDataFrame]:
    out = {}
    for name, cols in (
        ("subdistricts", "code, office_unit"),
        ("communities", "code"),
        ("zones", "code, property_unit"),
        ("contract_sections", "code, contractor_unit, service_kinds"),
    ):
        out[name] = gpd.read_postgis(f"SELECT {cols}, geom FROM {name}", conn, geom_col="geom")  # noqa: S608
    return out


def _gpd_assign(points: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame], rules: pd.DataFrame) -> pd.DataFrame:
    """The same assignment as ours, with sjoin: lowest code wins on shared edges, then the routing rules."""
    out = pd.DataFrame({"id": points["id"].to_numpy(), "category": points["category"].to_numpy()})
    for name, column in (
        ("subdistricts", "subdistrict_code"),
        ("communities", "community_code"),
        ("zones", "zone_code"),
        ("contract_sections", "section_code"),
    ):
        joined = gpd.sjoin(points[["id", "geom"]], layers[name][["code", "geom"]], predicate="intersects")
        first = joined.groupby("id")["code"].min()
        out[column] = out["id"].map(first)
    out = out.merge(rules, on="category", how="left")
    out = out.merge(
        layers["contract_sections"][["code", "contractor_unit", "service_kinds"]].rename(
            columns={"code": "section_code"}
        ),
        on="section_code",
        how="left",
    )
    out = out.merge(
        layers["zones"][["code", "property_unit"]].rename(columns={"code": "zone_code"}), on="zone_code", how="left"
    )
    out = out.merge(
        layers["subdistricts"][["code", "office_unit"]].rename(columns={"code": "subdistrict_code"}),
        on="subdistrict_code",
        how="left",
    )
    covered = np.array(
        [isinstance(s, list | np.ndarray) and k in s for s, k in zip(out["service_kinds"], out["kind"], strict=True)]
    )
    candidates = {
        "section_contractor": out["contractor_unit"].where(covered),
        "zone_team": out["property_unit"],
        "subdistrict_office": out["office_unit"],
    }
    out["unit_code"], out["routing_rule"] = None, None
    for position in range(3):
        rule = out["rules"].map(lambda r, p=position: r[p] if len(r) > p else None)
        for name, unit in candidates.items():
            take = out["unit_code"].isna() & (rule == name) & unit.notna()
            out.loc[take, "unit_code"] = unit[take]
            out.loc[take, "routing_rule"] = name
    return out[["id", "subdistrict_code", "community_code", "zone_code", "section_code", "unit_code", "routing_rule"]]


def _gpd_whole(url: str) -> None:
    """Read every point, sjoin, write every row back (temp table + UPDATE … FROM)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        points = gpd.read_postgis("SELECT id, category, geom FROM cases", conn, geom_col="geom")
        layers = _layers(conn.connection.driver_connection)  # type: ignore[arg-type]
        rules = pd.read_sql("SELECT code AS category, kind, rules FROM case_categories", conn)
        result = _gpd_assign(points, layers, rules)
        result.to_sql("gpd_assignment", conn, if_exists="replace", index=False)
        conn.execute(
            text(
                "UPDATE cases c SET subdistrict_code = a.subdistrict_code, community_code = a.community_code, "
                "zone_code = a.zone_code, section_code = a.section_code, unit_code = a.unit_code, "
                "routing_rule = a.routing_rule FROM gpd_assignment a WHERE c.id = a.id"
            )
        )
    engine.dispose()


# ----------------------------------------------------------------------------- workers
def _worker(which: str, url: str) -> dict[str, float]:
    from geo.cases import workflow as cases

    with psycopg.connect(url, autocommit=True) as conn:
        if which in ("ours-first", "gpd-first"):
            conn.execute(RESET)
        if which == "gpd-join":
            points = gpd.read_postgis("SELECT id, category, geom FROM cases", conn, geom_col="geom")
            layers = _layers(conn)
            rules = pd.read_sql("SELECT code AS category, kind, rules FROM case_categories", conn)
        if which == "ours-join":
            # the statement's own SELECT part (a fixed file), counted instead of written
            select = cases._assign_sql().split("UPDATE cases c")[0] + (  # noqa: S608
                "SELECT count(subdistrict_code), count(community_code), count(zone_code), count(section_code), "
                "count(unit) FROM decided"
            )
        if which.endswith("edit"):
            old = conn.execute("SELECT ST_AsBinary(geom) FROM zones WHERE code = 'jinling'").fetchone()[0]
        start = time.perf_counter()
        changed = 0
        if which == "ours-first":
            with conn.transaction():
                changed = len(cases.assign(conn, district_code=DISTRICT, ids=None))
        elif which == "gpd-first":
            _gpd_whole(url)
        elif which == "ours-join":
            with conn.transaction():
                cases.bulk_settings(conn)  # as cases.assign sets them
                conn.execute(select, {"ids": None, "district": DISTRICT, "initial": False}).fetchone()
        elif which == "gpd-join":
            _gpd_assign(points, layers, rules)
        elif which == "ours-edit":
            with conn.transaction():
                new = conn.execute(
                    "UPDATE zones SET geom = ST_Translate(geom, %s, 0) WHERE code = 'jinling' "
                    "RETURNING ST_AsBinary(geom)",
                    [SHIFT],
                ).fetchone()[0]
                area = conn.execute(
                    "SELECT ST_AsBinary(ST_SymDifference(ST_GeomFromWKB(%s, 4490), ST_GeomFromWKB(%s, 4490)))",
                    [old, new],
                ).fetchone()[0]
                changed = cases.reassign_within(
                    conn, bytes(area), district_code=DISTRICT, actor="bench", reason="bench edit"
                )
        elif which == "gpd-edit":
            conn.execute("UPDATE zones SET geom = ST_Translate(geom, %s, 0) WHERE code = 'jinling'", [SHIFT])
            _gpd_whole(url)
        elapsed = time.perf_counter() - start
        if which.endswith("edit"):  # put the zone back and re-assign, untimed, for the next round
            conn.execute("UPDATE zones SET geom = ST_Translate(geom, %s, 0) WHERE code = 'jinling'", [-SHIFT])
            with conn.transaction():
                cases.assign(conn, district_code=DISTRICT, ids=None)
    peak = peak_rss_mib()
    return {"seconds": elapsed, "peak_mib": peak, "changed": changed}


def _run(which: str, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", which, "--url", url], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--experiments",
        default="join,edit,first",
        help="which of join, edit, first to run (a subset is written as its own section)",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--worker")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.url)))
        return
    url = _prepare(args.rows, args.seed)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        from geo.cases import workflow as cases

        cases.assign(conn, district_code=DISTRICT, ids=None)  # a settled state for the join and edit runs
    args.load_start = os.getloadavg()[0]
    wanted = args.experiments.split(",")
    runs: dict[str, list[dict[str, float]]] = {}
    for i in range(args.rounds):
        for pair in (("ours-join", "gpd-join"), ("ours-edit", "gpd-edit"), ("ours-first", "gpd-first")):
            if pair[0].split("-")[1] not in wanted:
                continue
            for which in pair if i % 2 == 0 else tuple(reversed(pair)):
                res = _run(which, url)
                runs.setdefault(which, []).append(res)
                print(
                    f"round {i + 1} {which:11} {res['seconds']:8.2f} s peak {res['peak_mib']:7.0f} MiB "
                    f"changed {res['changed']:.0f}",
                    flush=True,
                )
    _write(args, url, runs)


def _write(args: argparse.Namespace, url: str, runs: dict[str, list[dict[str, float]]]) -> None:
    def med(name: str) -> float:
        return statistics.median(r["seconds"] for r in runs[name])

    def peak(name: str) -> float:
        return max(r["peak_mib"] for r in runs[name])

    rows = [
        ("(i) the join alone", "ours-join", "gpd-join", "≤ 1.0 (ours no slower)", lambda r: r <= 1.0),
        ("(ii) re-assign after a ~1% edit, written back", "ours-edit", "gpd-edit", "≥ 10× faster", lambda r: r <= 0.1),
        ("(iii) first assignment, written back", "ours-first", "gpd-first", "≥ 1.5× faster", lambda r: r <= 1 / 1.5),
    ]
    rows = [r for r in rows if r[1] in runs]
    whole = len(rows) == 3
    heading = (
        "## Bulk assignment: 1,000,000 points to zones and sections"
        if whole
        else f"## Bulk assignment, {' and '.join(r[0].split(' ')[0] for r in rows)} alone, {args.rounds} rounds"
    )
    lines = [
        heading,
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_revision()}",
        f"- machine: {machine()}; load average (1 min) at the start {args.load_start:.1f} and the end "
        f"{os.getloadavg()[0]:.1f} (other sessions share this machine; the paths alternate to share the noise)",
        f"- database: {server_versions(url)}; {args.rows:,} cases, 90% inside the ten zones",
        f"- {args.rounds} rounds alternating A/B; each measurement in its own process; medians; peak = the "
        "measuring process's own VmHWM (the PostgreSQL server's memory is not in it)",
        "- ours: `geo/cases/sql/assign_cases.sql` (a grid of 0.0002° cells answers most points, boundary cells are "
        "looked up point → polygon, routing rules in SQL); "
        "(ii) `geo.cases.reassign_within` on the symmetric difference of the old and new zone, with an event "
        "per re-routed case",
        "- geopandas: `read_postgis` + 4 × `sjoin` + the same routing in pandas + `to_sql` + `UPDATE … FROM`",
        "",
        "| experiment | ours s | geopandas s | ours / geopandas time | goal | met | ours peak MiB | gpd peak MiB |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for label, ours, gpd_name, goal, ok in rows:
        ratio = med(ours) / med(gpd_name)
        lines.append(
            f"| {label} | {med(ours):.2f} | {med(gpd_name):.2f} | {ratio:.2f} | {goal} | "
            f"{'yes' if ok(ratio) else 'NO'} | {peak(ours):,.0f} | {peak(gpd_name):,.0f} |"
        )
    lines.append("")
    for which in sorted(runs):
        lines.append(f"- {which}: " + ", ".join(f"{r['seconds']:.2f} s" for r in runs[which]))
    if "ours-edit" in runs:
        changed = statistics.median(r["changed"] for r in runs["ours-edit"])
        lines += ["", f"The edit moved {changed:,.0f} cases ({changed / args.rows:.2%})."]
    lines.append("")
    path = RESULTS / "cases.md"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Cases benchmarks\n"
    # the file is a list of sections ("## …"); this run's replaces the one with its heading
    sections = ["## " + part.strip() + "\n" for part in old.split("\n## ")[1:]]
    sections = [sec for sec in sections if sec.splitlines()[0] != heading]
    position = 0 if whole else min(1, len(sections))
    sections.insert(position, "\n".join(lines))
    path.write_text("# Cases benchmarks\n\n" + "\n".join(sections), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
