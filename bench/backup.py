"""Benchmark: ``wuye backup`` + ``wuye restore`` (with its verification) against the plain tools
doing the same without verification (``pg_dump -Fc``, ``tar`` of the photos, ``pg_restore``,
``tar -x``), and a replace-mode import with 1 % changed against today's delete-and-reinsert.

Same database, same photos, same run, alternating rounds. Results go to
``bench/results/backup.md``.

    .venv/bin/python bench/backup.py [--scale 30] [--cases 10000] [--photos 1000] [--photo-kb 200]
                                     [--import-rows 200000] [--rounds 3] [--base d402bbd]

The issue asks for ``--scale 300`` (about 1 M facilities), 100,000 cases, 1,000 photos and a 1 M
row import; on a shared two-core machine the defaults are what fits in a few minutes.
``--base`` names the commit whose importer is "today's" (its replace is TRUNCATE/DELETE + COPY):
it is extracted with ``git archive`` into a temporary directory and run from there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if os.environ.get("WUYE_BENCH_BASE_TREE"):
    # the base commit's geo/ and layers/ ahead of ours (bench/ still comes from ours)
    sys.path.insert(0, os.environ["WUYE_BENCH_BASE_TREE"])

import numpy as np
import psycopg
from psycopg import sql

from bench._common import RESULTS, ROOT, bench_database, git_revision, machine, sample_points, server_versions

DISTRICT = "430104"
WUYE = [sys.executable, "-m", "api.cli"]


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the source: demo district, cases, photos -------------------------------------------------
def _source(url: str, home: Path, *, scale: int, cases: int, photos: int, photo_kb: int) -> dict[str, int]:
    from geo.access.scope import Principal
    from geo.cases import workflow
    from geo.cases.shapes import Report
    from geo.demo.load import load_demo
    from geo.io import photos as photo_store
    from geo.programme.inspections import facility_layers
    from geo.steps import run
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_catalogue())
    with psycopg.connect(url) as conn:
        load_demo(conn, load_catalogue(), district_code=DISTRICT, scale=scale)
    admin = Principal("bench", "admin")
    rng = np.random.default_rng(11)
    with psycopg.connect(url, autocommit=True) as conn:
        wkb = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()
        assert wkb is not None
        import shapely

        xs, ys = sample_points(shapely.from_wkb(bytes(wkb[0])), cases, rng, batch=cases * 2)
        kinds = ["garbage_pile", "light_out", "illegal_parking", "stairwell_clutter"]
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            run(
                conn,
                workflow.report(
                    admin,
                    Report(category_code=kinds[i % len(kinds)], lon=float(x), lat=float(y)),
                    district_code=DISTRICT,
                ),
            )
        ids = [r[0] for r in conn.execute("SELECT id FROM cases ORDER BY id LIMIT %s", [photos]).fetchall()]
        body = b"\xff\xd8\xff\xe0" + rng.bytes(photo_kb * 1024)  # incompressible, like a JPEG
        for case_id in ids:
            photo_store.store(
                conn, admin, case_id=case_id, data=body, kind="report", root=home, max_bytes=len(body) + 1
            )
        facilities = sum(
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
            for t in facility_layers()
        )
    return {"facilities": int(facilities), "cases": cases, "photos": len(ids)}


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    out = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def _fresh(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin.rsplit("/", 1)[0] + "/" + name


def _ours(src: str, src_home: Path, admin: str, work: Path) -> dict[str, float]:
    archive = work / "wuye.tar"
    dst_home = work / "dst-ours"
    dst = _fresh(admin, "wuye_bench_restore_ours")
    started = time.perf_counter()
    _run([*WUYE, "backup", str(archive)], {"WUYE_DATABASE_URL": src, "WUYE_HOME": str(src_home)})
    backed = time.perf_counter()
    _run([*WUYE, "restore", str(archive)], {"WUYE_DATABASE_URL": dst, "WUYE_HOME": str(dst_home)})
    done = time.perf_counter()
    size = archive.stat().st_size
    checked = time.perf_counter()
    _run([*WUYE, "backup", "--check", str(archive)])
    check_s = time.perf_counter() - checked
    archive.unlink()
    shutil.rmtree(dst_home)
    return {
        "seconds": done - started,
        "backup_s": backed - started,
        "restore_s": done - backed,
        "bytes": size,
        "check_s": check_s,
    }


def _plain(src: str, src_home: Path, admin: str, work: Path, bindir: Path) -> dict[str, float]:
    dump, photos_tar = work / "plain.dump", work / "photos.tar"
    dst_home = work / "dst-plain"
    dst_home.mkdir()
    dst = _fresh(admin, "wuye_bench_restore_plain")
    started = time.perf_counter()
    _run([str(bindir / "pg_dump"), "-Fc", f"--file={dump}", f"--dbname={src}"])
    _run(["tar", "-cf", str(photos_tar), "-C", str(src_home), "photos"])
    backed = time.perf_counter()
    _run([str(bindir / "pg_restore"), "--no-owner", f"--dbname={dst}", str(dump)])
    _run(["tar", "-xf", str(photos_tar), "-C", str(dst_home)])
    done = time.perf_counter()
    size = dump.stat().st_size + photos_tar.stat().st_size
    dump.unlink()
    photos_tar.unlink()
    shutil.rmtree(dst_home)
    return {"seconds": done - started, "backup_s": backed - started, "restore_s": done - backed, "bytes": size}


# -- replace-mode import ------------------------------------------------------------------------
def _frame(url: str, rows: int, changed: float, round_: int) -> tuple[Any, int]:  # (GeoDataFrame, changed rows)
    import geopandas as gpd
    import shapely

    with psycopg.connect(url) as conn:
        wkb = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM zones").fetchone()
        assert wkb is not None
    rng = np.random.default_rng(5)
    x, y = sample_points(shapely.from_wkb(bytes(wkb[0])), rows, rng, batch=rows)
    power = rng.choice([30, 60, 100], rows)
    n = int(rows * changed)
    if n:
        which = np.random.default_rng(100 + round_).choice(rows, n, replace=False)
        power[which] = 150 + round_  # a value no base row has: every one of them a real change
    frame = gpd.GeoDataFrame(
        {"code": np.char.add("RB-", np.arange(rows).astype(str)), "condition": "normal", "power_w": power},
        geometry=shapely.points(x, y),
        crs="EPSG:4490",
    )
    return frame, n


def _import_worker(which: str, url: str, rows: int, round_: int) -> dict[str, float]:
    """In a subprocess: reset the layer to the base file (untimed), then time one replace import of
    the round's file (1 % changed) the way ``which`` does it."""
    from geo.io.importer import frame_data, import_data
    from layers.catalogue import load_catalogue

    spec = load_catalogue()["street_lights"]

    def data(changed: float) -> tuple[Any, int]:
        frame, n = _frame(url, rows, changed, round_)
        return frame_data(frame.drop(columns="geometry"), np.asarray(frame.geometry.values, dtype=object)), n

    base, _ = data(0.0)
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE street_lights CASCADE")
        import_data(conn, spec, base, source="base", district_code=DISTRICT, mode="append", actor="bench")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE street_lights")
    file, n = data(0.01)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        result = import_data(conn, spec, file, source="bench", district_code=DISTRICT, mode="replace", actor="bench")
        conn.commit()
        elapsed = time.perf_counter() - started
    import geo

    counts = {k: getattr(result, k) for k in ("inserted", "updated", "unchanged", "deleted")}
    return {"seconds": elapsed, "changed": n, **counts, "geo": str(Path(geo.__file__).parent.parent)}


def _import_run(which: str, url: str, rows: int, round_: int, base_tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if which == "base":
        env["WUYE_BENCH_BASE_TREE"] = str(base_tree)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        which,
        "--url",
        url,
        "--import-rows",
        str(rows),
        "--round",
        str(round_),
    ]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{which} import failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _base_tree(commit: str, where: Path) -> Path:
    tree = where / f"base-{commit}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit, "geo", "layers"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=30)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--photos", type=int, default=1_000)
    parser.add_argument("--photo-kb", type=int, default=200)
    parser.add_argument("--import-rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default="d402bbd", help="the commit whose replace import is today's")
    parser.add_argument("--worker", choices=["ours", "base"])
    parser.add_argument("--url")
    parser.add_argument("--round", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "backup.md"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_import_worker(args.worker, args.url, args.import_rows, args.round)))
        return

    from geo.io.backup import client_bindir

    load_before = _load()
    work = Path(tempfile.mkdtemp(prefix="wuye-bench-backup-", dir="/var/tmp"))
    try:
        src = bench_database("wuye_bench_backup_src")
        admin = src.rsplit("/", 1)[0] + "/postgres"
        src_home = work / "src"
        started = time.perf_counter()
        sizes = _source(src, src_home, scale=args.scale, cases=args.cases, photos=args.photos, photo_kb=args.photo_kb)
        print(f"source ready in {time.perf_counter() - started:.0f} s: {sizes}", flush=True)
        with psycopg.connect(src) as conn:
            major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]  # type: ignore[index]
        bindir = client_bindir(int(major))
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
        loads: list[str] = []
        for i in range(args.rounds):
            for which in ["ours", "plain"] if i % 2 == 0 else ["plain", "ours"]:
                res = (
                    _ours(src, src_home, admin, work) if which == "ours" else _plain(src, src_home, admin, work, bindir)
                )
                runs[which].append(res)
                loads.append(_load())
                print(
                    f"round {i + 1} {which:6} {res['seconds']:7.2f} s  {res['bytes'] / 1e6:8.1f} MB  load {loads[-1]}"
                )

        imp_url = bench_database("wuye_bench_replace")
        _prepare_import_db(imp_url)
        tree = _base_tree(args.base, work)
        imports: dict[str, list[dict[str, float]]] = {"ours": [], "base": []}
        for i in range(args.rounds):
            for which in ["ours", "base"] if i % 2 == 0 else ["base", "ours"]:
                res = _import_run(which, imp_url, args.import_rows, i, tree)
                imports[which].append(res)
                loads.append(_load())
                print(f"import round {i + 1} {which:5} {res['seconds']:7.2f} s {res}  load {loads[-1]}", flush=True)
        _write(args, src, sizes, runs, imports, load_before, loads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prepare_import_db(url: str) -> None:
    """The demo district without its lights (the import rounds load their own)."""
    from geo.demo.load import load_demo
    from geo.store.migrate import migrate
    from layers.catalogue import load_catalogue

    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, load_catalogue())
    with psycopg.connect(url) as conn:
        load_demo(conn, load_catalogue(), district_code=DISTRICT)


def _median(runs: list[dict[str, float]], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def _write(
    args: argparse.Namespace,
    url: str,
    sizes: dict[str, int],
    runs: dict[str, list[dict[str, float]]],
    imports: dict[str, list[dict[str, float]]],
    load_before: str,
    loads: list[str],
) -> None:
    ours, plain = runs["ours"], runs["plain"]
    ratio = _median(ours) / _median(plain)
    imp_ratio = _median(imports["ours"]) / _median(imports["base"])
    last = {k: imports["ours"][-1][k] for k in ("updated", "inserted", "unchanged", "deleted")}
    lines = [
        "# Backup, restore and replace-mode import",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}, revision {git_revision()}",
        f"- machine: {machine()}; {server_versions(url)}",
        f"- load average (1/5/15 min) before: {load_before}; after each run: {', '.join(loads)}",
        f"- data: demo `--scale {args.scale}` ({sizes['facilities']:,} facilities), {sizes['cases']:,} cases, "
        f"{sizes['photos']:,} photos of {args.photo_kb} KiB (random bytes behind a JPEG header: incompressible). "
        + (
            "These are the issue's sizes (`--scale 300`, 100,000 cases, a 1 M-row import)."
            if args.scale >= 300 and sizes["cases"] >= 100_000 and args.import_rows >= 1_000_000
            else "The issue asks for `--scale 300` (about 1 M facilities), 100,000 cases and a 1 M-row import; "
            "these are smaller."
        ),
        f"- {args.rounds} rounds, A/B order alternating; medians",
        "",
        "## Backup + restore + verification vs the plain tools",
        "",
        "- ours: `wuye backup FILE` (snapshot counts, `pg_dump -Fc` in that snapshot, sha256 of every photo, "
        "tar) + `wuye restore FILE` into an empty database and photo store (checksums while reading, "
        "the dump loaded in one transaction while the photos unpack, committed once every checksum matched, "
        "one syncfs, photos moved into place, then every table counted and "
        "every photo's presence and size checked against the manifest); each a `wuye` process",
        "- plain: `pg_dump -Fc` + `tar -cf` of the photos + `pg_restore` + `tar -xf`, no verification",
        "",
        "| | median s | backup s | restore s | size MB |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| wuye | {_median(ours):.2f} | {_median(ours, 'backup_s'):.2f} | {_median(ours, 'restore_s'):.2f} "
        f"| {_median(ours, 'bytes') / 1e6:.1f} |",
        f"| plain | {_median(plain):.2f} | {_median(plain, 'backup_s'):.2f} | {_median(plain, 'restore_s'):.2f} "
        f"| {_median(plain, 'bytes') / 1e6:.1f} |",
        "",
        f"**Overhead ratio {ratio:.2f}×** (goal ≤ 1.3× including verification: "
        f"{'met' if ratio <= 1.3 else 'NOT met'}). "
        f"`wuye backup --check` of the archive on its own: median {_median(ours, 'check_s'):.2f} s.",
        "",
        "| round | wuye s | plain s |",
        "| --- | ---: | ---: |",
        *(
            f"| {i + 1} | {a['seconds']:.2f} | {b['seconds']:.2f} |"
            for i, (a, b) in enumerate(zip(ours, plain, strict=True))
        ),
        "",
        "## Replace-mode import, 1 % changed",
        "",
        f"{args.import_rows:,} street lights loaded as the base (untimed, before every timed run); the file "
        f"has the same codes with 1 % ({int(args.import_rows * 0.01):,}) of the rows changed (`power_w`). "
        f"Timed: `import_data(..., mode='replace')` of that file, in one transaction, validation included.",
        "- ours: match by code: update the changed rows (new version + history row), insert nothing, delete nothing",
        f"- base: the importer of commit {args.base} (today's): TRUNCATE + COPY of every row, indexes rebuilt "
        "(run from `git archive` of that commit)",
        "- each does what its version does: ours also checks the rows it writes for facilities outside "
        "every zone and points within 0.5 m (issue 14.6), the base checks nothing of the kind",
        "",
        "| | median s | rounds |",
        "| --- | ---: | --- |",
        *(
            f"| {k} | {_median(v):.2f} | {', '.join(format(r['seconds'], '.2f') for r in v)} |"
            for k, v in (
                ("ours (by code)", imports["ours"]),
                (f"base {args.base} (delete + reinsert)", imports["base"]),
            )
        ),
        "",
        f"**ours / base = {imp_ratio:.2f}×** (goal ≤ 1: {'met' if imp_ratio <= 1 else 'NOT met'}). "
        f"Counts of the last ours round: {json.dumps(last)}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
