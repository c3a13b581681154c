-- Assign cases to sub-district, community, zone, contract section and
-- responsible unit by spatial join, in one set-based statement.
-- Parameters: %(ids)s (bigint[] or NULL for every open case), %(district)s,
-- %(initial)s (true at intake: write even an empty assignment, keep the version).
--
-- Each boundary layer is joined polygon → points (GiST on cases.geom: the
-- polygon is the outer side, so PostGIS keeps it prepared across its points),
-- so a million points cost a few index scans rather than a million small
-- look-ups. The target predicate is repeated in each join for that reason. A point on the shared edge of two zones
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
in_subdistrict AS (
    SELECT c.id, min(s.code) AS code FROM subdistricts s JOIN cases c ON ST_Covers(s.geom, c.geom)
    WHERE c.district_code = %(district)s
          AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
          AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
    GROUP BY c.id
),
in_community AS (
    SELECT c.id, min(m.code) AS code FROM communities m JOIN cases c ON ST_Covers(m.geom, c.geom)
    WHERE c.district_code = %(district)s
          AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
          AND (%(ids)s::bigint[] IS NOT NULL OR c.state NOT IN ('closed', 'rejected', 'duplicate'))
    GROUP BY c.id
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
routed AS (
    SELECT t.id, sd.code AS subdistrict_code, cm.code AS community_code, zn.code AS zone_code,
           sc.code AS section_code,
           cat.rules, cat.kind, sec.service_kinds, sec.contractor_unit, zone.property_unit, sub.office_unit
    FROM target t
    JOIN case_categories cat ON cat.code = t.category
    LEFT JOIN in_subdistrict sd ON sd.id = t.id
    LEFT JOIN in_community cm ON cm.id = t.id
    LEFT JOIN in_zone zn ON zn.id = t.id
    LEFT JOIN in_section sc ON sc.id = t.id
    LEFT JOIN subdistricts sub ON sub.code = sd.code
    LEFT JOIN zones zone ON zone.code = zn.code
    LEFT JOIN contract_sections sec ON sec.code = sc.code
)
-- continues with route_decide.sql and assign_update.sql, shared with assign_few.sql
