"""The acceptance desk on the workbench (issue 21 point 5): every zone's verdict (通过 / 补课 / 不作结论)
with the criteria it fails under the four standards, its satisfaction with the 95% interval, its redo
plan with deadlines and its verdict history; an administrator issues (签发) a zone's verdict from the
page; the issued PDFs, the district summary (PDF, XLSX) and the zone's map and snapshot are links to
the routes that serve them.

Thin routes over geo/programme/acceptance.py (the figures of ``GET /acceptance``, one query set for the
district) and verdicts.py (``POST /zones/{code}/verdicts``), under the same guards (api/acceptance.py):
signed-in staff read, administrators issue. A refused issue comes back with the reason in Chinese.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.acceptance import ADMINS, REVIEWERS
from api.auth import CurrentUser
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, reason_zh
from api.ogc_common import base
from api.workbench import Lang, page
from geo.access.scope import Principal
from geo.errors import WuyeError
from geo.programme import acceptance, verdicts
from geo.settings import Settings
from layers.catalogue import vocabulary
from maps import report, web, web_survey

router = APIRouter(tags=["workbench 工作台"])
FormLang = Annotated[str | None, Form(max_length=5)]


def _verdict_key(verdict: str | None) -> str:
    return verdict or "none"


def _zone_row(figures: dict[str, Any], lang: str) -> dict[str, Any]:
    """What the desk shows of a zone, from its acceptance figures (as ``GET /acceptance`` answers them)."""
    criteria = {c["criterion"]: c for c in figures["criteria"]}
    survey = figures["survey"]
    interval = survey.get("wilson_95")
    return {
        "code": figures["zone"]["code"],
        "name": figures["zone"]["name"],
        "subdistrict": figures["zone"]["subdistrict"],
        "verdict": _verdict_key(figures["verdict"]),
        "failed": [criteria[c] for c in figures["failed"]],
        "criteria": figures["criteria"],
        "standards": figures["standards"],
        "survey": survey,
        "interval": [f"{100 * interval[0]:.1f}%", f"{100 * interval[1]:.1f}%"] if interval else None,
        "issue": figures["issue"],
        "history": [{**h, "at": web.local_time(h["issued_at"])} for h in figures["verdict_history"]],
        "redo": figures["redo"],
        "year": figures["zone"]["programme_year"],
    }


def _desk(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
    open_zone: str | None = None,
    skipped: list[str] | None = None,
) -> HTMLResponse:
    rows = acceptance.kept_district_figures(
        conn,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        with_conditions=False,
        fee_grace_months=settings.programme.fee_grace_months,
    )
    zones = [_zone_row(f, lang) for f in rows]
    verdict_labels = vocabulary("verdicts").labels(lang)  # pass, redo and none (no answers: no verdict)
    counts = {k: sum(z["verdict"] == k for z in zones) for k in verdict_labels}
    return page(
        request,
        "acceptance.html",
        principal=user,
        lang=lang,
        form=form,
        current="acceptance",
        d=web_survey.DESK_TEXTS[lang],
        zones=zones,
        counts=counts,
        verdicts=verdict_labels,
        standards=vocabulary("acceptance_standards").labels(lang),
        redo_states=vocabulary("redo_states").labels(lang),
        round_kinds=vocabulary("round_kinds").labels(lang),
        issue_states=vocabulary("issue_states").labels(lang),
        may_issue=user.role in ADMINS.roles,
        open_zone=open_zone,
        skipped=skipped or [],
    )


@router.get("/workbench/acceptance", summary="验收台", dependencies=[Depends(REVIEWERS)], response_class=HTMLResponse)
def desk(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    lang: Lang = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    issued: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """Every zone's verdict, failed criteria, satisfaction with its interval, redo plan and history; the
    issue form for administrators; the downloads."""
    language = web.lang_of(lang)
    message = ""
    if issued is not None:
        doc = verdicts.document(conn, issued, district_code=settings.district.district_code)
        labels = vocabulary("verdicts").labels(language)
        message = web_survey.DESK_TEXTS[language]["issued"].format(
            number=doc["number"], verdict=labels.get(doc["verdict"] or "none", "")
        )
    return _desk(request, conn, settings, user, language, form=FormState(message=message), open_zone=zone)


@router.post("/workbench/acceptance/{code}/issue", summary="签发验收结论（页面表单）", dependencies=[Depends(ADMINS)])
def issue_form(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    round: Annotated[str | None, Form(max_length=40)] = None,
    new_version: Annotated[str | None, Form(max_length=5)] = None,
    reason: Annotated[str | None, Form(max_length=2000)] = None,
    lang: FormLang = None,
) -> Response:
    """Issue the zone's verdict (as ``POST /zones/{code}/verdicts``): its figures, criteria and PDF frozen
    as a numbered document; refused (issued already, redo items waiting, no answers), the desk again with
    the reason in Chinese and what was typed kept."""
    language = web.lang_of(lang)
    try:
        doc = verdicts.issue(
            conn,
            user,
            code,
            district_code=settings.district.district_code,
            rules=settings.acceptance,
            render=lambda figures: report.render_zone_pdf(
                figures, base_url=base(request), district_name=settings.district.district_name
            ),
            round_=(round or "").strip() or None,
            new_version=bool(new_version),
            reason=(reason or "").strip() or None,
            fee_grace_months=settings.programme.fee_grace_months,
        )
    except WuyeError as error:
        kept = {"zone": code, "round": round, "new_version": bool(new_version), "reason": reason}
        refusal = FormState.refused(error, kept, message=f"{code}：{reason_zh(error)}")
        return _desk(request, conn, settings, user, language, form=refusal, open_zone=code)
    query = urlencode({"zone": code, "issued": doc["id"], **({"lang": "en"} if language == "en" else {})})
    return RedirectResponse(f"/workbench/acceptance?{query}#zone-{code}", status_code=303)


@router.post(
    "/workbench/acceptance/issue-all", summary="签发全部可签发的验收结论（页面表单）", dependencies=[Depends(ADMINS)]
)
def issue_all_form(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: FormLang = None
) -> HTMLResponse:
    """Issue every verdict that can be issued (as ``POST /verdicts/issue-all``: one browser for all the
    maps, one transaction); the desk then says which were issued and why the others were not."""
    language = web.lang_of(lang)
    done = verdicts.issue_all(
        conn,
        user,
        district_code=settings.district.district_code,
        rules=settings.acceptance,
        render_all=lambda rows: report.render_zone_pdfs(
            rows, base_url=base(request), district_name=settings.district.district_name
        ),
        fee_grace_months=settings.programme.fee_grace_months,
    )
    d = web_survey.DESK_TEXTS[language]
    message = d["issued_all"].format(n=len(done["issued"]), numbers="、".join(i["number"] for i in done["issued"]))
    skipped = [f"{s['zone_code']}：{s['reason_zh'] or s['reason']}" for s in done["skipped"]]
    return _desk(request, conn, settings, user, language, form=FormState(message=message), skipped=skipped)
