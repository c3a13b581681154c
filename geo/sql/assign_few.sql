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
),
decided AS (
    -- the first of the category's rules (at most three) that names a unit wins
    SELECT r.id, r.subdistrict_code, r.community_code, r.zone_code, r.section_code,
           CASE WHEN u.u1 IS NOT NULL THEN r.rules[1] WHEN u.u2 IS NOT NULL THEN r.rules[2]
                WHEN u.u3 IS NOT NULL THEN r.rules[3] END AS rule,
           coalesce(u.u1, u.u2, u.u3) AS unit
    FROM routed r
    CROSS JOIN LATERAL (
        SELECT
          CASE r.rules[1]
            WHEN 'section_contractor' THEN CASE WHEN r.kind = ANY(r.service_kinds) THEN r.contractor_unit END
            WHEN 'zone_team' THEN r.property_unit
            WHEN 'subdistrict_office' THEN r.office_unit
          END AS u1,
          CASE r.rules[2]
            WHEN 'section_contractor' THEN CASE WHEN r.kind = ANY(r.service_kinds) THEN r.contractor_unit END
            WHEN 'zone_team' THEN r.property_unit
            WHEN 'subdistrict_office' THEN r.office_unit
          END AS u2,
          CASE r.rules[3]
            WHEN 'section_contractor' THEN CASE WHEN r.kind = ANY(r.service_kinds) THEN r.contractor_unit END
            WHEN 'zone_team' THEN r.property_unit
            WHEN 'subdistrict_office' THEN r.office_unit
          END AS u3
    ) u
)
UPDATE cases c
SET subdistrict_code = d.subdistrict_code, community_code = d.community_code, zone_code = d.zone_code,
    section_code = d.section_code, unit_code = d.unit, routing_rule = d.rule,
    version = c.version + CASE WHEN %(initial)s THEN 0 ELSE 1 END, updated_at = now()
FROM decided d
JOIN cases old ON old.id = d.id
WHERE c.id = d.id
  AND (%(initial)s OR (old.unit_code, old.zone_code, old.section_code, old.subdistrict_code, old.community_code,
                       old.routing_rule)
      IS DISTINCT FROM (d.unit, d.zone_code, d.section_code, d.subdistrict_code, d.community_code, d.rule))
RETURNING c.id, old.unit_code, d.unit, old.zone_code, d.zone_code, d.rule
