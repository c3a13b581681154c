-- phase: post
-- Before and after photos of remediation tasks (issue 6), uploaded through
-- POST /remediation/{code}/photos: type checked by content, size-limited,
-- stored under $WUYE_HOME/photos/remediation/<task id>/ with server-chosen
-- names, read back only by staff whose scope covers the task's zone.
CREATE TABLE remediation_photos (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES remediation_tasks (id),
    district_code text NOT NULL,
    stage text NOT NULL CHECK (stage IN ('before', 'after')),
    path text NOT NULL,
    content_type text NOT NULL,
    bytes integer NOT NULL,
    actor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX remediation_photos_task_idx ON remediation_photos (task_id, id);

-- The free-text references of 0004 pointed at no stored file and are no
-- longer written; kept (not dropped) so that no deployed value is lost.
COMMENT ON COLUMN remediation_tasks.before_photo IS 'superseded by remediation_photos (0005); no longer written';
COMMENT ON COLUMN remediation_tasks.after_photo IS 'superseded by remediation_photos (0005); no longer written';
