-- phase: post
-- Imports keep identity and history (issue 14): a replace or upsert import matches
-- features by code, so its batch record says how many rows it left unchanged, and
-- what it warned about (facilities outside every zone, points of one layer within
-- 0.5 m of each other) as counts per kind; the lists are in the import's report.
ALTER TABLE import_batches
    ADD COLUMN rows_unchanged integer NOT NULL DEFAULT 0,
    ADD COLUMN warnings jsonb NOT NULL DEFAULT '{}'::jsonb;
