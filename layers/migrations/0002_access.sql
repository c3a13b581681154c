-- Users, their bearer tokens, Open311 client keys and the audit log of
-- administrative actions. Secrets are stored only as hashes.

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
    display_name text,
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'planner', 'subdistrict_staff', 'property_team',
                                       'contractor', 'survey_team', 'resident')),
    -- the scope of scoped roles: a sub-district, zones, or a unit
    subdistrict_code text,
    zone_codes text[] NOT NULL DEFAULT '{}',
    unit_code text REFERENCES units (code),
    phone text,
    disabled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Opaque bearer tokens, stored as sha256: revoking one (or disabling the
-- user) takes effect on the next request.
CREATE TABLE auth_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);

-- Open311 api_key per client application (WeChat mini-program, 12345 hotline …).
CREATE TABLE api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    key_hash bytea NOT NULL UNIQUE,
    client_name text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    table_name text NOT NULL,
    record_code text,
    details jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
