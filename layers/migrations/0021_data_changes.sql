-- phase: post
-- Figures kept between requests (geo/store/kept.py: the acceptance figures, the statistics page's
-- charts) are good while no row under them has changed. This sequence moves with every statement that
-- writes one of the tables the figures read, from any process; data_changes_watch() puts the trigger
-- on every table of the schema but the logs and sessions below (written on every request or sign-in,
-- they change no figure), and runs again after each migration (geo/store/migrate.py), so a layer added
-- to the catalogue later is watched too. A sequence, not a counter row: writers never wait on it.
CREATE SEQUENCE IF NOT EXISTS data_changes;

CREATE OR REPLACE FUNCTION data_changes_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('data_changes');
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION data_changes_watch() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    added integer := 0;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ('audit_log', 'auth_tokens', 'login_failures', 'idempotency_keys', 'case_notices',
                                'notice_reads', 'feature_history', 'layer_stats', 'spatial_ref_sys',
                                'wuye_migrations', 'api_keys')
          AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'data_changed')
    LOOP
        EXECUTE format('CREATE TRIGGER data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION data_changes_bump()', t.relname);
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$;

SELECT data_changes_watch();
