-- phase: post
-- Problem reports (事件) and their history. Runs after the layer tables:
-- cases point at zones, sections and facilities by code (kept by the
-- spatial join, never typed in).

CREATE TABLE cases (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    district_code text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    category text NOT NULL,
    description text,
    geom geometry(Point, 4490) NOT NULL,
    coord_sys text NOT NULL DEFAULT 'cgcs2000',
    source text NOT NULL DEFAULT 'native',      -- native | open311 | staff
    client_name text,                            -- the Open311 application
    reporter_user text,                          -- the signed-in reporter
    reporter_name text,
    reporter_phone text,
    state text NOT NULL DEFAULT 'reported',
    -- assignment (spatial join, same transaction as the insert)
    subdistrict_code text,
    community_code text,
    zone_code text,
    section_code text,
    grid_code text,
    unit_code text,
    routing_rule text,
    facility_layer text,
    facility_code text,
    facility_distance_m double precision,
    due_at timestamptz,
    escalated_at timestamptz,
    duplicate_of bigint REFERENCES cases (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz
);
CREATE INDEX cases_geom_gist ON cases USING gist (geom);
CREATE INDEX cases_zone_idx ON cases (zone_code, state);
CREATE INDEX cases_unit_idx ON cases (unit_code, state);
CREATE INDEX cases_created_idx ON cases (created_at);

CREATE TABLE case_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases (id),
    district_code text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    from_state text,
    to_state text,
    note text,
    details jsonb
);
CREATE INDEX case_events_case_idx ON case_events (case_id, at);

CREATE TABLE case_photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases (id),
    kind text NOT NULL DEFAULT 'report',         -- report | handled
    path text NOT NULL,
    content_type text NOT NULL,
    bytes integer NOT NULL,
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency-Key: a retry returns the first answer and creates nothing new.
CREATE TABLE idempotency_keys (
    key text NOT NULL,
    caller text NOT NULL,
    request_hash text NOT NULL,
    status integer NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);

-- The categories of layers/categories.toml, synced on every migrate, so
-- that routing can join them in SQL.
CREATE TABLE case_categories (
    code text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    deadline text NOT NULL,
    facility_layer text,
    rules text[] NOT NULL
);
