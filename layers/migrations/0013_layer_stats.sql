-- phase: post
-- Counts and extents kept per layer table and district as features change (issue 17):
-- a desktop client's first small items request gets an exact numberMatched for the
-- whole layer without counting, and each collection's metadata gives the bounding box
-- of its own features, not the district's.
--
-- Statement-level triggers with transition tables maintain one row per (layer table,
-- district) in the writer's transaction, whoever writes (API edits, imports, restores,
-- another tool connected to the database). A delete or a moved geometry that touched
-- the box's edge recomputes the box from the table (a scan of that district's rows);
-- anything strictly inside leaves it as it is, so the box stays exact.
-- A layer table created after this migration needs wuye_track_layer('<table>').
CREATE TABLE layer_stats (
    layer_table text NOT NULL,
    district_code text NOT NULL,
    features bigint NOT NULL DEFAULT 0 CHECK (features >= 0),
    min_x double precision,
    min_y double precision,
    max_x double precision,
    max_y double precision,
    PRIMARY KEY (layer_table, district_code)
);

-- The exact count and box of one district's rows of one table, from the table itself.
CREATE FUNCTION wuye_stats_recompute(tbl text, district text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    b box2d;
BEGIN
    EXECUTE format('SELECT count(*), ST_Extent(geom) FROM %I WHERE district_code = $1', tbl)
        INTO n, b USING district;
    INSERT INTO layer_stats AS s (layer_table, district_code, features, min_x, min_y, max_x, max_y)
    VALUES (tbl, district, n, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b))
    ON CONFLICT (layer_table, district_code) DO UPDATE
        SET features = EXCLUDED.features, min_x = EXCLUDED.min_x, min_y = EXCLUDED.min_y,
            max_x = EXCLUDED.max_x, max_y = EXCLUDED.max_y;
END
$fn$;

-- Rows added (inserted, or the new side of an update): counts up, box grown.
CREATE FUNCTION wuye_stats_add(tbl text, district text, n bigint, x0 float8, y0 float8, x1 float8, y1 float8)
RETURNS void LANGUAGE sql AS $fn$
    INSERT INTO layer_stats AS s (layer_table, district_code, features, min_x, min_y, max_x, max_y)
    VALUES (tbl, district, n, x0, y0, x1, y1)
    ON CONFLICT (layer_table, district_code) DO UPDATE
        SET features = s.features + EXCLUDED.features,
            min_x = least(s.min_x, EXCLUDED.min_x), min_y = least(s.min_y, EXCLUDED.min_y),
            max_x = greatest(s.max_x, EXCLUDED.max_x), max_y = greatest(s.max_y, EXCLUDED.max_y);
$fn$;

-- Rows removed (deleted, or the old side of an update): counts down. True when the box must
-- be recomputed (a removed row reached its edge, or the district had no figures): the caller
-- does so once the statement's other figures are in, since a recompute sets them all.
CREATE FUNCTION wuye_stats_remove(tbl text, district text, n bigint, x0 float8, y0 float8, x1 float8, y1 float8)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    edge boolean;
BEGIN
    UPDATE layer_stats AS s SET features = s.features - n
    WHERE s.layer_table = tbl AND s.district_code = district
    RETURNING (x0 <= s.min_x OR y0 <= s.min_y OR x1 >= s.max_x OR y1 >= s.max_y) INTO edge;
    RETURN NOT FOUND OR edge IS NOT FALSE;
END
$fn$;

CREATE FUNCTION wuye_stats_trigger() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    redo text[] := '{}';
    d text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM layer_stats WHERE layer_table = TG_TABLE_NAME;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- only rows whose district or geometry changed move the figures
        FOR r IN
            SELECT o.district_code, count(*) AS n, min(ST_XMin(o.geom)) AS x0, min(ST_YMin(o.geom)) AS y0,
                   max(ST_XMax(o.geom)) AS x1, max(ST_YMax(o.geom)) AS y1
            FROM old_rows AS o JOIN new_rows AS w ON w.id = o.id
            WHERE o.district_code IS DISTINCT FROM w.district_code OR NOT ST_OrderingEquals(o.geom, w.geom)
            GROUP BY o.district_code
        LOOP
            IF wuye_stats_remove(TG_TABLE_NAME, r.district_code, r.n, r.x0, r.y0, r.x1, r.y1) THEN
                redo := redo || r.district_code;
            END IF;
        END LOOP;
        FOR r IN
            SELECT w.district_code, count(*) AS n, min(ST_XMin(w.geom)) AS x0, min(ST_YMin(w.geom)) AS y0,
                   max(ST_XMax(w.geom)) AS x1, max(ST_YMax(w.geom)) AS y1
            FROM new_rows AS w JOIN old_rows AS o ON o.id = w.id
            WHERE o.district_code IS DISTINCT FROM w.district_code OR NOT ST_OrderingEquals(o.geom, w.geom)
            GROUP BY w.district_code
        LOOP
            PERFORM wuye_stats_add(TG_TABLE_NAME, r.district_code, r.n, r.x0, r.y0, r.x1, r.y1);
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR r IN
            SELECT o.district_code, count(*) AS n, min(ST_XMin(o.geom)) AS x0, min(ST_YMin(o.geom)) AS y0,
                   max(ST_XMax(o.geom)) AS x1, max(ST_YMax(o.geom)) AS y1
            FROM old_rows AS o GROUP BY o.district_code
        LOOP
            IF wuye_stats_remove(TG_TABLE_NAME, r.district_code, r.n, r.x0, r.y0, r.x1, r.y1) THEN
                redo := redo || r.district_code;
            END IF;
        END LOOP;
    ELSE
        FOR r IN
            SELECT w.district_code, count(*) AS n, min(ST_XMin(w.geom)) AS x0, min(ST_YMin(w.geom)) AS y0,
                   max(ST_XMax(w.geom)) AS x1, max(ST_YMax(w.geom)) AS y1
            FROM new_rows AS w GROUP BY w.district_code
        LOOP
            PERFORM wuye_stats_add(TG_TABLE_NAME, r.district_code, r.n, r.x0, r.y0, r.x1, r.y1);
        END LOOP;
    END IF;
    FOREACH d IN ARRAY redo LOOP
        PERFORM wuye_stats_recompute(TG_TABLE_NAME, d);
    END LOOP;
    RETURN NULL;
END
$fn$;

-- The triggers on one layer table, and its figures from the rows it already has.
CREATE FUNCTION wuye_track_layer(tbl text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    d text;
BEGIN
    EXECUTE format('CREATE TRIGGER wuye_stats_ins AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION wuye_stats_trigger()', tbl);
    EXECUTE format('CREATE TRIGGER wuye_stats_upd AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows '
                   'NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION wuye_stats_trigger()', tbl);
    EXECUTE format('CREATE TRIGGER wuye_stats_del AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION wuye_stats_trigger()', tbl);
    EXECUTE format('CREATE TRIGGER wuye_stats_trunc AFTER TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION wuye_stats_trigger()', tbl);
    FOR d IN EXECUTE format('SELECT DISTINCT district_code FROM %I', tbl) LOOP
        PERFORM wuye_stats_recompute(tbl, d);
    END LOOP;
END
$fn$;

-- Every layer table (the spec-generated tables: code, district_code, version, batch_id, geom).
DO $do$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.table_name FROM information_schema.columns AS c
        JOIN information_schema.tables AS b
          ON b.table_schema = c.table_schema AND b.table_name = c.table_name AND b.table_type = 'BASE TABLE'
        WHERE c.table_schema = current_schema()
          AND c.column_name IN ('code', 'district_code', 'version', 'batch_id', 'geom')
        GROUP BY c.table_name HAVING count(*) = 5
        ORDER BY c.table_name
    LOOP
        PERFORM wuye_track_layer(t);
    END LOOP;
END
$do$;
