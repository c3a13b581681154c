-- Write the assignments that change (or every one at intake); returns the changes.
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
