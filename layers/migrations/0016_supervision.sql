-- phase: post
-- Supervision (督办, issue 20 point 4): the bureau (区城管局, role admin) marks an open case as
-- supervised with a deadline (a day, Asia/Shanghai) and a note. The marks live on the case row so every
-- list and count reads them without a join; each supervision is also a 'supervise' event in the case's
-- history. A supervised case still open after its deadline day is handed to the sub-district office once:
-- supervision_escalated_at is set in the same row as the 'supervision_overdue' event.
ALTER TABLE cases
    ADD COLUMN supervised_at timestamptz,
    ADD COLUMN supervised_by text,
    ADD COLUMN supervision_due date,
    ADD COLUMN supervision_note text,
    ADD COLUMN supervision_escalated_at timestamptz,
    ADD CONSTRAINT cases_supervision_complete CHECK (
        (supervised_at IS NULL) = (supervision_due IS NULL)
        AND (supervised_at IS NULL) = (supervision_note IS NULL)
    );
-- The desk pins open supervised cases on top (a few among many): a small partial index.
CREATE INDEX cases_supervised_idx ON cases (district_code, id DESC) WHERE supervised_at IS NOT NULL;

-- The unit of a supervised case is told (geo/cases/notices.py).
ALTER TABLE case_notices DROP CONSTRAINT case_notices_kind_check;
ALTER TABLE case_notices ADD CONSTRAINT case_notices_kind_check
    CHECK (kind IN ('dispatched', 'reopened', 'overdue', 'supervised'));

-- The facility-faults page (issue 20 point 6) lists the open cases linked to each faulty facility.
CREATE INDEX cases_facility_idx ON cases (facility_layer, facility_code) WHERE facility_code IS NOT NULL;
