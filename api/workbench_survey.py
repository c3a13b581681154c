"""Survey entry on the workbench (issue 21 point 4): the phone form a survey team fills in at each door,
the import page for a team's CSV/XLSX with every row's problem in a table, and a zone's answers, which
an administrator corrects or withdraws with a reason.

Thin routes over the same geo/ functions as ``POST /zones/{code}/survey``, ``POST /surveys/import``,
``GET /zones/{code}/survey``, ``PATCH /survey/answers/{id}`` and ``POST /survey/answers/{id}/withdraw``
(geo/programme/surveys.py, corrections.py), under the same guards (api/acceptance.py): entry and
reading for survey teams and administrators (a team's own zones: geo/ scopes them), corrections for
administrators. A refused form comes back with the reason in Chinese and what was typed kept.
"""

from __future__ import annotations

import re
import tempfile
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.acceptance import ADMINS, SURVEYORS
from api.auth import CurrentUser
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, form_day, reason_zh, refused
from api.inputs import saved_upload
from api.workbench import Lang, page
from geo.access.scope import Principal
from geo.errors import Conflict, ImportRejected, InvalidInput, NotFound, WuyeError
from geo.programme import corrections, surveys
from geo.settings import Settings
from geo.workcal import today
from layers.catalogue import vocabulary
from maps import web, web_survey

router = APIRouter(tags=["workbench 工作台"])
FormText = Annotated[str | None, Form(max_length=200)]
FormNote = Annotated[str | None, Form(max_length=2000)]
FormLang = Annotated[str | None, Form(max_length=5)]
KINDS = tuple(surveys.SERVICE_KINDS)  # the six service kinds, each scored 1–5


def _survey_page(request: Request, name: str, *, user: Principal, lang: str, **context: Any) -> HTMLResponse:
    """A survey page: the workbench's frame, the survey texts as ``s`` and the sections' tabs."""
    return page(
        request,
        name,
        principal=user,
        lang=lang,
        current="surveys",
        s=web_survey.TEXTS[lang],
        kinds=vocabulary("service_kinds").labels(lang),
        round_kinds=vocabulary("round_kinds").labels(lang),
        is_admin=user.role in ADMINS.roles,
        **context,
    )


def _back(path: str, lang: str, **params: str) -> RedirectResponse:
    query = urlencode({**params, **({"lang": "en"} if lang == "en" else {})})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def _message(error: WuyeError, lang: str) -> str:
    """What the page says of a refusal: geo/'s Chinese reason, else its English one said in Chinese."""
    if isinstance(error, InvalidInput) and error.field and not error.reason_zh:
        return web_survey.problem_zh(error.field, error.message, lang)
    return reason_zh(error)


# -- the entry form -----------------------------------------------------------------------------------------
def _entry(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    zones = surveys.survey_zones(conn, user, district_code=settings.district.district_code)
    return _survey_page(
        request,
        "survey_entry.html",
        user=user,
        lang=lang,
        form=form,
        tab="entry",
        zones=zones,
        kept={"answered_on": today().isoformat(), **form.kept},  # the day's date unless another was typed
        today=today().isoformat(),
    )


@router.get(
    "/workbench/surveys", summary="入户调查：录入答卷", dependencies=[Depends(SURVEYORS)], response_class=HTMLResponse
)
def entry_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    lang: Lang = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    building: Annotated[str | None, Query(max_length=80)] = None,
    answered_on: Annotated[str | None, Query(max_length=10)] = None,
    round: Annotated[str | None, Query(max_length=40)] = None,
    saved: Annotated[int | None, Query()] = None,
    household: Annotated[str | None, Query(max_length=80)] = None,
    in_round: Annotated[str | None, Query(max_length=40)] = None,
    replaced: bool = False,
) -> HTMLResponse:
    """The phone form: zone (of the caller's scope), building, household, satisfied, the six scores and a
    remark; after a save the zone, building, date and round stay for the next door."""
    language = web.lang_of(lang)
    s = web_survey.TEXTS[language]
    kept = {k: v for k, v in {"zone": zone, "building": building, "round": round}.items() if v}
    if answered_on:
        kept["answered_on"] = answered_on
    message = ""
    if saved is not None:
        said = s["replaced" if replaced else "saved"]
        message = said.format(id=saved, zone=zone or "", household=household or "", round=in_round or "")
    return _entry(request, conn, settings, user, language, form=FormState(message=message, kept=kept))


@router.post("/workbench/surveys", summary="录入答卷（页面表单）", dependencies=[Depends(SURVEYORS)])
def entry_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    zone: Annotated[str, Form(max_length=80)],
    household: Annotated[str, Form(max_length=80)] = "",
    building: FormText = None,
    answered_on: Annotated[str | None, Form(max_length=40)] = None,
    satisfied: Annotated[str | None, Form(max_length=10)] = None,
    score_public_order: Annotated[str | None, Form(max_length=2)] = None,
    score_sanitation: Annotated[str | None, Form(max_length=2)] = None,
    score_public_safety: Annotated[str | None, Form(max_length=2)] = None,
    score_public_facilities: Annotated[str | None, Form(max_length=2)] = None,
    score_greening: Annotated[str | None, Form(max_length=2)] = None,
    score_other: Annotated[str | None, Form(max_length=2)] = None,
    remark: FormNote = None,
    round: Annotated[str | None, Form(max_length=40)] = None,
    round_kind: Annotated[str | None, Form(max_length=10)] = None,
    replace: Annotated[str | None, Form(max_length=5)] = None,
    lang: FormLang = None,
) -> Response:
    """One household's answer (as ``POST /zones/{code}/survey``, surveyor: the caller); a second for the
    household in the round is 409, said in Chinese with everything typed kept, unless replace is ticked."""
    language = web.lang_of(lang)
    scores = {
        "score_public_order": score_public_order,
        "score_sanitation": score_sanitation,
        "score_public_safety": score_public_safety,
        "score_public_facilities": score_public_facilities,
        "score_greening": score_greening,
        "score_other": score_other,
    }
    kept = {
        "zone": zone,
        "household": household,
        "building": building,
        "answered_on": answered_on,
        "satisfied": satisfied,
        "remark": remark,
        "round": round,
        "round_kind": round_kind,
        "replace": bool(replace),
        **scores,
    }
    try:
        answer = _answer(user, zone, household, building, answered_on, satisfied, scores, remark, round, round_kind)
        saved = surveys.add(conn, user, answer, district_code=settings.district.district_code, replace=bool(replace))
    except WuyeError as error:
        message = _message(error, language)
        if isinstance(error, Conflict) and error.field == "household" and "existing_id" in error.details:
            message = web_survey.TEXTS[language]["duplicate"].format(id=error.details["existing_id"])
        elif isinstance(error, NotFound) and error.field == "code":
            message = web_survey.problem_zh("zone", f"zone '{zone}' is not in your survey scope", language)
        return refused(error, partial(_entry, request, conn, settings, user, language), kept, message=message)
    after = {
        "zone": saved["zone_code"],
        "building": building or "",
        "answered_on": answer.answered_on.isoformat(),
        "round": saved["round"] if round else "",
        "saved": str(saved["id"]),
        "household": saved["household"],
        "in_round": saved["round"],
    }
    if saved["replaced"]:
        after["replaced"] = "true"
    return _back("/workbench/surveys", language, **{k: v for k, v in after.items() if v})


def _answer(
    user: Principal,
    zone: str,
    household: str,
    building: str | None,
    answered_on: str | None,
    satisfied: str | None,
    scores: dict[str, str | None],
    remark: str | None,
    round_: str | None,
    round_kind: str | None,
) -> surveys.Answer:
    """The form's answer, typed; geo/programme/surveys.py checks the rest (scope, household, date, round)."""
    on = form_day(answered_on, "answered_on")
    if on is None:
        raise InvalidInput("answered_on is required", field="answered_on")
    yes = surveys.parse_satisfied(satisfied)
    if yes is None:
        raise InvalidInput(
            "satisfied is required", field="satisfied", reason_zh=web_survey.TEXTS["zh"]["satisfied_missing"]
        )
    return surveys.Answer(
        zone,
        household.strip(),
        on,
        user.username,
        yes,
        round=(round_ or "").strip() or None,
        building=(building or "").strip() or None,
        scores={k: _score(k, v) for k, v in scores.items()},
        remark=(remark or "").strip() or None,
        round_kind=round_kind or None,
    )


def _score(name: str, value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 5:
        raise InvalidInput(f"'{value}' is not a score from 1 to 5", field=name)
    return int(value)


# -- the import page ------------------------------------------------------------------------------------------
def _import_page(
    request: Request, user: Principal, lang: str, *, form: FormState = BLANK, **context: Any
) -> HTMLResponse:
    return _survey_page(
        request,
        "survey_import.html",
        user=user,
        lang=lang,
        form=form,
        tab="import",
        columns=web_survey.columns(lang),
        **context,
    )


@router.get(
    "/workbench/surveys/import",
    summary="入户调查：导入答卷",
    dependencies=[Depends(SURVEYORS)],
    response_class=HTMLResponse,
)
def import_page(request: Request, user: CurrentUser, lang: Lang = None) -> HTMLResponse:
    """Upload a team's CSV/XLSX; the page names every column it understands, Chinese headers included."""
    return _import_page(request, user, web.lang_of(lang))


@router.get(
    "/workbench/surveys/import/template.csv", summary="调查答卷导入模板 (CSV)", dependencies=[Depends(SURVEYORS)]
)
def import_template(lang: Lang = None) -> Response:
    """An empty file with the import's headers (Chinese ones; English with ``lang=en``), UTF-8 with BOM."""
    return Response(
        web_survey.template_csv(web.lang_of(lang)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="survey-template.csv"', "Cache-Control": "no-store"},
    )


@router.post("/workbench/surveys/import", summary="导入调查答卷（页面表单）", dependencies=[Depends(SURVEYORS)])
def import_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    round: Annotated[str | None, Form(max_length=40)] = None,
    round_kind: Annotated[str | None, Form(max_length=10)] = None,
    replace: Annotated[str | None, Form(max_length=5)] = None,
    lang: FormLang = None,
) -> HTMLResponse:
    """All rows or none (as ``POST /surveys/import``): refused, every row's problem in a table, in Chinese."""
    language = web.lang_of(lang)
    s = web_survey.TEXTS[language]
    kept = {"round": round, "round_kind": round_kind, "replace": bool(replace)}
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = saved_upload(file, file.file.read(), folder)
            done = surveys.import_file(
                conn,
                user,
                path,
                district_code=settings.district.district_code,
                replace=bool(replace),
                round_=(round or "").strip() or None,
                round_kind=round_kind or None,
            )
    except ImportRejected as error:
        problems = error.details.get("problems", [])
        rows = [
            {
                "row": p["row"],
                "column": web_survey.column_label(p["field"], language),
                "field": p["field"],
                "problem": web_survey.problem_zh(p["field"], p["reason"], language),
                "original": p["reason"],
            }
            for p in problems
        ]
        bad = len({p["row"] for p in problems})
        total = _rows_in(error.message)
        message = s["rejected"].format(bad=bad, rows=total if total is not None else "?")
        refusal = FormState(message=message, ok=False, status=400, kept=kept)
        return _import_page(request, user, language, form=refusal, problems=rows)
    except WuyeError as error:
        return refused(error, partial(_import_page, request, user, language), kept, message=_message(error, language))
    message = s["imported"].format(**{**done, "rounds": "、".join(done["rounds"])})
    return _import_page(request, user, language, form=FormState(message=message), batch=done["batch"])


def _rows_in(message: str) -> int | None:
    """The file's row count from the rejection's message ("N of M rows of …", geo/io/tabular.py)."""
    found = re.match(r"\d+ of (\d+) rows", message)
    return int(found.group(1)) if found else None


# -- a zone's answers ---------------------------------------------------------------------------------------
@router.get(
    "/workbench/surveys/answers",
    summary="入户调查：小区答卷",
    dependencies=[Depends(SURVEYORS)],
    response_class=HTMLResponse,
)
def answers_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    lang: Lang = None,
    zone: Annotated[str | None, Query(max_length=80)] = None,
    round: Annotated[str | None, Query(max_length=40)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
    id: Annotated[int | None, Query()] = None,
    n: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    """A zone's figures (rate rounded down, its 95% interval) and answers of a round (default: the round it
    is judged on), as ``GET /zones/{code}/survey``; administrators open each to correct or withdraw it."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    zones = surveys.survey_zones(conn, user, district_code=district)
    code = zone or (zones[0]["code"] if zones else None)
    figures, answers = None, []
    if code is not None:
        found = surveys.zone_figures(
            conn, district_code=district, round_=round or None, zone_code=code, setting=settings.acceptance.survey_round
        )
        answers = surveys.zone_answers(
            conn, user, code, district_code=district, round_=(found.get(code) or {}).get("round") or round
        )
        figures = found.get(code)
    message = ""
    if done in ("corrected", "withdrawn", "batch_withdrawn") and id is not None:
        message = web_survey.TEXTS[language][done].format(id=id, n=n or 0)
    return _survey_page(
        request,
        "survey_answers.html",
        user=user,
        lang=language,
        tab="answers",
        zones=zones,
        zone=code,
        zone_name=next((z["name"] for z in zones if z["code"] == code), code),
        round=round or "",
        figures=figures,
        answers=answers,
        form=FormState(message=message),
    )


def _answer_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    answer_id: int,
    lang: str,
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    found = corrections.history(conn, user, answer_id, district_code=settings.district.district_code)
    actions = vocabulary("survey_corrections").labels(lang)
    return _survey_page(
        request,
        "survey_answer.html",
        user=user,
        lang=lang,
        form=form,
        tab="answers",
        a=found["answer"],
        counting=found["counting"],
        events=[
            {**e, "at": web.local_time(e["at"]), "label": actions.get(e["action"], e["action"])}
            for e in found["events"]
        ],
        need_version=form.field == "new_version",  # refused for want of "a new version": the box to tick
    )


@router.get(
    "/workbench/surveys/answers/{answer_id}",
    summary="调查答卷：更正或撤回（管理员）",
    dependencies=[Depends(ADMINS)],
    response_class=HTMLResponse,
)
def answer_page(
    answer_id: int, request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """One answer as it is now, its corrections and withdrawal, and the forms to correct or withdraw it."""
    return _answer_page(request, conn, settings, user, answer_id, web.lang_of(lang))


def _refused(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    answer_id: int,
    lang: str,
    error: WuyeError,
    kept: dict[str, Any],
) -> HTMLResponse:
    """An answer's form refused: its page again (api/forms.py ``refused``); an unknown answer is its 404."""
    again = partial(_answer_page, request, conn, settings, user, answer_id, lang)
    return refused(error, again, kept, not_found=("id",), message=_message(error, lang))


@router.post(
    "/workbench/surveys/answers/{answer_id}/correct", summary="更正调查答卷（页面表单）", dependencies=[Depends(ADMINS)]
)
def correct_form(
    answer_id: int,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    reason: FormNote = None,
    satisfied: Annotated[str | None, Form(max_length=10)] = None,
    building: FormText = None,
    remark: FormNote = None,
    score_public_order: Annotated[str | None, Form(max_length=2)] = None,
    score_sanitation: Annotated[str | None, Form(max_length=2)] = None,
    score_public_safety: Annotated[str | None, Form(max_length=2)] = None,
    score_public_facilities: Annotated[str | None, Form(max_length=2)] = None,
    score_greening: Annotated[str | None, Form(max_length=2)] = None,
    score_other: Annotated[str | None, Form(max_length=2)] = None,
    new_version: Annotated[str | None, Form(max_length=5)] = None,
    lang: FormLang = None,
) -> Response:
    """Correct what differs from the answer as it is (as ``PATCH /survey/answers/{id}``), with a reason."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    sent = {
        "satisfied": satisfied,
        "building": building,
        "remark": remark,
        "score_public_order": score_public_order,
        "score_sanitation": score_sanitation,
        "score_public_safety": score_public_safety,
        "score_public_facilities": score_public_facilities,
        "score_greening": score_greening,
        "score_other": score_other,
    }
    kept = {**sent, "reason": reason, "new_version": bool(new_version)}
    try:
        current = corrections.history(conn, user, answer_id, district_code=district)["answer"]
        changes = _changes(current, sent)
        corrections.correct_answer(
            conn, user, answer_id, changes, reason=reason or "", district_code=district, new_version=bool(new_version)
        )
    except WuyeError as error:
        return _refused(request, conn, settings, user, answer_id, language, error, kept)
    return _back(
        "/workbench/surveys/answers",
        language,
        zone=current["zone_code"],
        round=current["round"],
        done="corrected",
        id=str(answer_id),
    )


def _changes(current: dict[str, Any], sent: dict[str, str | None]) -> dict[str, Any]:
    """The fields whose value the form changes (typed as geo/ takes them)."""
    typed: dict[str, Any] = {
        "satisfied": surveys.parse_satisfied(sent["satisfied"]),
        "building": (sent["building"] or "").strip() or None,
        "remark": (sent["remark"] or "").strip() or None,
    }
    if typed["satisfied"] is None:
        typed.pop("satisfied")
    typed |= {k: _score(k, sent[k]) for k in surveys.SCORES}
    return {k: v for k, v in typed.items() if v != current.get(k)}


@router.post(
    "/workbench/surveys/answers/{answer_id}/withdraw",
    summary="撤回调查答卷（页面表单）",
    dependencies=[Depends(ADMINS)],
)
def withdraw_form(
    answer_id: int,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    reason: FormNote = None,
    new_version: Annotated[str | None, Form(max_length=5)] = None,
    lang: FormLang = None,
) -> Response:
    """Withdraw the answer with a reason (as ``POST /survey/answers/{id}/withdraw``): it stops counting."""
    language = web.lang_of(lang)
    kept = {"withdraw_reason": reason, "new_version": bool(new_version)}
    try:
        found = corrections.withdraw_answer(
            conn,
            user,
            answer_id,
            reason=reason or "",
            district_code=settings.district.district_code,
            new_version=bool(new_version),
        )
    except WuyeError as error:
        return _refused(request, conn, settings, user, answer_id, language, error, kept)
    return _back(
        "/workbench/surveys/answers",
        language,
        zone=found["zone_code"],
        round=found["round"],
        done="withdrawn",
        id=str(answer_id),
    )


@router.post(
    "/workbench/surveys/batches/{batch_id}/withdraw", summary="撤回导入批次（页面表单）", dependencies=[Depends(ADMINS)]
)
def withdraw_batch_form(
    batch_id: int,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    answer_id: Annotated[int, Form(description="the answer whose page the form is on")],
    reason: FormNote = None,
    new_version: Annotated[str | None, Form(max_length=5)] = None,
    lang: FormLang = None,
) -> Response:
    """Withdraw every answer of an imported batch with a reason (as ``POST /survey/batches/{id}/withdraw``);
    the file can then be imported again. Refused, the answer's page again with the reason in Chinese."""
    language = web.lang_of(lang)
    district = settings.district.district_code
    kept = {"batch_reason": reason, "new_version": bool(new_version)}
    try:
        answer = corrections.history(conn, user, answer_id, district_code=district)["answer"]
        done = corrections.withdraw_batch(
            conn, user, batch_id, reason=reason or "", district_code=district, new_version=bool(new_version)
        )
    except WuyeError as error:
        return _refused(request, conn, settings, user, answer_id, language, error, kept)
    return _back(
        "/workbench/surveys/answers",
        language,
        zone=answer["zone_code"],
        round=answer["round"],
        done="batch_withdrawn",
        id=str(batch_id),
        n=str(done["withdrawn"]),
    )
