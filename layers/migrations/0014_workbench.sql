-- phase: post
-- The workbench (issue 20). Demo accounts: `wuye demo --users` makes one account per role so a newcomer can try
-- each; they are marked here, and signing in with one is refused when WUYE_DEMO_USERS=false.
ALTER TABLE users ADD COLUMN demo boolean NOT NULL DEFAULT false;

-- Notifications (issue 20 point 5): one notice per case event that concerns a unit (dispatched to
-- it, sent back to it, overdue); every user of the unit sees it in the app until they read it
-- (notice_reads), and where the unit has a webhook (WUYE_WEBHOOK_URLS) the notice is POSTed there
-- by the service's sender, with retries; the webhook_* columns are the delivery log.
CREATE TABLE case_notices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    district_code text NOT NULL,
    case_id bigint NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    unit_code text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('dispatched', 'reopened', 'overdue')),
    message_zh text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    webhook_state text NOT NULL DEFAULT 'pending' CHECK (webhook_state IN ('pending', 'delivered', 'failed', 'none')),
    webhook_attempts integer NOT NULL DEFAULT 0,
    webhook_next_at timestamptz NOT NULL DEFAULT now(),
    webhook_url text,
    webhook_status integer,
    webhook_error text,
    webhook_done_at timestamptz
);
CREATE INDEX case_notices_unit ON case_notices (unit_code, id DESC);
CREATE INDEX case_notices_pending ON case_notices (webhook_next_at) WHERE webhook_state = 'pending';
CREATE TABLE notice_reads (
    notice_id bigint NOT NULL REFERENCES case_notices (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, notice_id)
);
