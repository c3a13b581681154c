-- phase: post
-- Issue 13 ("Guarded"): sign-in limits, the append-only audit trail, reporters' data retention,
-- idle sessions, password age and the separated-duty roles. Runs after the layer tables (cases).

-- Sign-in limits counted in the database (issue 13 point 5): one row per username (all addresses)
-- and one per client address, updated with INSERT … ON CONFLICT so that concurrent attempts take
-- their turn on the row and each sees the count the one before it left (no race past the limit).
-- ``blocked_until`` is the growing delay: no password is checked for the key until it has passed.
CREATE TABLE IF NOT EXISTS login_failures (
    kind text NOT NULL CHECK (kind IN ('user', 'address')),
    key text NOT NULL CHECK (char_length(key) <= 256),
    failures integer NOT NULL DEFAULT 0,
    last_at timestamptz NOT NULL DEFAULT now(),
    blocked_until timestamptz,
    PRIMARY KEY (kind, key)
);

-- The audit trail is append-only (issue 13 point 9, 等保 2.0): no row of audit_log is ever changed,
-- and none is deleted before it is 180 days old (the floor of WUYE_AUDIT_RETENTION_DAYS, which the
-- background job purges past). A trigger holds for every role that connects, superusers included,
-- so neither the application nor an administrator's psql session can rewrite or erase the trail.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit_log is append-only: rows cannot be changed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.at > now() - interval '180 days' THEN
        RAISE EXCEPTION 'audit_log rows are kept at least 180 days (row % is from %)', OLD.id, OLD.at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END $$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Reporters' names and phone numbers are erased WUYE_PII_RETENTION_DAYS after a case is closed
-- (geo/cases/retention.py); when, so that a page can say so.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS pii_erased_at timestamptz;

-- Sessions end after WUYE_IDLE_MINUTES without use as well as at their expiry (point 9): when each
-- token was last used (touched at most once a minute, geo/access/users.py).
ALTER TABLE auth_tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz NOT NULL DEFAULT now();

-- When each password was last set, for WUYE_PASSWORD_MAX_DAYS (point 9).
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_changed_at timestamptz NOT NULL DEFAULT now();

-- Separated duties (point 9): the security administrator (users, roles, api_keys) and the audit
-- administrator (reads the audit trail) beside the system administrator.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'planner', 'subdistrict_staff',
    'property_team', 'contractor', 'survey_team', 'security_admin', 'audit_admin', 'resident'));
