-- phase: post
-- The programme, complete (issue 19): the records a zone's phases are derived from, publicity before
-- work, and the plan's responsibility table.
--
-- 调查摸底: a zone's baseline record (dated, with its checklist: households, buildings and facilities
-- inventoried, problems listed), one per zone, replaced as a whole when redone.
CREATE TABLE zone_baselines (
    district_code text NOT NULL,
    zone_code text NOT NULL,
    surveyed_on date NOT NULL CHECK (surveyed_on >= DATE '2000-01-01'),
    households_inventoried boolean NOT NULL DEFAULT false,
    buildings_inventoried boolean NOT NULL DEFAULT false,
    facilities_inventoried boolean NOT NULL DEFAULT false,
    problems text[] NOT NULL DEFAULT '{}',
    unit_code text REFERENCES units (code),
    note text,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, zone_code)
);

-- 全面推进: property service started in the zone on a date, by a property-service unit.
CREATE TABLE zone_services (
    district_code text NOT NULL,
    zone_code text NOT NULL,
    starts_on date NOT NULL CHECK (starts_on >= DATE '2000-01-01'),
    unit_code text NOT NULL REFERENCES units (code),
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, zone_code)
);

-- A zone's own deadline is set by an administrator with a reason (the audit log keeps each change).
ALTER TABLE zone_phase_deadlines ADD COLUMN reason text;

-- 先宣传后实施: publicity records per zone, with their place (within 50 m of the zone), organiser and photos.
CREATE TABLE publicity_records (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    zone_code text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('notice', 'door_to_door', 'residents_meeting', 'coordination_meeting',
                                       'deployment_meeting', 'study_visit')),
    held_on date NOT NULL CHECK (held_on >= DATE '2000-01-01'),
    place geometry(Point, 4490) NOT NULL,
    unit_code text NOT NULL REFERENCES units (code),
    attendance integer CHECK (attendance >= 0),
    note text,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, id)
);
CREATE INDEX publicity_records_zone_idx ON publicity_records (district_code, zone_code, held_on);

CREATE TABLE publicity_photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    record_id bigint NOT NULL,
    path text NOT NULL,
    content_type text NOT NULL,
    bytes integer NOT NULL,
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (district_code, record_id) REFERENCES publicity_records (district_code, id)
);

-- 职责分工: each unit's duty as the plan states it.
ALTER TABLE units ADD COLUMN duty text;

-- 先服务后收费 (point 3): the household register, fee standards approved by 发改局, monthly bills and
-- payments. A household lives in a building of the buildings layer (by code; not a foreign key: a layer
-- import may replace the layer's rows).
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE zone_services ADD COLUMN monthly_cost numeric(12, 2) CHECK (monthly_cost >= 0);

CREATE TABLE households (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    building_code text NOT NULL,
    unit text NOT NULL DEFAULT '',
    room text NOT NULL CHECK (room <> ''),
    occupied boolean NOT NULL DEFAULT true,
    fee_category text NOT NULL DEFAULT 'standard' CHECK (fee_category IN ('standard', 'dibao', 'tekun')),
    floor_area_m2 numeric(8, 2) CHECK (floor_area_m2 > 0),
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (district_code, building_code, unit, room)
);

CREATE TABLE fee_standards (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    zone_code text NOT NULL,
    basis text NOT NULL CHECK (basis IN ('household', 'area')),
    amount numeric(10, 2) NOT NULL CHECK (amount > 0),
    effective daterange NOT NULL CHECK (NOT isempty(effective) AND lower(effective) >= DATE '2000-01-01'),
    document_number text NOT NULL CHECK (document_number <> ''),
    approved_by text NOT NULL REFERENCES units (code),
    -- fee category -> percent off (0-100), e.g. {"dibao": 50}
    reductions jsonb NOT NULL DEFAULT '{}',
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fee_standards_no_overlap EXCLUDE USING gist (district_code WITH =, zone_code WITH =, effective WITH &&)
);

CREATE TABLE fee_bills (
    district_code text NOT NULL,
    household_id bigint NOT NULL REFERENCES households (id),
    period date NOT NULL CHECK (extract(day FROM period) = 1),
    amount numeric(10, 2) NOT NULL CHECK (amount >= 0),
    standard_id bigint NOT NULL REFERENCES fee_standards (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, period)
);
CREATE INDEX fee_bills_period_idx ON fee_bills (district_code, period);

-- A payment of one household for a month, or a building's monthly total from the property company's
-- own charging system (with how many households it covers).
CREATE TABLE fee_payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    household_id bigint REFERENCES households (id),
    building_code text,
    households_paid integer CHECK (households_paid >= 0),
    period date NOT NULL CHECK (extract(day FROM period) = 1),
    amount numeric(12, 2) NOT NULL CHECK (amount > 0),
    paid_on date NOT NULL,
    source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'import')),
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((household_id IS NULL) <> (building_code IS NULL))
);
CREATE INDEX fee_payments_household_idx ON fee_payments (household_id, period);
CREATE INDEX fee_payments_building_idx ON fee_payments (district_code, building_code, period);
