-- phase: post
-- A month of a large district's patrol scans (1.2 million rows, issue 18's benchmark) spent nine of
-- its sixteen seconds of COPY in the foreign key patrol_scans.round_id → patrol_rounds: one lookup
-- per row. The same rules, set-based, once per statement:
-- - every scan a statement adds or changes names a round that exists, checked with one join over the
--   statement's rows, which also locks those rounds FOR KEY SHARE as the foreign key did, so a round
--   cannot be deleted under a statement adding scans to it (and a statement adding scans to a round
--   being deleted waits, then fails);
-- - deleting rounds deletes their scans (what ON DELETE CASCADE did), also once per statement.
-- A refused scan raises foreign_key_violation (SQLSTATE 23503), as before.
ALTER TABLE patrol_scans DROP CONSTRAINT IF EXISTS patrol_scans_round_id_fkey;

CREATE OR REPLACE FUNCTION patrol_scans_rounds_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    found bigint;
    missing bigint;
BEGIN
    SELECT count(DISTINCT round_id) INTO wanted FROM new_scans;
    SELECT count(*) INTO found FROM (
        SELECT r.id FROM patrol_rounds r WHERE r.id IN (SELECT round_id FROM new_scans) FOR KEY SHARE OF r
    ) locked;
    IF found < wanted THEN
        SELECT n.round_id INTO missing FROM new_scans n
        WHERE NOT EXISTS (SELECT 1 FROM patrol_rounds r WHERE r.id = n.round_id) LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "patrol_scans": patrol round % does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'patrol_scans', COLUMN = 'round_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION patrol_rounds_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM patrol_scans s USING old_rounds o WHERE s.round_id = o.id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS patrol_scans_added ON patrol_scans;
CREATE TRIGGER patrol_scans_added AFTER INSERT ON patrol_scans REFERENCING NEW TABLE AS new_scans
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_scans_rounds_exist();
DROP TRIGGER IF EXISTS patrol_scans_changed ON patrol_scans;
CREATE TRIGGER patrol_scans_changed AFTER UPDATE ON patrol_scans REFERENCING NEW TABLE AS new_scans
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_scans_rounds_exist();
DROP TRIGGER IF EXISTS patrol_rounds_removed ON patrol_rounds;
CREATE TRIGGER patrol_rounds_removed AFTER DELETE ON patrol_rounds REFERENCING OLD TABLE AS old_rounds
    FOR EACH STATEMENT EXECUTE FUNCTION patrol_rounds_deleted();
