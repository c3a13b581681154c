-- The second half of assign_cases.sql and assign_few.sql: pick each case's unit by its
-- category's routing rules and write the assignments that change.
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
JOIN cases old ON old.id = d.id  -- the row as it was, for the re-routing events
WHERE c.id = d.id
  AND (%(initial)s OR (old.unit_code, old.zone_code, old.section_code, old.subdistrict_code, old.community_code,
                       old.routing_rule)
      IS DISTINCT FROM (d.unit, d.zone_code, d.section_code, d.subdistrict_code, d.community_code, d.rule))
RETURNING c.id, old.unit_code, d.unit, old.zone_code, d.zone_code, d.rule
