"""The fees pages (issue 21 point 6): per zone and building the fee standard, the first chargeable month
and the collection rate (households and amount) with a choropleth map; payment entry and import for
the property team; each zone's arrears with phone numbers masked. Thin routes on the workbench's pages
(api/workbench.py): the figures, scopes and refusals are geo/programme/fees.py's (the same functions
as ``/payments``, ``/payments/import`` and ``/fees/collection``).
"""

from __future__ import annotations

import tempfile
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import CurrentUser, Guard
from api.deps import AppSettings, Connection
from api.forms import BLANK, FormState, form_day, refused
from api.inputs import saved_upload
from api.programme import _months
from api.workbench import Lang, page
from geo.access.scope import Principal
from geo.cases.workflow import PII_ROLES
from geo.errors import ImportRejected, InvalidInput, WuyeError
from geo.programme import fees
from geo.programme.remediation import WORKERS
from geo.settings import Settings
from layers.catalogue import vocabulary
from maps import fees_web, web

router = APIRouter(tags=["workbench 工作台"])
FEE_ROLES = WORKERS  # administrators, sub-district staff, property teams: in their zones
FEE_PAGES = Guard(*FEE_ROLES, description="fees pages: staff and property teams, their zones")
# a zone's page: 404 for a zone outside the caller's zones (fees.zone_buildings), as the access matrix checks
FEE_ZONE_PAGE = Guard(*FEE_ROLES, description="fees pages: staff and property teams, the zone in scope", scoped="code")
Month = Annotated[str | None, Query(max_length=10, description="YYYY-MM")]
FormText = Annotated[str | None, Form(max_length=80)]


def _texts(lang: str) -> dict[str, str]:
    return fees_web.TEXTS[lang]


def _period(start: str | None, end: str | None) -> tuple[date, date]:
    return _months(start or None, end or None)


def _page(request: Request, name: str, user: Principal, lang: str, **context: Any) -> HTMLResponse:
    return page(request, name, principal=user, lang=lang, current="fees", ft=_texts(lang), **context)


@router.get("/workbench/fees", summary="收费管理（收费率与地图）", dependencies=[Depends(FEE_PAGES)])
def fees_page(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    start: Month = None,
    end: Month = None,
    lang: Lang = None,
) -> HTMLResponse:
    """Every zone of the caller's scope: fee standard, first chargeable month, collection rates; a map."""
    language = web.lang_of(lang)
    first, last = _period(start, end)
    zones = fees.zone_overview(
        conn,
        user,
        district_code=settings.district.district_code,
        start=first,
        end=last,
        grace_months=settings.programme.fee_grace_months,
    )
    query = {"start": f"{first:%Y-%m}", "end": f"{last:%Y-%m}", **({"lang": "en"} if language == "en" else {})}
    return _page(
        request,
        "fees.html",
        user,
        language,
        zones=zones,
        start=f"{first:%Y-%m}",
        end=f"{last:%Y-%m}",
        query=urlencode(query),
        bases=vocabulary("fee_bases").labels(language),
        rate_class=fees_web.rate_class,
    )


@router.get("/workbench/fees/map.json", summary="收费率地图数据", dependencies=[Depends(FEE_PAGES)])
def fees_map(
    conn: Connection, settings: AppSettings, user: CurrentUser, start: Month = None, end: Month = None
) -> JSONResponse:
    """The caller's zones (GeoJSON, CRS84) with their collection rates: the page's choropleth."""
    first, last = _period(start, end)
    body = fees.zone_map(
        conn,
        user,
        district_code=settings.district.district_code,
        start=first,
        end=last,
        grace_months=settings.programme.fee_grace_months,
    )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/workbench/fees/zones/{code}", summary="小区收费（楼栋与欠费）", dependencies=[Depends(FEE_ZONE_PAGE)])
def fees_zone_page(
    code: str,
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    start: Month = None,
    end: Month = None,
    lang: Lang = None,
) -> HTMLResponse:
    """One zone: its buildings' collection rates, its fee standards and its households in arrears."""
    language = web.lang_of(lang)
    first, last = _period(start, end)
    district = settings.district.district_code
    buildings = fees.zone_buildings(conn, user, code, district_code=district, start=first, end=last)
    zone = next(
        z
        for z in fees.zone_overview(
            conn, user, district_code=district, start=first, end=last, grace_months=settings.programme.fee_grace_months
        )
        if z["zone_code"] == code
    )
    return _page(
        request,
        "fees_zone.html",
        user,
        language,
        zone=zone,
        buildings=buildings,
        arrears=fees.arrears_list(conn, user, code, district_code=district),
        masked=user.role not in PII_ROLES,
        start=f"{first:%Y-%m}",
        end=f"{last:%Y-%m}",
        bases=vocabulary("fee_bases").labels(language),
        rate_class=fees_web.rate_class,
    )


def _buildings(conn: psycopg.Connection, settings: Settings, user: Principal) -> list[dict[str, Any]]:
    """The buildings of the caller's zones, for the payment form's list."""
    out: list[dict[str, Any]] = []
    for zone in fees.zone_overview(
        conn,
        user,
        district_code=settings.district.district_code,
        start=date(2000, 1, 1),
        end=date(2000, 1, 1),
        grace_months=settings.programme.fee_grace_months,
    ):
        for b in fees.zone_buildings(
            conn,
            user,
            zone["zone_code"],
            district_code=settings.district.district_code,
            start=date(2000, 1, 1),
            end=date(2000, 1, 1),
        ):
            out.append({"code": b["code"], "label": f"{zone['zone_name']} {b['name']}", "zone": zone["zone_code"]})
    return out


def _payments_page(
    request: Request,
    conn: psycopg.Connection,
    settings: Settings,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
) -> HTMLResponse:
    return _page(request, "fees_payments.html", user, lang, form=form, buildings=_buildings(conn, settings, user))


@router.get("/workbench/fees/payments", summary="登记缴费（页面）", dependencies=[Depends(FEE_PAGES)])
def payments_page(
    request: Request, conn: Connection, settings: AppSettings, user: CurrentUser, lang: Lang = None
) -> HTMLResponse:
    """The payment form: a household's month, or a building's monthly total."""
    language = web.lang_of(lang)
    done = request.query_params.get("done")
    message = f"{_texts(language)['recorded']}：{done}" if done else ""
    return _payments_page(request, conn, settings, user, language, form=FormState(message=message))


def _amount(value: str | None) -> Decimal:
    try:
        amount = Decimal((value or "").strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise InvalidInput(f"amount '{value}' is not a number", field="amount", reason_zh="缴费金额须为数字")
    return amount


def _count(value: str | None) -> int | None:
    if not value or not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput(
            f"households_paid '{value}' is not a count", field="households_paid", reason_zh="缴费户数须为非负整数"
        )
    return int(value.strip())


@router.post("/workbench/fees/payments", summary="登记缴费（页面表单）", dependencies=[Depends(FEE_PAGES)])
def payments_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    building: FormText = None,
    unit: FormText = None,
    room: FormText = None,
    period: FormText = None,
    amount: FormText = None,
    paid_on: FormText = None,
    households_paid: FormText = None,
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """Record a payment (as ``POST /payments``); refused, the form again with the reason in Chinese and
    what was typed kept."""
    language = web.lang_of(lang)
    kept = {
        "building": building,
        "unit": unit,
        "room": room,
        "period": period,
        "amount": amount,
        "paid_on": paid_on,
        "households_paid": households_paid,
    }
    district = settings.district.district_code
    try:
        month = fees.period_of(period or "")
        value = _amount(amount)
        day = form_day(paid_on, "paid_on", required=True, reason_zh="缴费日期须为日期（年-月-日）")
        if not building:
            raise InvalidInput("building is required", field="building", reason_zh="请选择楼栋")
        target: dict[str, Any]
        if room and room.strip():
            household = fees.household_of(
                conn, user, building, (unit or "").strip(), room.strip(), district_code=district
            )
            target = {"household_id": household}
        else:
            target = {"building_code": building, "households_paid": _count(households_paid)}
        fees.record_payment(
            conn,
            user,
            district_code=district,
            grace_months=settings.programme.fee_grace_months,
            period=month,
            amount=value,
            paid_on=day,
            **target,
        )
    except WuyeError as error:
        return refused(error, partial(_payments_page, request, conn, settings, user, language), kept)
    done = f"{building} {unit or ''} {room or ''} {month:%Y-%m} {value}".replace("  ", " ")
    query = urlencode({"done": done, **({"lang": "en"} if language == "en" else {})})
    return RedirectResponse(f"/workbench/fees/payments?{query}", status_code=303)


def _columns() -> list[dict[str, Any]]:
    """The payments file's columns and the names each is understood by (Chinese headers included)."""
    return [
        {"key": key, "label": next((n for n in names if not n.isascii()), key), "names": names}
        for key, names in fees.PAYMENT_COLUMNS.items()
    ]


def _import_page(
    request: Request,
    user: Principal,
    lang: str,
    *,
    form: FormState = BLANK,
    problems: list[dict[str, Any]] | None = None,
) -> HTMLResponse:
    return _page(request, "fees_import.html", user, lang, form=form, columns=_columns(), problems=problems or [])


@router.get("/workbench/fees/import", summary="导入缴费记录（页面）", dependencies=[Depends(FEE_PAGES)])
def import_page(request: Request, user: CurrentUser, lang: Lang = None) -> HTMLResponse:
    """The payments import form, naming the columns it understands."""
    return _import_page(request, user, web.lang_of(lang))


@router.post("/workbench/fees/import", summary="导入缴费记录（页面表单）", dependencies=[Depends(FEE_PAGES)])
def import_form(
    request: Request,
    conn: Connection,
    settings: AppSettings,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
    lang: Annotated[str | None, Form(max_length=5)] = None,
) -> HTMLResponse:
    """Import a payments file (as ``POST /payments/import``): all rows or none; refused, each row's
    problems in a table, in Chinese."""
    language = web.lang_of(lang)
    t = _texts(language)
    # each column by its first Chinese name (the header the property company's files use)
    names = {key: next((n for n in names if not n.isascii()), key) for key, names in fees.PAYMENT_COLUMNS.items()}
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = saved_upload(file, file.file.read(), folder)
            done = fees.import_payments(
                conn,
                user,
                path,
                district_code=settings.district.district_code,
                grace_months=settings.programme.fee_grace_months,
            )
        except ImportRejected as error:
            listed = [
                {
                    "row": p["row"],
                    "field": p["field"],
                    "column": names.get(p["field"], p["field"]),
                    "reason_zh": fees_web.problem_zh(p["reason"]),
                    "reason": p["reason"],
                }
                for p in error.details.get("problems", [])
            ]
            message = t["rejected"].format(n=len(listed))
            refusal = FormState(message=message, ok=False, status=400)
            return _import_page(request, user, language, form=refusal, problems=listed)
        except WuyeError as error:
            return refused(error, partial(_import_page, request, user, language))
    return _import_page(request, user, language, form=FormState(message=t["imported"].format(n=done["recorded"])))
