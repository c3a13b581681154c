"""The ``wuye`` command line. It calls the same geo/ functions as the API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import ImportRejected, InvalidInput, WuyeError
from geo.io import MODES
from geo.settings import Settings
from geo.steps import run
from geo.store import embedded
from geo.store.db import connect, database_url, embedded_cluster

if TYPE_CHECKING:
    import psycopg

    from geo.access.scope import Principal
    from geo.io.importer import ImportResult
from layers.catalogue import load_catalogue


def _say(text: str) -> None:
    print(text, flush=True)


def _progress() -> bool:
    return sys.stderr.isatty()


def _migrated_url(settings: Settings) -> str:
    from geo.store.migrate import migrate

    url = database_url(settings.db)
    with connect(url, autocommit=True) as conn:
        ran = migrate(conn, load_catalogue())
    if ran:
        _say(f"已迁移 migrated: {', '.join(ran)}")
    return url


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """db start|stop|status|url|migrate|grant-readonly NAME."""
    if args.action == "grant-readonly":
        from geo.store.readonly import grant_readonly

        if not args.name:
            _say("错误 error: grant-readonly needs the role's NAME")
            return 2
        password, generated = _password(args)
        url = _migrated_url(settings)
        with connect(url, autocommit=True) as conn:
            tables = grant_readonly(conn, load_catalogue(), args.name, password)
        _say(
            f"只读角色 read-only role '{args.name}': SELECT on {', '.join(tables)}; every transaction read-only "
            "(修改请通过 API edit through the API, which keeps versions and history)"
        )
        if generated:
            _say(f"密码 password (shown once): {password}")
        return 0
    if args.action == "migrate":
        url = _migrated_url(settings)
        _say(f"数据库已是最新 schema up to date: {url}")
        return 0
    if settings.db.database_url:
        if args.action in ("url", "status"):
            _say(
                settings.db.database_url
                if args.action == "url"
                else f"external database (WUYE_DATABASE_URL): {settings.db.database_url}"
            )
            return 0
        _say("WUYE_DATABASE_URL is set: the embedded database is not used, nothing to start or stop")
        return 0
    cluster = embedded_cluster(settings.db)
    if args.action == "start":
        state = embedded.start(cluster, tcp=settings.db.db_listen_tcp)
        embedded.ensure_database(cluster, settings.db.database_name)
        where = f"127.0.0.1:{state.port} and " if settings.db.db_listen_tcp else ""
        _say(f"数据库已启动 running on {where}socket {cluster.run_dir} (pid {state.pid}), data in {cluster.root}")
        _say(embedded.server_url(cluster, settings.db.database_name, tcp=settings.db.db_listen_tcp))
    elif args.action == "stop":
        if embedded.status(cluster).running:
            others = embedded.clients(cluster)
            if others:
                _say(
                    f"注意 note: {len(others)} connection(s) still open ({', '.join(sorted(set(others)))}): "
                    "a running `wuye serve` answers 503 until `wuye db start`, then reconnects by itself"
                )
        _say("数据库已停止 stopped" if embedded.stop(cluster) else "数据库未运行 was not running")
    elif args.action == "status":
        state = embedded.status(cluster)
        where = f"{cluster.root}" + (
            " (relocated: the postgres user cannot use the checkout's var/, or its socket path is too long)"
            if cluster.relocated
            else ""
        )
        running = f"running on port {state.port}, pid {state.pid}" if state.running else "stopped"
        _say(f"embedded PostGIS: {running}\ndata directory: {where}\npassword file: {cluster.passfile}")
        return 0 if state.running else 3
    elif args.action == "url":
        state = embedded.status(cluster)
        if not state.running or state.port is None:
            _say("embedded database is not running: run `wuye db start`")
            return 3
        # The URL names the password file (passfile=), never the password: psql "$(wuye db url)"
        # works for whoever may read that 0600 file, and the password stays out of `ps` and history.
        _say(embedded.server_url(cluster, settings.db.database_name, tcp=settings.db.db_listen_tcp))
    return 0


def _print_result(result: ImportResult) -> None:
    parts = [f"读入 read {result.rows_read}", f"新增 inserted {result.inserted}"]
    if result.updated or result.unchanged or result.deleted:
        parts += [f"更新 updated {result.updated}", f"未变 unchanged {result.unchanged}"]
    if result.deleted:
        parts.append(f"删除 deleted {result.deleted}")
    if result.rejected:
        parts.append(f"跳过 skipped {result.rejected}")
    _say(f"{result.layer}: " + ", ".join(parts) + f" (batch {result.batch_id})")
    if result.ignored_columns:
        _say(f"  ignored columns not in the layer spec: {', '.join(result.ignored_columns)}")
    for warning in result.warnings[:10]:
        _say(f"  row {warning.row}: {warning.reason}")
    if len(result.warnings) > 10:
        _say(f"  … and {len(result.warnings) - 10} more warning(s) in the report")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a file into a layer."""
    from geo.io.importer import import_file, write_report

    url = _migrated_url(settings)
    report = Path(args.report) if args.report else Path(args.path).with_suffix(".errors.csv")
    with connect(url) as conn:
        try:
            result = import_file(
                conn,
                load_catalogue(),
                Path(args.path),
                layer=args.layer,
                district_code=settings.district.district_code,
                crs=args.crs,
                mode=args.mode,
                skip_invalid=args.skip_invalid,
                strict=args.strict,
                actor=args.actor,
                progress=_progress(),
            )
        except ImportRejected as e:
            _rejected_report(e, report)
            raise
    _print_result(result)
    if result.problems or result.warnings:
        write_report(result.problems, report, result.warnings)
        _say(f"报告 report ({len(result.problems)} problems, {len(result.warnings)} warnings 警告): {report}")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Export a layer to a file."""
    from geo.io.exporter import export_layer

    catalogue = load_catalogue()
    if args.layer not in catalogue:
        raise WuyeError(f"layer '{args.layer}' is not in the catalogue ({', '.join(catalogue)})", field="layer")
    url = _migrated_url(settings)
    with connect(url) as conn:
        n = export_layer(
            conn,
            catalogue[args.layer],
            Path(args.out),
            fmt=args.format,
            district_code=settings.district.district_code,
            crs=args.crs,
        )
    _say(f"{args.layer}: 导出 exported {n} features to {args.out}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Report spatial integrity violations and photo rows/files out of step (``--repair`` removes
    the latter); exit 1 when any problem is left."""
    from geo.io import photos
    from geo.spatial.integrity import check_all

    url = _migrated_url(settings)
    root = settings.db.home
    with connect(url, autocommit=True) as conn:
        found = check_all(conn, load_catalogue(), district_code=settings.district.district_code)
        shots = photos.audit(conn, root, min_age_s=args.min_age)
        if args.repair and shots.problems:
            photos.repair(conn, shots)
    for v in found:
        _say(v.describe())
    _say(f"空间关系检查 integrity check: {len(found)} problem(s)")
    for table, photo_id, relative in shots.missing:
        _say(f"照片缺文件 photo row without its file: {table} {photo_id} ({relative})")
    for path in shots.orphans:
        _say(f"孤立照片文件 photo file without a row: {path.relative_to(root)}")
    for path in shots.recent:
        _say(f"新文件（可能正在上传）recent file without a row, left alone: {path.relative_to(root)}")
    if args.repair and shots.problems:
        _say(
            f"已修复 repaired: {len(shots.missing)} row(s) without a file deleted, "
            f"{len(shots.orphans)} orphan file(s) removed"
        )
        left = 0
    else:
        left = shots.problems
        _say(f"照片检查 photo check: {left} problem(s)" + (" (`wuye check --repair` removes them)" if left else ""))
    return 1 if found or left else 0


def _archive_summary(outcome: object) -> str:
    from geo.io.backup import Outcome

    assert isinstance(outcome, Outcome)
    m = outcome.manifest
    rows = sum(m.tables.values())
    return (
        f"{len(m.tables)} tables, {rows:,} rows, {len(m.photos)} photos, "
        f"archive {outcome.archive_bytes / 1e6:,.1f} MB (made {m.created_at}, PostgreSQL {m.versions['postgresql']})"
    )


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """backup FILE: database dump + photos + manifest in one archive; --check FILE verifies one."""
    from geo.io import backup

    archive = Path(args.file)
    if args.check:
        outcome = backup.check(archive, progress=_progress())
        for problem in outcome.problems:
            _say(f"问题 problem: {problem}")
        verdict = "完好 intact" if not outcome.problems else f"损坏 damaged: {len(outcome.problems)} problem(s)"
        _say(f"备份校验 backup check: {verdict}: {_archive_summary(outcome)}")
        return 1 if outcome.problems else 0
    outcome = backup.backup(database_url(settings.db), settings.db.home, archive, progress=_progress())
    for missing in outcome.manifest.missing_photos:
        _say(f"注意 note: photo row without its file, not in the archive: {missing} (see `wuye check`)")
    _say(f"已备份 backed up to {archive}: {_archive_summary(outcome)}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """restore FILE [--force]: into an empty WUYE_HOME / database, verified against the manifest."""
    from geo.io import backup

    url = database_url(settings.db)
    recreate = None
    if not settings.db.database_url:
        cluster = embedded_cluster(settings.db)

        def recreate() -> str:
            embedded.drop_database(cluster, settings.db.database_name)
            return embedded.ensure_database(cluster, settings.db.database_name)

    outcome = backup.restore(
        url, settings.db.home, Path(args.file), force=args.force, recreate=recreate, progress=_progress()
    )
    for problem in outcome.problems:
        _say(f"问题 problem: {problem}")
    if outcome.problems:
        _say(f"恢复后校验未通过 restored, but verification FAILED: {len(outcome.problems)} problem(s)")
        return 1
    _say(f"已恢复并校验 restored and verified: {_archive_summary(outcome)}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Load the demo district."""
    from geo.demo.load import is_loaded, load_demo

    url = _migrated_url(settings)
    code = settings.district.district_code
    if args.users and not settings.auth.demo_users:
        _say("演示账号已停用 demo accounts are switched off (WUYE_DEMO_USERS=false): none made")
        return 2
    with connect(url) as conn:
        if (args.if_empty or args.users) and is_loaded(conn, code):
            if args.users:
                return _demo_users(conn, code)
            _say("演示数据已存在 demo district already loaded; nothing to do")
            return 0
        result = load_demo(
            conn,
            load_catalogue(),
            district_code=code,
            seed=args.seed,
            scale=args.scale,
            progress=_progress(),
            on_layer=lambda name: _say(f"载入 loading {name} …"),
        )
    _say(f"units: {result.units}")
    for res in result.layers.values():
        _print_result(res)
    _say(f"巡更演示 patrols: {result.patrols[0]} 个巡更点 checkpoints, {result.patrols[1]} 次打卡 scans")
    if args.users:
        with connect(url) as conn:
            return _demo_users(conn, code)
    return 0


def _demo_users(conn: psycopg.Connection, district_code: str) -> int:
    """Make the demo accounts and print each new one's password, this once."""
    from geo.access import users

    made = users.create_demo_users(conn, district_code=district_code, actor="wuye demo --users")
    _say("演示账号（仅供试用，密码只显示这一次）demo accounts (for trying each role; passwords shown once):")
    for user, password in made:
        scope = user.subdistrict_code or ",".join(user.zone_codes) or user.unit_code or "全区"
        shown = password if password is not None else "（已存在，密码不再显示 exists; not shown again）"
        _say(f"  {user.username:24} {user.role:18} {scope:30} {shown}")
    _say("关闭演示账号：WUYE_DEMO_USERS=false switch them off: WUYE_DEMO_USERS=false")
    return 0


FIRST_ADMIN = (
    "尚无管理员账户 no administrator yet. 创建第一个管理员 create the first one:\n"
    "  .venv/bin/wuye user add <用户名 username> --role admin\n"
    "  （在终端中会提示输入密码；否则生成一个并只显示一次 a terminal asks for the password, else one is made"
    " and shown once）\n"
    "试用各角色 to try each role: wuye demo --users（演示账号 demo accounts）"
)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, then serve the API with uvicorn in ``WUYE_WORKERS`` processes (default 1)."""
    import uvicorn

    from api.app import create_app
    from geo.access import users

    if args.workers is not None and not 1 <= args.workers <= 32:
        _say("错误 error: --workers 须在 1 到 32 之间 must be 1..32")
        return 2
    url = _migrated_url(settings)
    with connect(url) as conn:
        if users.admin_count(conn, settings.district.district_code) == 0:
            _say(FIRST_ADMIN)
    # Built here whatever the number of processes, before logging is set up: what the settings refuse
    # (a basemap file that is gone, say) is said once, before listening, not by each worker as uvicorn
    # restarts it.
    app = create_app(settings, database=url)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = args.workers or settings.server.worker_count()
    from api import logs

    _say(f"服务地址 serving on http://{host}:{port}（{workers} 个进程 worker processes）")
    # SIGTERM (or Ctrl-C): stop accepting, finish the requests in flight for at most
    # WUYE_SHUTDOWN_TIMEOUT_S, then close the pools; uvicorn's access log is off (ours has the
    # request id and the user).
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": logs.configure(settings.server.log_format),
        "access_log": False,
        # X-Forwarded-For is read by api/auth.py, and only from WUYE_TRUSTED_PROXIES (uvicorn's own
        # default trusts it from any loopback caller)
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.server.shutdown_timeout_s,
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return 0
    # Several processes share the port (uvicorn's supervisor restarts one that dies); each builds
    # the app from the environment, told the database this process migrated. The background jobs run
    # in one of them at a time (geo/cases/leader.py); kept figures are checked against the database's
    # change counter by each (geo/kept.py), so no process serves another's stale figures.
    os.environ["WUYE_DATABASE_URL"] = url
    uvicorn.run("api.app:create_app", factory=True, workers=workers, **options)
    return 0


def _served(url: str | None, settings: Settings, database: str | None) -> AbstractContextManager[str]:
    """The base URL of our app for Chromium to load map pages from: ``url`` (a running server), or
    the app served in this process on a free loopback port for the duration. (Serving it from a child
    process, ``bench.apart``, was measured for the report batch: no faster on this shared two-core
    machine and about 110 MiB more; bench/report.py --apart.)"""
    from contextlib import nullcontext

    from api.app import create_app
    from api.maps import local_server

    if url:
        return nullcontext(url.rstrip("/"))
    return local_server(create_app(settings, database=database))


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    """Render a zone's map to PNG or PDF (by --out's suffix) in headless Chromium."""
    from maps import snapshot

    out = Path(args.out)
    pdf = out.suffix.lower() == ".pdf"
    width, height = args.width or (1123 if pdf else 1200), args.height or (794 if pdf else 800)
    with _served(args.url, settings, _migrated_url(settings) if not args.url else None) as base:
        render = snapshot.render_zone_pdf if pdf else snapshot.render_zone_png
        data = render(base, args.zone, width, height, lang=args.lang)
    snapshot.close()
    out.write_bytes(data)
    _say(f"已生成 wrote {out} ({len(data):,} bytes, {width}×{height})")
    return 0


def cmd_styles(args: argparse.Namespace, settings: Settings) -> int:
    """styles --out DIR: every layer's QGIS style (QML) and SLD, as /collections/{id}/styles serves them."""
    from maps import qgis_styles

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = load_catalogue()
    for spec in catalogue.values():
        (out / f"{spec.name}.qml").write_text(qgis_styles.qml(spec), encoding="utf-8")
        (out / f"{spec.name}.sld").write_text(qgis_styles.sld(spec), encoding="utf-8")
    _say(f"已写出样式 wrote {2 * len(catalogue)} style files (QML, SLD) to {out}")
    return 0


def cmd_qgis_project(args: argparse.Namespace, settings: Settings) -> int:
    """qgis-project --out FILE.qgz [--url BASE]: the planners' QGIS project of every layer on the server."""
    from maps.qgis_project import write_project

    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidInput(f"--url must be an http(s) address, got {base!r}", field="url")
    path = write_project(Path(args.out), load_catalogue(), base)
    _say(f"已写出 QGIS 工程 wrote the QGIS project {path} (server {base}); 打开方法见 README「QGIS 使用说明」")
    return 0


def cmd_layers(args: argparse.Namespace, settings: Settings) -> int:
    """List the layer catalogue."""
    for name, spec in load_catalogue().items():
        attrs = ", ".join(a.name + ("*" if a.required else "") for a in spec.attributes)
        _say(f"{name:18} {spec.title_zh:8} {spec.geometry:15} {spec.change:9} {attrs}")
    return 0


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin, a prompt, or a generated one (shown once)."""
    import getpass
    import secrets

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        return getpass.getpass("密码 password: "), False
    while True:  # one that the password policy takes (three classes of four)
        password = secrets.token_urlsafe(12)
        if all(any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit)):
            return password, True


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """user add|list|disable|enable|set-role."""
    from geo.access import users

    url = _migrated_url(settings)
    code = settings.district.district_code
    zones = tuple(z for z in (args.zones or "").split(",") if z) if hasattr(args, "zones") else ()
    with connect(url, autocommit=True) as conn:
        if args.action == "list":
            for u in users.list_users(conn, code):
                scope = u.subdistrict_code or ",".join(u.zone_codes) or u.unit_code or "-"
                state = "停用 disabled" if u.disabled else "启用 active"
                _say(f"{u.username:20} {u.role:18} {scope:28} {state}")
            return 0
        if not args.username:
            raise WuyeError("a username is required", field="username")
        if args.action == "add":
            if not args.role:
                raise WuyeError("--role is required", field="role")
            password, generated = _password(args)
            user = users.create_user(
                conn,
                username=args.username,
                password=password,
                role=args.role,
                district_code=code,
                actor="cli",
                display_name=args.name,
                subdistrict_code=args.subdistrict,
                zone_codes=zones,
                unit_code=args.unit,
                policy=users.PasswordPolicy(
                    classes=settings.auth.password_classes, max_days=settings.auth.password_max_days
                ),
            )
            _say(f"已添加用户 added {user.username} ({user.role})")
            if generated:
                _say(f"初始密码 initial password (shown once): {password}")
        elif args.action in ("disable", "enable"):
            users.update_user(conn, args.username, actor="cli", district_code=code, disabled=args.action == "disable")
            done = "已停用 disabled, tokens revoked" if args.action == "disable" else "已启用 enabled"
            _say(f"{args.username}: {done}")
        elif args.action == "set-role":
            if not args.role:
                raise WuyeError("--role is required", field="role")
            user = users.update_user(
                conn,
                args.username,
                actor="cli",
                district_code=code,
                role=args.role,
                subdistrict_code=args.subdistrict,
                zone_codes=zones or None,
                unit_code=args.unit,
            )
            _say(f"{user.username}: role {user.role}")
    return 0


def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    """Re-assign every open case by spatial join (one set-based statement)."""
    from geo.cases.workflow import escalate_overdue, reassign_all

    url = _migrated_url(settings)
    with connect(url, autocommit=True) as conn:
        n = reassign_all(conn, district_code=settings.district.district_code, actor="cli")
        _say(f"重新分派 {n} case(s) re-routed")
        if args.escalate_after_hours is not None:
            from datetime import timedelta

            m = escalate_overdue(
                conn,
                district_code=settings.district.district_code,
                grace=timedelta(hours=args.escalate_after_hours),
                actor="cli",
            )
            _say(f"超期升级 {m} case(s) escalated to their sub-district office")
    return 0


def _cli_admin() -> Principal:
    from geo.access.scope import Principal

    return Principal(username="cli", role="admin")


def _rejected_report(e: ImportRejected, path: Path) -> None:
    from geo.io.importer import write_report
    from geo.spatial.validate import Problem

    write_report([Problem(**p) for p in e.details["problems"]], path)
    _say(f"错误报告 error report: {path}")


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """report acceptance --zone CODE | --all --out DIR: acceptance PDFs (and the district summary)."""
    import time

    from maps import report, snapshot

    url = _migrated_url(settings)
    started = time.perf_counter()
    if args.issue:
        if not args.all:
            raise WuyeError("--issue goes with --all (one zone: POST /zones/{code}/verdicts)", field="issue")
        files = _issue_all(settings, url, Path(args.out), args.url)
        snapshot.close()
        for path in files:
            _say(f"已生成 wrote {path}")
        _say(f"{len(files)} file(s) in {time.perf_counter() - started:.1f} s")
        return 0
    with connect(url) as conn, _served(args.url, settings, url) as base:
        files = report.write_all(
            conn,
            Path(args.out),
            base_url=base,
            district_code=settings.district.district_code,
            district_name=settings.district.district_name,
            rules=settings.acceptance,
            zone_codes=None if args.all else [args.zone],
            workers=args.workers,
            fee_grace_months=settings.programme.fee_grace_months,
        )
    snapshot.close()
    if not files:
        raise WuyeError(f"zone '{args.zone}' does not exist", field="zone")
    for path in files:
        _say(f"已生成 wrote {path}")
    _say(f"{len(files)} file(s) in {time.perf_counter() - started:.1f} s")
    return 0


def _issue_all(settings: Settings, url: str, out: Path, server: str | None) -> list[Path]:
    """Issue every zone's verdict that can be issued (one browser for all the maps), then write the issued
    PDFs as stored and the district summary (PDF + XLSX, with the new numbers) into ``out``."""
    from geo.programme import acceptance, rewards, verdicts
    from maps import report

    district = settings.district
    with connect(url) as conn, _served(server, settings, url) as base:
        done = verdicts.issue_all(
            conn,
            _cli_admin(),
            district_code=district.district_code,
            rules=settings.acceptance,
            render_all=lambda rows: report.render_zone_pdfs(rows, base_url=base, district_name=district.district_name),
            fee_grace_months=settings.programme.fee_grace_months,
        )
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for doc in done["issued"]:
            pdf, _, number = run(conn, verdicts.document_pdf(doc["id"], district_code=district.district_code))
            path = out / f"{doc['zone_code']}.pdf"
            path.write_bytes(pdf)
            files.append(path)
            _say(f"签发 issued {number}: {doc['zone_code']} ({doc['verdict']})")
        for skipped in done["skipped"]:
            _say(f"未签发 not issued {skipped['zone_code']}: {skipped['reason_zh'] or skipped['reason']}")
        rows = acceptance.district_figures(
            conn,
            district_code=district.district_code,
            rules=settings.acceptance,
            fee_grace_months=settings.programme.fee_grace_months,
        )
        points = rewards.points_of(conn, rows, district_code=district.district_code, rules=settings.acceptance)
    return files + report.write_summary(
        rows, out, district_name=district.district_name, rules=settings.acceptance, points=points
    )


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    """inspect record LAYER CODE --condition C | inspect import FILE: maintenance records."""
    from datetime import date

    from geo.programme import inspections

    url = _migrated_url(settings)
    code = settings.district.district_code
    with connect(url) as conn:
        if args.action == "import":
            path = Path(args.target[0])
            try:
                n = inspections.import_file(conn, _cli_admin(), path, district_code=code, actor=args.actor)
            except ImportRejected as e:
                _rejected_report(e, path.with_suffix(".errors.csv"))
                raise
            _say(f"巡查记录 inspections recorded: {n}")
            return 0
        if len(args.target) != 2 or not args.condition:
            raise WuyeError("usage: wuye inspect record LAYER CODE --condition C [--date D] [--inspector I]")
        when = date.fromisoformat(args.date) if args.date else inspections.today()
        item = inspections.Inspection(
            args.target[0], args.target[1], when, args.inspector or args.actor, args.condition, args.note
        )
        row = inspections.record(conn, _cli_admin(), item, district_code=code, actor=args.actor, source="cli")
        _say(f"{args.target[0]} {args.target[1]}: {row['condition_zh']} ({row['inspected_on']}, {row['inspector']})")
    return 0


def cmd_survey(args: argparse.Namespace, settings: Settings) -> int:
    """survey import FILE [--round L --kind K] [--replace] | rounds | round-add L --kind K --zones Z,…
    | judge ZONE --round L --reason R | withdraw --answer N|--batch N --reason R: answers and rounds."""
    from geo.programme import rounds, surveys

    url = _migrated_url(settings)
    district = settings.district.district_code
    with connect(url) as conn:
        if args.action == "rounds":
            for r in rounds.rounds(conn, district_code=district):
                answered = ", ".join(f"{z} {n}" for z, n in r["answers"].items()) or "-"
                _say(f"{r['label']:14} {r['kind_zh']:5} {r['starts_on'] or '-'}..{r['ends_on'] or '-'}  {answered}")
            return 0
        if args.action == "round-add":
            zones = [z.strip() for z in (args.zones or "").split(",") if z.strip()]
            r = rounds.declare(
                conn,
                district_code=district,
                label=args.target,
                kind=args.kind or "",
                zone_codes=zones,
                starts_on=date.fromisoformat(args.starts) if args.starts else None,
                ends_on=date.fromisoformat(args.ends) if args.ends else None,
                organiser=args.organiser,
                actor="cli",
            )
            _say(f"调查轮次 round {r['label']} ({r['kind_zh']}): {', '.join(r['zone_codes'])}")
            return 0
        if args.action == "withdraw":
            from geo.programme import corrections

            if (args.answer is None) == (args.batch is None):
                raise InvalidInput("survey withdraw needs one of --answer N or --batch N", field="answer")
            if args.batch is not None:
                out = corrections.withdraw_batch(
                    conn,
                    _cli_admin(),
                    args.batch,
                    reason=args.reason or "",
                    district_code=district,
                    new_version=args.new_version,
                )
                _say(f"导入批次 batch {out['batch']}: {out['withdrawn']} answers withdrawn ({out['reason']})")
            else:
                one = corrections.withdraw_answer(
                    conn,
                    _cli_admin(),
                    args.answer,
                    reason=args.reason or "",
                    district_code=district,
                    new_version=args.new_version,
                )
                _say(f"答卷 answer #{one['id']} withdrawn ({one['withdrawn_reason']})")
            return 0
        if args.action == "judge":
            fixed = rounds.fix_zone_round(
                conn, "admin", args.target, args.round, district_code=district, reason=args.reason or "", actor="cli"
            )
            _say(f"{fixed['zone_code']}: 评定轮次 judged on {fixed['round'] or 'its latest round'}")
            return 0
        if not args.target:
            raise InvalidInput("survey import needs the FILE to import", field="path")
        path = Path(args.target)
        try:
            result = surveys.import_file(
                conn,
                _cli_admin(),
                path,
                district_code=district,
                replace=args.replace,
                round_=args.round,
                round_kind=args.kind,
            )
        except ImportRejected as e:
            _rejected_report(e, Path(args.report) if args.report else path.with_suffix(".errors.csv"))
            raise
    _say(
        f"调查答卷 answers: {result['rows']} rows, {result['inserted']} new, {result['replaced']} replaced "
        f"(batch {result['batch']}, round {', '.join(result['rounds'])})"
    )
    return 0


def cmd_remediation(args: argparse.Namespace, settings: Settings) -> int:
    """remediation plan [--zone Z] | progress: the plan's items per zone, and progress."""
    from geo.programme import remediation

    url = _migrated_url(settings)
    code = settings.district.district_code
    with connect(url) as conn:
        if args.action == "plan":
            n = remediation.plan_items(conn, district_code=code, actor="cli", zone_code=args.zone)
            _say(f"整治任务 tasks created: {n}")
            return 0
        for row in remediation.progress(conn, district_code=code):
            name = row["zone_code"] or row["subdistrict_code"] or "全区 district"
            _say(
                f"{row['level']:11} {name:20} tasks {row['tasks']:4}  verified {row['verified']:4} "
                f"({row['verified_percent'] if row['verified_percent'] is not None else '-'}%)  "
                f"overdue {row['overdue']}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``wuye``."""
    parser = argparse.ArgumentParser(prog="wuye", description="wuye-gis 社区物业化服务 GIS")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="migrate and serve the API (启动服务)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="processes (default WUYE_WORKERS, 1; 0: one per core, at most 4)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("db", help="embedded database: start|stop|status|url|migrate|grant-readonly NAME")
    p.add_argument("action", choices=["start", "stop", "status", "url", "migrate", "grant-readonly"])
    p.add_argument("name", nargs="?", help="grant-readonly: the database role for desktop GIS users")
    p.add_argument("--password-stdin", action="store_true", help="grant-readonly: read the password from stdin")
    p.set_defaults(func=cmd_db)
    p = sub.add_parser("import", help="import a GeoJSON/GeoPackage/Shapefile/CSV file (导入)")
    p.add_argument("path")
    p.add_argument("--layer", required=True)
    p.add_argument("--crs", help="source CRS, e.g. EPSG:4490 (required for CSV and .prj-less Shapefiles)")
    p.add_argument("--mode", choices=MODES, default="append")
    p.add_argument("--skip-invalid", action="store_true", help="load the valid rows, report the rest")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse the file when it has warnings (facilities outside every zone, points within 0.5 m)",
    )
    p.add_argument("--report", help="where to write the error report (CSV)")
    p.add_argument("--actor", default="cli", help="who is importing (recorded in the batch)")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export", help="export a layer (导出)")
    p.add_argument("--layer", required=True)
    p.add_argument("--format", choices=["geojson", "gpkg", "shp", "csv"], required=True)
    p.add_argument("--crs")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("check", help="spatial integrity and photo store check (空间关系与照片检查)")
    p.add_argument(
        "--repair", action="store_true", help="delete photo rows without a file and remove files without a row"
    )
    p.add_argument(
        "--min-age",
        type=float,
        default=60.0,
        help="seconds: a file without a row younger than this may be an upload committing now; left alone",
    )
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("backup", help="back up database + photos to one archive; --check FILE verifies one (备份)")
    p.add_argument("file", help="the archive to write (or to check)")
    p.add_argument("--check", action="store_true", help="verify the archive without restoring it")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore an archive into an empty WUYE_HOME or database, verified (恢复)")
    p.add_argument("file", help="the archive written by `wuye backup`")
    p.add_argument("--force", action="store_true", help="replace a non-empty database and photo store")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("demo", help="load the demo district (演示数据)")
    p.add_argument("--scale", type=int, default=1, help="N times as many facilities")
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--if-empty", action="store_true", help="do nothing when zones are loaded")
    p.add_argument(
        "--users", action="store_true", help="also one demo account per role, passwords printed once (演示账号)"
    )
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("user", help="users: add|list|disable|enable|set-role (用户管理)")
    p.add_argument("action", choices=["add", "list", "disable", "enable", "set-role"])
    p.add_argument("username", nargs="?")
    p.add_argument("--role", help="admin, planner, subdistrict_staff, property_team, contractor, survey_team, resident")
    p.add_argument("--name", help="display name")
    p.add_argument("--subdistrict", help="scope of subdistrict_staff (sub-district code)")
    p.add_argument("--zones", help="scope of property_team / survey_team (comma-separated zone codes)")
    p.add_argument("--unit", help="scope of contractor (unit code)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_user)
    p = sub.add_parser("assign", help="re-assign open cases by spatial join (重新分派)")
    p.add_argument("--all", action="store_true", required=True, help="every open case")
    p.add_argument("--escalate-after-hours", type=float, help="also escalate cases overdue by this long")
    p.set_defaults(func=cmd_assign)
    p = sub.add_parser("styles", help="write every layer's QGIS style (QML) and SLD (图层样式)")
    p.add_argument("--out", required=True, help="folder for NAME.qml and NAME.sld")
    p.set_defaults(func=cmd_styles)
    p = sub.add_parser("qgis-project", help="write a QGIS project of every layer on the server (QGIS 工程)")
    p.add_argument("--out", required=True, help="the project file, FILE.qgz (or FILE.qgs)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server's address as QGIS reaches it")
    p.set_defaults(func=cmd_qgis_project)
    p = sub.add_parser("layers", help="list the layer catalogue (图层目录)")
    p.set_defaults(func=cmd_layers)
    p = sub.add_parser("report", help="acceptance reports: PDF per zone, district summary PDF + XLSX (验收报告)")
    p.add_argument("kind", choices=["acceptance"])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--zone", help="one zone's code")
    which.add_argument("--all", action="store_true", help="every zone, plus summary.pdf and summary.xlsx")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=int, help="PDF render processes (default: one thread of this process)")
    p.add_argument("--url", help="a running server to draw the maps from (default: start one on a free port)")
    p.add_argument(
        "--issue",
        action="store_true",
        help="with --all: issue (签发) every zone's verdict that can be issued, then write the issued PDFs and summary",
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("inspect", help="maintenance records: record LAYER CODE | import FILE (巡查记录)")
    p.add_argument("action", choices=["record", "import"])
    p.add_argument("target", nargs="+", help="LAYER CODE (record) or FILE (import, CSV/XLSX)")
    p.add_argument("--condition", help="normal/faulty/repairing/removed or 正常/故障/维修中/已拆除")
    p.add_argument("--date", help="inspection date YYYY-MM-DD (default: today)")
    p.add_argument("--inspector")
    p.add_argument("--note")
    p.add_argument("--actor", default="cli")
    p.set_defaults(func=cmd_inspect)
    p = sub.add_parser(
        "survey",
        help="survey answers and rounds: import FILE | rounds | round-add LABEL | judge ZONE | withdraw (满意度调查)",
    )
    p.add_argument("action", choices=["import", "rounds", "round-add", "judge", "withdraw"])
    p.add_argument("target", nargs="?", help="FILE (import), LABEL (round-add) or ZONE (judge)")
    p.add_argument("--round", help="import: the round of every row; judge: the round fixed for the zone")
    p.add_argument("--kind", help="first (首次验收) or redo (补课): of a round created by import or round-add")
    p.add_argument("--zones", help="round-add: the zones it covers (comma-separated codes)")
    p.add_argument("--starts", help="round-add: first day YYYY-MM-DD")
    p.add_argument("--ends", help="round-add: last day YYYY-MM-DD")
    p.add_argument("--organiser", help="round-add: who organised it")
    p.add_argument("--reason", help="judge, withdraw: why")
    p.add_argument("--answer", type=int, help="withdraw: one answer's id")
    p.add_argument("--batch", type=int, help="withdraw: every answer of an import batch")
    p.add_argument(
        "--new-version", action="store_true", help="withdraw from a round whose verdict was issued (then issue anew)"
    )
    p.add_argument("--replace", action="store_true", help="replace a household's earlier answer of the round")
    p.add_argument("--report", help="where to write the error report (CSV)")
    p.set_defaults(func=cmd_survey)
    p = sub.add_parser("remediation", help="remediation: plan [--zone Z] | progress (整治)")
    p.add_argument("action", choices=["plan", "progress"])
    p.add_argument("--zone", help="only this zone (plan)")
    p.set_defaults(func=cmd_remediation)
    p = sub.add_parser("snapshot", help="render a zone's map to PNG or PDF (小区图快照)")
    p.add_argument("--zone", required=True, help="zone code, e.g. jinling")
    p.add_argument("--out", required=True, help="output file: .png or .pdf")
    p.add_argument("--width", type=int, help="pixels (PNG 1200, PDF 1123)")
    p.add_argument("--height", type=int, help="pixels (PNG 800, PDF 794)")
    p.add_argument("--lang", choices=["zh", "en"], default="zh")
    p.add_argument("--url", help="a running server to render from (default: start one on a free port)")
    p.set_defaults(func=cmd_snapshot)
    return parser


def main(argv: list[str] | None = None, *, settings: Settings | None = None) -> int:
    """Entry point of the ``wuye`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "scale", 1) < 1:
        print("错误 error: --scale must be at least 1", file=sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace, Settings], int] = args.func
    try:
        return handler(args, settings or Settings())
    except WuyeError as e:
        field = f" [{e.field}]" if e.field else ""
        said_zh = f"{e.reason_zh} — " if e.reason_zh else ""  # Chinese first, as the API answers
        print(f"错误 error{field}: {said_zh}{e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
