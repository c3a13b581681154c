-- phase: post
-- Remediation (整治), maintenance records (巡查/维护), the door-to-door
-- satisfaction survey (满意度调查) and zone phase deadlines (issue 6).
-- Runs after the layer tables: rows point at zones and facilities by code.

-- One remediation item of a zone; its state moves only through the
-- workflow in geo/remediation.py (planned → in_progress → done → verified).
CREATE TABLE remediation_tasks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    district_code text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    zone_code text NOT NULL,
    item text NOT NULL,
    title text,
    state text NOT NULL DEFAULT 'planned'
        CHECK (state IN ('planned', 'in_progress', 'done', 'verified')),
    planned_start date,
    planned_end date,
    actual_start date,
    actual_end date,
    verified_on date,
    before_photo text,
    after_photo text,
    note text,
    geom geometry(Geometry, 4490),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX remediation_tasks_zone_idx ON remediation_tasks (zone_code, state);
CREATE INDEX remediation_tasks_geom_gist ON remediation_tasks USING gist (geom);

CREATE TABLE remediation_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES remediation_tasks (id),
    district_code text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    from_state text,
    to_state text,
    note text
);
CREATE INDEX remediation_events_task_idx ON remediation_events (task_id, at);

-- A zone's own deadline for a phase, overriding the plan's month.
CREATE TABLE zone_phase_deadlines (
    zone_code text NOT NULL,
    phase text NOT NULL,
    due_on date NOT NULL,
    set_by text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (zone_code, phase)
);

-- Maintenance records. The facility's condition column is kept equal to its
-- latest inspection's (geo/inspections.py), in the inspection's transaction.
CREATE TABLE inspections (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    facility_layer text NOT NULL,
    facility_code text NOT NULL,
    inspected_on date NOT NULL,
    inspector text NOT NULL,
    condition text NOT NULL CHECK (condition IN ('normal', 'faulty', 'repairing', 'removed')),
    note text,
    photo text,
    case_id bigint REFERENCES cases (id),
    source text NOT NULL DEFAULT 'api',          -- api | cli | import | case
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspections_facility_idx ON inspections (facility_layer, facility_code, inspected_on DESC, id DESC);

-- Door-to-door answers: one per household per round (the household id is
-- unique within its zone, e.g. "5-2-301"). A second answer is refused
-- naming the first, unless the caller asks to replace it.
CREATE TABLE survey_answers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    round text NOT NULL,
    zone_code text NOT NULL,
    building text,
    household text NOT NULL,
    answered_on date NOT NULL,
    surveyor text NOT NULL,
    satisfied boolean NOT NULL,
    score_public_order smallint CHECK (score_public_order BETWEEN 1 AND 5),
    score_sanitation smallint CHECK (score_sanitation BETWEEN 1 AND 5),
    score_public_safety smallint CHECK (score_public_safety BETWEEN 1 AND 5),
    score_public_facilities smallint CHECK (score_public_facilities BETWEEN 1 AND 5),
    score_greening smallint CHECK (score_greening BETWEEN 1 AND 5),
    score_other smallint CHECK (score_other BETWEEN 1 AND 5),
    remark text,
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (district_code, round, zone_code, household)
);
CREATE INDEX survey_answers_zone_idx ON survey_answers (zone_code, round);
