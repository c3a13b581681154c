-- Assign cases to sub-district, community, zone, contract section and
-- responsible unit by spatial join, in one set-based statement.
-- Parameters: %(ids)s (bigint[] or NULL for every open case), %(district)s,
-- %(initial)s (true at intake: write even an empty assignment, keep the version).
--
-- Most points need no polygon test at all. A grid of 0.0002-degree cells
-- (about 20 m here) is laid over the zones and over the sections: a cell that
-- exactly one zone touches, and that one covers, gives its points that zone; a
-- cell no zone touches gives none; only the points of the other cells (along
-- boundaries) are tested against the zones, point → polygon, each once. A
-- point's cell is floor(coordinate / size); the cells are tested with a margin
-- of 1e-9 degree, so a rounding of that division cannot put a point outside
-- the cell that answers for it, and the grid runs one cell beyond each box.
-- A zone that exactly one sub-district (community) touches, and that one
-- covers, gives its points that parent the same way; the others are looked up.
-- Exact, not an approximation: the same answers as assign_few.sql, where a
-- point on the shared edge of two zones (南片/北片) is covered by both and the
-- zone whose code sorts first takes it (deterministic, documented): such a
-- point lies in a cell two zones touch, so it is tested. Only rows whose
-- assignment changes are written (and returned).
WITH target AS (
    SELECT c.id, c.geom, c.category,
           floor(ST_X(c.geom) / 0.0002)::int AS gi, floor(ST_Y(c.geom) / 0.0002)::int AS gj
    FROM cases c
    WHERE c.district_code = %(district)s
      AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
      AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
),
zone_cell AS (
    -- known: exactly one zone touches the cell and covers it (absent: no zone touches it)
    SELECT g.i, g.j, count(*) = 1 AND bool_and(ST_Covers(z.geom, g.box)) AS known, min(z.code) AS code
    FROM (SELECT DISTINCT i, j, ST_Expand(ST_MakeEnvelope(i * 0.0002, j * 0.0002, (i + 1) * 0.0002,
                                                          (j + 1) * 0.0002, 4490), 1e-9) AS box
          FROM zones b,
               generate_series(floor(ST_XMin(b.geom) / 0.0002)::int - 1, floor(ST_XMax(b.geom) / 0.0002)::int + 1) i,
               generate_series(floor(ST_YMin(b.geom) / 0.0002)::int - 1, floor(ST_YMax(b.geom) / 0.0002)::int + 1) j
         ) g
    JOIN zones z ON ST_Intersects(z.geom, g.box)
    GROUP BY g.i, g.j
),
section_cell AS (
    SELECT g.i, g.j, count(*) = 1 AND bool_and(ST_Covers(x.geom, g.box)) AS known, min(x.code) AS code
    FROM (SELECT DISTINCT i, j, ST_Expand(ST_MakeEnvelope(i * 0.0002, j * 0.0002, (i + 1) * 0.0002,
                                                          (j + 1) * 0.0002, 4490), 1e-9) AS box
          FROM contract_sections b,
               generate_series(floor(ST_XMin(b.geom) / 0.0002)::int - 1, floor(ST_XMax(b.geom) / 0.0002)::int + 1) i,
               generate_series(floor(ST_YMin(b.geom) / 0.0002)::int - 1, floor(ST_YMax(b.geom) / 0.0002)::int + 1) j
         ) g
    JOIN contract_sections x ON ST_Intersects(x.geom, g.box)
    GROUP BY g.i, g.j
),
zone_parent AS (
    -- known: no parent touches the zone, or exactly one does and covers it
    SELECT z.code,
           sd.n = 0 OR (sd.n = 1 AND sd.covers) AS subdistrict_known,
           CASE WHEN sd.n = 1 THEN sd.code END AS subdistrict_code,
           cm.n = 0 OR (cm.n = 1 AND cm.covers) AS community_known,
           CASE WHEN cm.n = 1 THEN cm.code END AS community_code
    FROM zones z
    CROSS JOIN LATERAL (SELECT count(*) AS n, min(s.code) AS code, bool_and(ST_Covers(s.geom, z.geom)) AS covers
                        FROM subdistricts s WHERE ST_Intersects(s.geom, z.geom)) sd
    CROSS JOIN LATERAL (SELECT count(*) AS n, min(m.code) AS code, bool_and(ST_Covers(m.geom, z.geom)) AS covers
                        FROM communities m WHERE ST_Intersects(m.geom, z.geom)) cm
),
located AS MATERIALIZED (
    -- materialised: a looked-up code is computed once, not once per later reference
    SELECT t.id, t.geom, t.category,
           CASE WHEN zc.known THEN zc.code WHEN zc.i IS NOT NULL THEN
                (SELECT z.code FROM zones z WHERE ST_Covers(z.geom, t.geom) ORDER BY z.code LIMIT 1) END AS zone_code,
           CASE WHEN sc.known THEN sc.code WHEN sc.i IS NOT NULL THEN
                (SELECT x.code FROM contract_sections x WHERE ST_Covers(x.geom, t.geom) ORDER BY x.code LIMIT 1)
           END AS section_code
    FROM target t
    LEFT JOIN zone_cell zc ON zc.i = t.gi AND zc.j = t.gj
    LEFT JOIN section_cell sc ON sc.i = t.gi AND sc.j = t.gj
),
coded AS (
    SELECT r.id, r.category, r.zone_code, r.section_code,
           CASE WHEN zp.subdistrict_known THEN zp.subdistrict_code
                ELSE (SELECT s.code FROM subdistricts s WHERE ST_Covers(s.geom, r.geom) ORDER BY s.code LIMIT 1)
           END AS subdistrict_code,
           CASE WHEN zp.community_known THEN zp.community_code
                ELSE (SELECT m.code FROM communities m WHERE ST_Covers(m.geom, r.geom) ORDER BY m.code LIMIT 1)
           END AS community_code
    FROM located r
    LEFT JOIN zone_parent zp ON zp.code = r.zone_code
),
routed AS (
    SELECT r.id, r.subdistrict_code, r.community_code, r.zone_code, r.section_code,
           cat.rules, cat.kind, sec.service_kinds, sec.contractor_unit, zone.property_unit, sub.office_unit
    FROM coded r
    JOIN case_categories cat ON cat.code = r.category
    LEFT JOIN subdistricts sub ON sub.code = r.subdistrict_code
    LEFT JOIN zones zone ON zone.code = r.zone_code
    LEFT JOIN contract_sections sec ON sec.code = r.section_code
)
-- continues with route_decide.sql and assign_update.sql, shared with assign_few.sql
