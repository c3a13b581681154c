-- Assign cases to sub-district, community, zone, contract section and
-- responsible unit by spatial join, in one set-based statement.
-- Parameters: %(ids)s (bigint[] or NULL for every open case), %(district)s,
-- %(initial)s (true at intake: write even an empty assignment, keep the version).
--
-- Zones and sections are joined polygon → points (GiST on cases.geom: the
-- polygon is the outer side, so PostGIS keeps it prepared across its points),
-- so a million points cost a few index scans rather than a million small
-- look-ups. The target predicate is repeated in each join for that reason.
-- Sub-districts and communities are large and their boxes overlap, so that
-- join cost most of the time; but a zone that exactly one sub-district
-- (community) touches, and that one covers, lies wholly inside it, and no
-- other can cover its points: they take that parent without a test of their
-- own (as do the points of a zone no community touches: none). Only the rest
-- (outside every zone, or in a zone across a boundary) are looked up point →
-- polygon. Exact, not an approximation: the same answer as assign_few.sql. A point on the shared edge of two zones
-- (南片/北片) is covered by both: the zone whose code sorts first takes it
-- (min(code): deterministic, documented). Only rows whose assignment changes
-- are written (and returned).
WITH target AS (
    SELECT c.id, c.geom, c.category
    FROM cases c
    WHERE c.district_code = %(district)s
      AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
      AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
),
in_zone AS (
    SELECT c.id, min(z.code) AS code FROM zones z JOIN cases c ON ST_Covers(z.geom, c.geom)
    WHERE c.district_code = %(district)s
          AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
          AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
    GROUP BY c.id
),
in_section AS (
    SELECT c.id, min(x.code) AS code FROM contract_sections x JOIN cases c ON ST_Covers(x.geom, c.geom)
    WHERE c.district_code = %(district)s
          AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
          AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
    GROUP BY c.id
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
coded AS (
    SELECT t.id, t.category, zn.code AS zone_code, sc.code AS section_code,
           CASE WHEN zp.subdistrict_known THEN zp.subdistrict_code
                ELSE (SELECT s.code FROM subdistricts s WHERE ST_Covers(s.geom, t.geom) ORDER BY s.code LIMIT 1)
           END AS subdistrict_code,
           CASE WHEN zp.community_known THEN zp.community_code
                ELSE (SELECT m.code FROM communities m WHERE ST_Covers(m.geom, t.geom) ORDER BY m.code LIMIT 1)
           END AS community_code
    FROM target t
    LEFT JOIN in_zone zn ON zn.id = t.id
    LEFT JOIN zone_parent zp ON zp.code = zn.code
    LEFT JOIN in_section sc ON sc.id = t.id
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
