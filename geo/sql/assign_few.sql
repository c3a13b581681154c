-- The same assignment as assign_cases.sql, for a handful of cases (intake, an
-- action, a small edit): each point looks up its polygons through their GiST
-- indexes (point → polygon), which costs a few index probes per case, where the
-- bulk form would scan every case inside each polygon.
-- Parameters: %(ids)s (bigint[]), %(district)s, %(initial)s.
WITH target AS (
    SELECT c.id, c.geom, c.category FROM cases c
    WHERE c.district_code = %(district)s AND c.id = ANY(%(ids)s::bigint[])
),
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
-- continues with assign_route.sql (decided + UPDATE), shared with assign_cases.sql
