-- phase: post
-- The case desk's counts per state (issue 20's benchmark: 20 users on a sub-district of 20,000 cases)
-- cost a scan of every case in the caller's scope, closed ones included, on every page view: 8 ms of
-- the page's 25 at 20,000 cases, and growing with every year of closed cases. The counts are kept
-- between requests (geo/cases/counts.py) and are good only as long as no case has changed since: any
-- statement that writes `cases`, from any process (the API, the CLI's imports, the retention job, a
-- desktop client straight on the table), advances this sequence, and a kept count taken under an
-- older value is recomputed. A sequence, not a counter row: concurrent writers never wait on it.
CREATE SEQUENCE IF NOT EXISTS case_changes;

CREATE OR REPLACE FUNCTION case_changes_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('case_changes');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS cases_changed ON cases;
CREATE TRIGGER cases_changed AFTER INSERT OR UPDATE OR DELETE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION case_changes_bump();
DROP TRIGGER IF EXISTS cases_truncated ON cases;
CREATE TRIGGER cases_truncated AFTER TRUNCATE ON cases
    FOR EACH STATEMENT EXECUTE FUNCTION case_changes_bump();
