-- phase: post
-- 补课 is work with a deadline (issue 15): an issued 补课 (redo) verdict opens a redo plan for the
-- zone, one item per failed criterion, each with its responsible unit (the sub-district office by
-- default), a deadline (WUYE_REDO_DAYS calendar days after issue), a state and its evidence (notes,
-- photos, links to remediation tasks or cases). An item is overdue as a case is: its deadline
-- passed before it was done (or before today, while it is not); a withdrawn item never is.

CREATE TABLE redo_items (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    zone_code text NOT NULL,
    -- the issued 补课 document that opened it (null: added by hand to the zone's open plan)
    document_id bigint,
    criterion text NOT NULL,
    title_zh text NOT NULL,
    detail_zh text,
    unit_code text REFERENCES units (code),
    due_on date NOT NULL,
    -- withdrawn: a corrected version of the verdict no longer fails its criterion (never set by hand)
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'in_progress', 'done', 'withdrawn')),
    done_on date,
    version integer NOT NULL DEFAULT 1,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (district_code, id),
    FOREIGN KEY (district_code, document_id) REFERENCES acceptance_documents (district_code, id),
    CHECK ((state = 'done') = (done_on IS NOT NULL))
);
CREATE INDEX redo_items_zone_idx ON redo_items (district_code, zone_code, id);
-- one unfinished item per criterion and zone: a new version of a 补课 verdict carries the open ones on
CREATE UNIQUE INDEX redo_items_open_key ON redo_items (district_code, zone_code, criterion)
    WHERE state IN ('open', 'in_progress');

-- What shows an item's work: a note, a photo (stored under $WUYE_HOME/photos/redo/<item id>/), or a
-- link to a remediation task or a case of the zone. Added, never changed.
CREATE TABLE redo_evidence (
    id bigint GENERATED ALWAYS AS IDENTITY,
    district_code text NOT NULL,
    item_id bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('note', 'photo', 'task', 'case')),
    note text,
    ref text,
    path text,
    content_type text,
    bytes integer,
    actor text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (district_code, id),
    FOREIGN KEY (district_code, item_id) REFERENCES redo_items (district_code, id)
);
CREATE INDEX redo_evidence_item_idx ON redo_evidence (item_id, id);
