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


class CaseStep(Shape):
    """One step of a case's public history: the state it entered, and when."""

    at: str = Field(description="ISO 8601 timestamp")
    state: str


class CaseProperties(Shape):
    """A case's properties. Members without a value are left out; the reporter, the description and the
    events only when the caller sees the case in full (``full``), else the position is rounded to 50 m."""

    code: str
    category: str
    category_zh: str
    state: str
    description: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = Field(
        default=None,
        description="whole for the reporter, sub-district staff and administrators in scope; "
        "masked (138****0000) for the units working the case, who reveal it with POST /cases/{code}/call",
    )
    reporter_phone_masked: bool | None = Field(default=None, description="true when reporter_phone is masked")
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
    supervised: bool | None = Field(default=None, description="督办: the bureau supervises the case")
    supervised_at: str | None = Field(default=None, description="in full only")
    supervised_by: str | None = Field(default=None, description="who supervised it (in full only)")
    supervision_due: str | None = Field(default=None, description="the supervision's deadline day (in full only)")
    supervision_note: str | None = Field(default=None, description="what the bureau asks for (in full only)")
    supervision_escalated_at: str | None = Field(
        default=None, description="when the case, past its supervision deadline, went to the sub-district office"
    )
    version: int
    full: bool
    events: list[CaseEvent] | None = Field(default=None, description="in full only")
    history: list[CaseStep] | None = Field(
        default=None, description="the public history (state and time) when the case is not shown in full"
    )


class CaseFeature(Shape):
    """A case as a GeoJSON Feature (``GET /cases/{code}``, the answer of a workflow move)."""

    type: Literal["Feature"]
    id: str
    geometry: Point
    properties: CaseProperties


class PossibleDuplicate(Shape):
    """An open case of the same category nearby, reported within 7 days. Who sees that case in full
    (staff in its area, its reporter) gets its distance within 50 m; anyone else only whether its public
    50 m cell is the report's cell or one of the eight around it (the same answer anywhere in one cell)."""

    code: str
    state: str
    state_zh: str | None = None
    reported_at: str
    distance_m: float | None = Field(default=None, description="metres, for those who see the case in full")
    proximity: Literal["same_cell", "adjacent_cell"] | None = Field(
        default=None, description="the public answer: the same 50 m cell, or one of the eight around it"
    )
    proximity_zh: str | None = None


class ReporterPhone(Shape):
    """The answer of the audited "call" action: the reporter's whole phone number."""

    code: str
    reporter_phone: str


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
    facility_layer: str | None = Field(description="the first of facility_layers (older clients)")
    facility_layers: list[str] = Field(description="searched together for the nearest facility")
    facility_radius_m: float = Field(description="how far from the report the nearest facility may be")


class CaseStats(Shape):
    """One row of ``GET /cases/stats``."""

    dimension: str = Field(description="subdistrict, zone, category, state, unit (responsible unit) or total")
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
    """A phase of a zone's calendar, its status derived from the zone's records."""

    phase: str
    phase_zh: str
    due_on: str
    status: Literal["done", "in_progress", "overdue", "upcoming"]
    default_deadline: bool
    overdue: bool
    done_on: str | None = Field(description="when the record that completes it is dated")
    missing: list[str] = Field(description="what its records still lack (Chinese first)")


class Unit(Shape):
    """A unit of the plan's responsibility table (责任分工)."""

    code: str
    name: str
    kind: str
    kind_zh: str | None
    kind_label: str = Field(description="its kind in the page's language (?lang)")
    duty: str | None = Field(description="its duty as the plan states it")


class PublicityRecord(Shape):
    """A publicity activity of a zone (先宣传后实施)."""

    id: int
    zone_code: str
    kind: str
    kind_zh: str
    held_on: str
    lon: float
    lat: float
    unit_code: str
    unit_name: str
    attendance: int | None
    note: str | None
    recorded_by: str
    photos: list[str] = Field(description="photo URLs (signed-in staff)")


class PublicityPhoto(Shape):
    """A stored publicity photo."""

    id: int
    url: str
    content_type: str
    bytes: int


class ZonePhases(Shape):
    """One zone's row of the district phase table."""

    zone_code: str
    zone_name: str
    subdistrict_code: str | None
    programme_year: int
    current_phase: str | None
    current_phase_zh: str | None
    service_unit: str | None
    service_unit_name: str | None
    publicity: dict[str, int] = Field(description="publicity records by kind")
    phases: list[Phase]


class PhaseName(Shape):
    """A phase of the plan and the month of the programme year it is due by."""

    phase: str
    phase_zh: str
    month: int


class PublicityKind(Shape):
    """A kind of publicity record."""

    kind: str
    kind_zh: str


class PhaseCount(Shape):
    """How many zones have done a phase, and how many are overdue in it."""

    done: int
    overdue: int


class PhaseTable(Shape):
    """The district table: zones × phases (``GET /phases``)."""

    phases: list[PhaseName]
    publicity_kinds: list[PublicityKind]
    zones: list[ZonePhases]
    summary: dict[str, PhaseCount]


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


CriterionKey = Literal[
    "cases",
    "facilities",
    "remediation",
    "remediation_photos",
    "property_service",
    "fee_standard",
    "collection",
    "satisfaction",
]
StandardKey = Literal["clean", "appearance", "mechanism", "satisfaction"]


class Criterion(Shape):
    """One criterion of the verdict, with the standard of the plan it belongs to."""

    criterion: CriterionKey
    title_zh: str
    title_en: str | None = Field(None, description="the same in English (absent from verdicts issued before it)")
    met: bool
    detail_zh: str
    detail_en: str | None = Field(None, description="the same in English (absent from verdicts issued before it)")
    standard: StandardKey
    enabled: bool = Field(description="false: switched off for the zone's programme year (WUYE_CRITERIA_OFF)")


class Standard(Shape):
    """One of the plan's four acceptance standards: met when each of its criteria switched on is met."""

    standard: StandardKey
    title_zh: str
    enabled: bool
    met: bool | None = Field(description="none when every criterion of it is switched off")
    failed: list[CriterionKey]


class Reward(Shape):
    """A zone's reward (以奖代补), following its latest issued verdict."""

    basis: Literal["zone", "household"]
    amount: str = Field(description="yuan, two decimals")
    state: Literal["released", "withheld", "pending"]
    state_zh: str
    released: str = Field(description="yuan released: the amount when released, else 0.00")
    document_number: str | None = Field(description="the issued document the state follows")


class PointsPart(Shape):
    """One part of a sub-district's performance points: its count of its base, weight and points."""

    part: Literal["first_pass", "redo", "case_on_time", "remediation_on_schedule", "collection"]
    title_zh: str
    count: int | str
    base: int | str
    rate: float | None = Field(description="count / base (0-1); none without a base, and for redo")
    weight: float
    points: float


class SubdistrictPoints(Shape):
    """A sub-district's performance points for the year, with their parts and its zones' rewards."""

    subdistrict_code: str | None
    subdistrict: str | None
    zones: list[str]
    points: float
    parts: list[PointsPart]
    reward: dict[Literal["released", "withheld", "pending"], str]


class Points(Shape):
    """Performance points of every sub-district with zones in the programme year."""

    year: int
    weights: dict[str, float]
    subdistricts: list[SubdistrictPoints]


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


class RedoBrief(Shape):
    """A redo item as the acceptance figures carry it."""

    id: int | None = Field(default=None, description="none yet in the plan a document being issued opens")
    criterion: CriterionKey
    title_zh: str
    detail_zh: str | None = None
    unit_code: str | None = None
    unit_name: str | None
    due_on: str
    state: Literal["open", "in_progress", "done", "withdrawn"]
    state_zh: str
    done_on: str | None
    overdue: bool
    document_number: str | None = None


class RedoFigures(Shape):
    """The zone's redo plan (补课整改) in the figures: items, done, overdue."""

    total: int
    done: int
    overdue: int
    items: list[RedoBrief]


class PatrolCoverage(Shape):
    """A zone's security patrols (电子巡更) over a period: rounds, hours and checkpoint coverage."""

    zone_code: str
    zone_name: str
    from_: str = Field(alias="from", description="first day (local)")
    until: str = Field(description="last day (local)")
    days: int
    checkpoints: int = Field(description="the zone's patrol_points")
    checkpoint_days_covered: int = Field(description="checkpoint-days with at least min_scans scans")
    scans: int
    rounds: int
    hours: float
    coverage_pct: float | None = Field(description="covered ÷ (checkpoints × days), percent; none without checkpoints")
    min_scans: int = Field(description="WUYE_PATROL_MIN_SCANS")
    min_coverage_pct: float = Field(description="WUYE_MIN_PATROL_COVERAGE")
    flagged: bool = Field(description="below min_coverage_pct, or no checkpoints")
    flag_zh: str | None


class Acceptance(Shape):
    """A zone's acceptance figures and verdict (通过 pass, 补课 redo, or none without answers)."""

    zone: AcceptanceZone
    survey: SurveyFigures
    remediation: RemediationFigures
    cases: CaseFigures
    facilities: dict[str, dict[str, int]] = Field(description="layer → condition → count")
    patrol: PatrolCoverage | None = Field(
        default=None, description="security patrols of the last full week (Monday to Sunday), flagged when low"
    )
    rules: dict[str, Any] = Field(description="the acceptance rules applied (WUYE_ACCEPTANCE_*)")
    generated_at: str
    verdict: Literal["pass", "redo"] | None
    verdict_zh: str
    criteria: list[Criterion]
    standards: list[Standard] = Field(description="the plan's four standards")
    failed: list[str]
    failed_standards: list[StandardKey]
    verdict_note: str | None
    reward: Reward | None = Field(default=None, description="以奖代补: released on an issued 通过")
    programme: dict[str, Any] | None = Field(
        default=None,
        description="the zone's phases (as GET /zones/{code}/phases), publicity by kind and fees to date "
        "(service start, first chargeable month, fee standard, bills, billed, paid)",
    )
    issue: IssueState | None = Field(default=None, description="「未签发」 (a draft) until issued")
    verdict_history: list[IssueState] = Field(default_factory=list, description="issued verdicts, oldest first")
    redo: RedoFigures | None = Field(default=None, description="the redo plan of the zone's 补课 verdicts")


class RedoEvidence(Shape):
    """One piece of evidence of a redo item: a note, a photo, a linked remediation task or case."""

    id: int
    kind: Literal["note", "photo", "task", "case"]
    kind_zh: str
    note: str | None
    ref: str | None = Field(description="the task or case code of a link")
    url: str | None = Field(description="where the photo, task or case is served")
    content_type: str | None
    bytes: int | None
    actor: str
    at: str


class RedoItem(Shape):
    """One item of a zone's redo plan (补课整改事项): a failed criterion with its unit, deadline, state
    and evidence; ``overdue`` as a case's: the deadline passed before it was done (or before today)."""

    id: int
    zone_code: str
    zone_name: str
    document_id: int | None = Field(description="the issued 补课 document that opened it")
    document_number: str | None
    criterion: CriterionKey
    title_zh: str
    detail_zh: str | None
    unit_code: str | None = Field(description="responsible unit (default: the sub-district office)")
    unit_name: str | None
    due_on: str
    state: Literal["open", "in_progress", "done", "withdrawn"]
    state_zh: str
    done_on: str | None
    overdue: bool
    version: int
    created_by: str
    created_at: str
    updated_by: str | None
    updated_at: str
    evidence: list[RedoEvidence]
    added: int | None = Field(default=None, description="the evidence a photo upload added")


class RedoItems(Shape):
    """Redo items and their counts."""

    total: int
    done: int
    overdue: int
    items: list[RedoItem]


class RedoPlan(RedoItems):
    """One zone's redo plan."""

    zone_code: str


class IssuedDocument(Shape):
    """An issued acceptance document (签发), without its figures."""

    id: int
    number: str
    zone_code: str
    round: str
    version: int
    replaces: str | None
    reason: str | None
    verdict: Literal["pass", "redo"] | None
    sha256: str
    issued_by: str
    issued_at: str
    state: Literal["issued"]
    state_zh: str


class SkippedZone(Shape):
    """A zone whose verdict an 'issue all' left out, with the error a single issue would answer."""

    zone_code: str
    field: str | None
    reason: str
    reason_zh: str | None


class IssuedAll(Shape):
    """What an 'issue all' issued and left out."""

    issued: list[IssuedDocument]
    skipped: list[SkippedZone]


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
