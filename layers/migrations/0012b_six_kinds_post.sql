-- phase: post
-- Six kinds (issue 18), after the layer tables and inspections (0004) exist: defects, patrols.
-- an inspection sets a facility's condition and, for layers with one, its defect
-- (路面: 破损/坑洼/积水; 井盖: 缺失/破损), checked against the layer's vocabulary on write.
ALTER TABLE inspections ADD COLUMN defect text;
ALTER TABLE inspections ADD CONSTRAINT defect_len CHECK (char_length(defect) <= 80);

-- Security patrols by checkpoint (公共安全防范, 电子巡更; geo/programme/patrols.py): a round is who
-- patrolled which zone from when to when, with the checkpoints (patrol_points) scanned and their
-- times, and optionally the phone's track kept for display (storage coordinates; the GPX's vertex
-- numbers of the implausible jumps dropped on the way in). Coverage per zone and day or week is
-- computed from patrol_scans by one statement (patrols.COVERAGE), never stored.
CREATE TABLE patrol_rounds (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    zone_code text NOT NULL,
    patroller text NOT NULL CONSTRAINT patroller_len CHECK (char_length(patroller) <= 100),
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    source text NOT NULL CHECK (source IN ('api', 'import')),
    actor text NOT NULL,
    track geometry(LineString, 4490),
    track_coord_sys text CHECK (track_coord_sys IN ('wgs84', 'gcj02')),
    track_dropped integer[],
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ended_at_range CHECK (ended_at > started_at AND ended_at <= started_at + interval '24 hours')
);
CREATE INDEX patrol_rounds_zone_idx ON patrol_rounds (district_code, started_at, zone_code);

CREATE TABLE patrol_scans (
    round_id bigint NOT NULL REFERENCES patrol_rounds (id) ON DELETE CASCADE,
    district_code text NOT NULL,
    zone_code text NOT NULL,
    point_code text NOT NULL,
    scanned_at timestamptz NOT NULL
);
-- the coverage statement reads one period of the district: by time, the rest from the index
CREATE INDEX patrol_scans_time_idx ON patrol_scans (district_code, scanned_at) INCLUDE (zone_code, point_code);
CREATE INDEX patrol_scans_round_idx ON patrol_scans (round_id);
