-- Core tables that no layer spec describes: responsible units, import batches,
-- and the edit history of every layer. Runs before the spec-generated tables,
-- which reference import_batches and units.

CREATE TABLE units (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    district_code text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    contact_person text,
    phone text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per bulk import (file, counts, actor, time); imported features point
-- to it through batch_id instead of carrying one history row each.
CREATE TABLE import_batches (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    layer text NOT NULL,
    source text NOT NULL,
    format text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('append', 'upsert', 'replace')),
    source_crs text,
    actor text NOT NULL,
    rows_read integer NOT NULL DEFAULT 0,
    rows_inserted integer NOT NULL DEFAULT 0,
    rows_updated integer NOT NULL DEFAULT 0,
    rows_deleted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- Every single-feature edit of every layer (who, when, old and new state).
CREATE TABLE feature_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    layer text NOT NULL,
    feature_id bigint NOT NULL,
    feature_code text NOT NULL,
    version integer NOT NULL,
    operation text NOT NULL CHECK (operation IN ('insert', 'update', 'delete', 'restore')),
    old_geom geometry(Geometry, 4490),
    new_geom geometry(Geometry, 4490),
    old_properties jsonb,
    new_properties jsonb,
    actor text NOT NULL,
    batch_id bigint REFERENCES import_batches (id),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feature_history_feature_idx ON feature_history (layer, feature_id, version);
