-- Pick each routed point's unit by its category's routing rules (CTE routed → decided).
-- Shared by the bulk and the few-cases assignment and by intake.
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
