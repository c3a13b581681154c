"""Response models: the JSON shapes clients rely on, as ``/api`` documents them.

Routes that build their answer in one SQL statement (the GeoJSON of cases and remediation tasks)
keep sending those bytes and name the model in ``responses=``; routes that return Python values
name it in ``response_model=``. Every model forbids members it does not declare, so the tests that
validate real answers against these models fail when the API and its documentation drift apart.
Timestamps and dates are ISO 8601 strings, as the database writes them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    """Base of the response models: undeclared members are an error."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ cases


class Point(Shape):
    """A GeoJSON Point (CGCS2000 lon/lat, CRS84 at map scale)."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)


class CaseEvent(Shape):
    """One move of a case (``case_events``)."""

    at: str = Field(description="ISO 8601 timestamp")
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None
    details: dict[str, Any] | None


class CaseProperties(Shape):
    """A case's properties. Members without a value are left out; the reporter, the description and the
    events only when the caller sees the case in full (``full``), else the position is rounded to 50 m."""

    code: str
    category: str
    category_zh: str
    state: str
    description: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    location_precision_m: int | None = Field(default=None, description="50 when the position is rounded")
    subdistrict_code: str | None = None
    community_code: str | None = None
    zone_code: str | None = None
    section_code: str | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    routing_rule: str | None = None
    assigned: bool
    facility_layer: str | None = None
    facility_code: str | None = None
    facility_distance_m: float | None = None
    reported_at: str
    due_at: str | None = None
    closed_at: str | None = None
    overdue: bool | None = None
    escalated_at: str | None = None
    version: int
    full: bool
    events: list[CaseEvent] | None = Field(default=None, description="in full only")


class CaseFeature(Shape):
    """A case as a GeoJSON Feature (``GET /cases/{code}``, the answer of a workflow move)."""

    type: Literal["Feature"]
    id: str
    geometry: Point
    properties: CaseProperties


class PossibleDuplicate(Shape):
    """An open case of the same category within 50 m and 7 days."""

    code: str
    state: str
    state_zh: str | None
    reported_at: str
    distance_m: float


class ReportedCase(CaseFeature):
    """The answer of ``POST /cases``: the new case with its assignment, and cases it may repeat."""

    possible_duplicates: list[PossibleDuplicate]


class CaseCollection(Shape):
    """A page of cases, newest first; ``next_after`` is the ``after`` of the next page."""

    type: Literal["FeatureCollection"]
    features: list[CaseFeature]
    numberReturned: int
    next_after: int | None


class Category(Shape):
    """A case category."""

    code: str
    name: str = Field(description="the Chinese label")
    name_en: str = Field(description="the English label")
    kind: str
    deadline: str = Field(description="working hours or days, e.g. '4h', '2d'")
    facility_layer: str | None


class CaseStats(Shape):
    """One row of ``GET /cases/stats``."""

    dimension: str = Field(description="subdistrict, zone, category or state")
    key: str | None
    cases: int
    open: int
    overdue: int
    closed: int
    closed_on_time: int
    on_time_rate: float | None
    median_hours_to_close: float | None


class CasePhoto(Shape):
    """A stored photo of a case."""

    id: int
    kind: str
    content_type: str
    bytes: int
    actor: str | None = None
    created_at: str | None = None


# ------------------------------------------------------------------ remediation


class TaskEvent(Shape):
    """One move of a remediation task."""

    at: str
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None


class TaskPhoto(Shape):
    """A before/after photo of a remediation task."""

    id: int
    stage: Literal["before", "after"]
    url: str
    content_type: str
    bytes: int
    actor: str | None = None
    at: str | None = None


class TaskProperties(Shape):
    """A remediation task's properties; ``events`` and ``photos`` in ``GET /remediation/{code}`` only."""

    code: str
    zone_code: str
    item: str
    item_zh: str
    title: str | None
    state: str
    state_zh: str
    planned_start: str | None
    planned_end: str | None
    actual_start: str | None
    actual_end: str | None
    verified_on: str | None
    overdue: bool | None
    before_photos: list[str]
    after_photos: list[str]
    note: str | None
    version: int
    events: list[TaskEvent] | None = None
    photos: list[TaskPhoto] | None = None


class TaskFeature(Shape):
    """A remediation task as a GeoJSON Feature (its geometry is optional)."""

    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any] | None = Field(description="GeoJSON geometry, CGCS2000 lon/lat")
    properties: TaskProperties


class TaskCollection(Shape):
    """Remediation tasks as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[TaskFeature]
    numberReturned: int


class Progress(Shape):
    """Task counts by state for a zone, a sub-district or the district."""

    level: Literal["zone", "subdistrict", "district"]
    subdistrict_code: str | None
    zone_code: str | None
    zone_name: str | None
    tasks: int
    planned: int
    in_progress: int
    done: int
    verified: int
    overdue: int
    verified_percent: int | None


class Phase(Shape):
    """A phase of a zone's calendar."""

    phase: str
    phase_zh: str
    due_on: str
    status: Literal["done", "current", "upcoming"]
    default_deadline: bool
    overdue: bool


class ZoneRemediation(TaskCollection):
    """A zone's tasks with its progress and phase calendar."""

    progress: Progress | None
    phases: list[Phase]


# ------------------------------------------------------------------ survey


class SurveyWarning(Shape):
    """A plain warning about a zone's figures."""

    code: str
    zh: str
    en: str


class SurveyFigures(Shape):
    """A zone's survey figures in a round: rates exact and as displayed (rounded down)."""

    round: str | None
    answers: int
    satisfied: int
    households: int | None
    rate_display: str | None
    rate: float | None
    reached_display: str | None
    reached: float | None
    answers_exceed_households: bool
    warnings: list[SurveyWarning]
    wilson_95: list[float] | None
    mean_scores: dict[str, float | None]
    round_kind: str | None = Field(default=None, description="first (首次验收) or redo (补课)")
    round_kind_zh: str | None = None
    round_chosen_by: str | None = Field(
        default=None, description="how the zone's round was chosen: fixed by an administrator, named, latest"
    )


class SurveyAnswer(Shape):
    """One household's answer."""

    id: int
    round: str
    building: str | None
    household: str
    answered_on: str
    surveyor: str | None
    satisfied: bool
    remark: str | None


class ZoneSurvey(SurveyFigures):
    """``GET /zones/{code}/survey``: the zone's figures and its answers."""

    zone_code: str
    items: list[SurveyAnswer]


class SavedAnswer(Shape):
    """The answer of ``POST /zones/{code}/survey``."""

    id: int
    round: str
    zone_code: str
    household: str
    replaced: bool


class SurveyImport(Shape):
    """The answer of ``POST /surveys/import``."""

    rows: int
    inserted: int
    replaced: int
    batch: int | None = Field(default=None, description="the import batch (withdrawable as a whole)")
    rounds: list[str] = Field(default_factory=list, description="the rounds the rows belong to")


# ------------------------------------------------------------------ acceptance


class AcceptanceZone(Shape):
    """The zone an acceptance review is about."""

    code: str
    name: str
    kind: str | None
    households: int | None
    phase: str | None
    programme_year: int | None
    subdistrict: str | None
    community: str | None
    property_unit: str | None


class RemediationItem(Shape):
    """A remediation task as the review lists it."""

    item: str
    title: str | None
    state: str
    planned_end: str | None
    actual_end: str | None
    verified_on: str | None


class RemediationFigures(Shape):
    """Tasks and verified tasks of the zone."""

    tasks: int
    verified: int
    items: list[RemediationItem]


class CaseFigures(Shape):
    """The zone's cases by outcome."""

    cases: int
    open: int
    closed: int
    closed_on_time: int
    overdue: int
    overdue_beyond_grace: int


class Criterion(Shape):
    """One criterion of the verdict."""

    criterion: Literal["satisfaction", "remediation", "cases"]
    title_zh: str
    met: bool
    detail_zh: str


class IssueState(Shape):
    """Whether a zone's verdict for a round is issued (签发) as a frozen document, and which."""

    state: Literal["unissued", "issued"]
    state_zh: str | None = None
    id: int | None = None
    number: str | None = Field(default=None, description="the document number, e.g. 岳麓城管验〔2026〕12号")
    round: str | None = None
    round_kind: str | None = None
    round_kind_zh: str | None = None
    version: int | None = None
    replaces: int | str | None = Field(default=None, description="the document this version replaces")
    reason: str | None = None
    verdict: str | None = None
    verdict_zh: str | None = None
    sha256: str | None = None
    issued_by: str | None = None
    issued_at: str | None = None
    issued_on: str | None = None


class Acceptance(Shape):
    """A zone's acceptance figures and verdict (通过 pass, 补课 redo, or none without answers)."""

    zone: AcceptanceZone
    survey: SurveyFigures
    remediation: RemediationFigures
    cases: CaseFigures
    facilities: dict[str, dict[str, int]] = Field(description="layer → condition → count")
    rules: dict[str, Any] = Field(description="the acceptance rules applied (WUYE_ACCEPTANCE_*)")
    generated_at: str
    verdict: Literal["pass", "redo"] | None
    verdict_zh: str
    criteria: list[Criterion]
    failed: list[str]
    verdict_note: str | None
    issue: IssueState | None = Field(default=None, description="「未签发」 (a draft) until issued")
    verdict_history: list[IssueState] = Field(default_factory=list, description="issued verdicts, oldest first")


# ------------------------------------------------------------------ users


class Me(Shape):
    """Who the caller is and what scope they act in (``GET /auth/me``)."""

    username: str
    role: str
    role_zh: str
    subdistrict_code: str | None
    zone_codes: list[str]
    unit_code: str | None


class User(Me):
    """A user as administrators see it."""

    display_name: str | None
    disabled: bool


class GeoJSONResponse(JSONResponse):
    """JSON sent as ``application/geo+json``; as a route's ``response_class`` it files the route's
    schema under that media type in ``/api`` (routes that build their bytes in SQL return them as is)."""

    media_type = "application/geo+json"
