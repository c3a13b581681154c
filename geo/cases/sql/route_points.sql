-- Each target point (CTE target: id, geom, category) looks up its polygons through their
-- GiST indexes (point → polygon): a few index probes per point. Shared by assign_few.sql
-- (a handful of cases) and intake.sql (one new report). A point on the shared edge of two
-- polygons takes the one whose code sorts first (deterministic, documented).
routed AS (
    SELECT t.id, sd.code AS subdistrict_code, sd.office_unit, cm.code AS community_code,
           z.code AS zone_code, z.property_unit, s.code AS section_code, s.contractor_unit, s.service_kinds,
           cat.rules, cat.kind
    FROM target t
    JOIN case_categories cat ON cat.code = t.category
    LEFT JOIN LATERAL (SELECT code, office_unit FROM subdistricts
                       WHERE ST_Covers(geom, t.geom) ORDER BY code LIMIT 1) sd ON true
    LEFT JOIN LATERAL (SELECT code FROM communities
                       WHERE ST_Covers(geom, t.geom) ORDER BY code LIMIT 1) cm ON true
    LEFT JOIN LATERAL (SELECT code, property_unit FROM zones
                       WHERE ST_Covers(geom, t.geom) ORDER BY code LIMIT 1) z ON true
    LEFT JOIN LATERAL (SELECT code, contractor_unit, service_kinds FROM contract_sections
                       WHERE ST_Covers(geom, t.geom) ORDER BY code LIMIT 1) s ON true
)
