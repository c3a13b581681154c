-- Six kinds (issue 18): drains, manholes, roads, ditches, walls, sports equipment and drying racks
-- are layer specs (layers/specs/); this file holds what no spec can say.
--
-- A line feature (a drain, a road, a ditch, a wall) belongs to one zone: the zone holding most
-- of its length (metres, EPSG:4547; ties to the lower code), computed as it is written unless the
-- writer names one (a planner's override: a wall on the edge two zones share). An edit that moves
-- the line recomputes it, unless the zone was overridden (it differs from the computed one) or the
-- edit names a new one; writing zone_code empty asks for it to be computed again. The layer tables
-- get their trigger from geo/store/migrate.py (layer_ddl), for every line layer with a zone_code.
-- plpgsql, not SQL functions: their bodies name the zones table, created after this (pre) phase.
-- (0012b_inspection_defects.sql, the post-phase part, runs after the layer tables.)

CREATE FUNCTION wuye_majority_zone(g geometry, district text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT z.code FROM zones z
        WHERE z.district_code = district AND z.geom && g AND ST_Intersects(z.geom, g)
        ORDER BY ST_Length(ST_Transform(ST_Intersection(z.geom, g), 4547)) DESC, z.code
        LIMIT 1
    );
END $$;

CREATE FUNCTION wuye_line_zone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.zone_code IS NULL THEN
        NEW.zone_code := wuye_majority_zone(NEW.geom, NEW.district_code);
    ELSIF TG_OP = 'UPDATE' AND NOT ST_Equals(NEW.geom, OLD.geom)
          AND NEW.zone_code IS NOT DISTINCT FROM OLD.zone_code
          AND OLD.zone_code IS NOT DISTINCT FROM wuye_majority_zone(OLD.geom, OLD.district_code) THEN
        NEW.zone_code := wuye_majority_zone(NEW.geom, NEW.district_code);
    END IF;
    RETURN NEW;
END $$;
