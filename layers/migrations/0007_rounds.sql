-- phase: post
-- Survey rounds as records (issue 15): a round has a label, a kind (first =
-- 首次验收, redo = 补课), the zones it covers, its dates and its organiser;
-- every answer belongs to one. Each zone is judged on its own round: the
-- latest by date that has answers for it, or the one an administrator fixed
-- (survey_zone_rounds). Corrections leave a trace: imports are batches,
-- answers are withdrawn (never deleted) or corrected with a reason, each move
-- an event keeping the answer as it was.

CREATE TABLE survey_rounds (
    district_code text NOT NULL,
    label text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('first', 'redo')),
    zone_codes text[] NOT NULL CHECK (cardinality(zone_codes) > 0),
    -- a round created by its first answer or import takes in the zones it is used for;
    -- one declared with its zones refuses answers for any other
    zones_fixed boolean NOT NULL DEFAULT false,
    starts_on date,
    ends_on date,
    organiser text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, label),
    CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on)
);

-- Existing answers: one round per label, kind first, the zones and dates it has answers for.
INSERT INTO survey_rounds (district_code, label, kind, zone_codes, starts_on, ends_on, created_by)
SELECT district_code, round, 'first', array_agg(DISTINCT zone_code ORDER BY zone_code), min(answered_on),
       max(answered_on), 'migration 0007'
FROM survey_answers GROUP BY district_code, round;

CREATE TABLE survey_batches (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    source text NOT NULL,
    rows integer NOT NULL,
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    withdrawn_by text,
    withdrawn_reason text,
    PRIMARY KEY (district_code, id)
);

ALTER TABLE survey_answers
    ADD COLUMN batch_id bigint,
    ADD COLUMN withdrawn_at timestamptz,
    ADD COLUMN withdrawn_by text,
    ADD COLUMN withdrawn_reason text,
    ADD CONSTRAINT survey_answers_round_fk FOREIGN KEY (district_code, round)
        REFERENCES survey_rounds (district_code, label),
    ADD CONSTRAINT survey_answers_batch_fk FOREIGN KEY (district_code, batch_id)
        REFERENCES survey_batches (district_code, id);

-- One counting answer per household per round, won in the database (INSERT ... ON CONFLICT);
-- withdrawn answers stay, so a withdrawn batch can be imported again.
ALTER TABLE survey_answers DROP CONSTRAINT survey_answers_district_code_round_zone_code_household_key;
CREATE UNIQUE INDEX survey_answers_household_key ON survey_answers (district_code, round, zone_code, household)
    WHERE withdrawn_at IS NULL;
CREATE INDEX survey_answers_batch_idx ON survey_answers (batch_id);

-- The round an administrator fixed for a zone (else: its latest round by date with answers).
CREATE TABLE survey_zone_rounds (
    district_code text NOT NULL,
    zone_code text NOT NULL,
    round text NOT NULL,
    reason text NOT NULL,
    set_by text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, zone_code),
    FOREIGN KEY (district_code, round) REFERENCES survey_rounds (district_code, label)
);

-- Every withdrawal and correction of an answer: who, when, why, and the answer before and after.
CREATE TABLE survey_answer_events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    answer_id bigint NOT NULL REFERENCES survey_answers (id),
    batch_id bigint,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL CHECK (action IN ('withdraw', 'correct', 'replace')),
    reason text,
    before jsonb NOT NULL,
    after jsonb,
    PRIMARY KEY (district_code, id)
);
CREATE INDEX survey_answer_events_answer_idx ON survey_answer_events (answer_id, at);

-- Issued verdicts (签发): the figures, the criteria and the zone PDF frozen as an acceptance document
-- with its number and SHA-256; served as issued forever. A corrected one is a new version of the
-- zone's round naming the number it replaces.
CREATE TABLE acceptance_documents (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    number text NOT NULL,
    year integer NOT NULL,
    seq integer NOT NULL CHECK (seq > 0),
    zone_code text NOT NULL,
    round text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    replaces text,
    reason text,
    verdict text,
    figures jsonb NOT NULL,
    pdf bytea NOT NULL,
    sha256 text NOT NULL,
    issued_by text NOT NULL,
    issued_at timestamptz NOT NULL,
    PRIMARY KEY (district_code, id),
    UNIQUE (district_code, number),
    UNIQUE (district_code, year, seq),
    UNIQUE (district_code, zone_code, round, version),
    FOREIGN KEY (district_code, round) REFERENCES survey_rounds (district_code, label),
    FOREIGN KEY (district_code, replaces) REFERENCES acceptance_documents (district_code, number)
);
