-- Intake of one report in one statement (its own transaction in autocommit): the
-- district check, the assignment (route_points.sql + route_decide.sql, shared with
-- assign_few.sql), the nearest facility, the insert with everything decided, the
-- first event, the duplicate lookup, the answer as JSON and, when the request
-- carries an Idempotency-Key, the key row holding that answer. A concurrent or
-- later request with the same key fails on the key's primary key (after the first
-- commits), which rolls the whole statement back: nothing half-written, nothing twice.
-- Nothing is written when the point is outside the district or a named facility is
-- not in its layer; the caller then says why.
-- Composed in geo/cases.py (_intake_sql): the routed, decided, facility and feature parts.
WITH target AS (
    SELECT NULL::bigint AS id, p.geom, ST_Transform(p.geom, %(metric)s) AS mgeom, %(category)s::text AS category
    FROM (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4490) AS geom) p
),
inside AS (
    -- and, only when it is not inside, whether it would be with its axes swapped (the error says so)
    SELECT i.ok, CASE WHEN i.ok THEN false ELSE EXISTS (
               SELECT 1 FROM districts d WHERE d.district_code = %(district)s
               AND ST_Covers(d.geom, ST_SetSRID(ST_MakePoint(%(y)s, %(x)s), 4490))) END AS swapped
    FROM (SELECT EXISTS (SELECT 1 FROM districts d, target t
                         WHERE d.district_code = %(district)s AND ST_Covers(d.geom, t.geom)) AS ok) i
),
{routed},
{decided},
facility AS (
    {facility}
),
new_case AS (
    SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id FROM inside
    WHERE inside.ok AND (%(facility_code)s::text IS NULL OR EXISTS (SELECT 1 FROM facility))
),
ins AS (
    INSERT INTO cases (id, code, district_code, version, category, description, geom, coord_sys, source,
                       client_name, reporter_user, reporter_name, reporter_phone, created_at, updated_at, due_at,
                       subdistrict_code, community_code, zone_code, section_code, unit_code, routing_rule,
                       facility_layer, facility_code, facility_distance_m)
    OVERRIDING SYSTEM VALUE
    SELECT n.id, 'C' || %(day)s || '-' || lpad(n.id::text, 6, '0'), %(district)s, 1, t.category,
           %(description)s, t.geom, %(coord_sys)s, %(source)s, %(client)s, %(user)s, %(name)s, %(phone)s,
           %(created)s, %(created)s, %(due)s,
           d.subdistrict_code, d.community_code, d.zone_code, d.section_code, d.unit, d.rule,
           f.layer, f.code, f.distance_m
    FROM new_case n CROSS JOIN target t CROSS JOIN decided d LEFT JOIN facility f ON true
    RETURNING *
),
ev AS (
    INSERT INTO case_events (case_id, district_code, actor, action, from_state, to_state, note, details)
    SELECT ins.id, %(district)s, %(actor)s, 'report', NULL, 'reported', %(description)s, %(details)s FROM ins
    RETURNING at, actor, action, from_state, to_state, note, details
),
nearby AS (
    -- open cases of the same category near the report and within the window (the new one is not
    -- visible to this statement, so it cannot find itself). Only callers who see a candidate in full
    -- (work roles in its area, its own reporter: exact) learn its distance in metres, within the radius;
    -- anyone else learns whether its public 50 m cell is the probe's cell or one of the eight around
    -- it, a function of the two cells alone, so probes placed anywhere in one cell get the same answer
    -- and no number of probes places a reporter closer than the public grid (issue 13, point 2).
    -- The point is spelt out, not taken from the CTE, so that the planner sees an index condition on
    -- cases.geom: a box of the reach in degrees at this latitude (+20%), then the distances in
    -- EPSG:4547 metres, with the point projected once (an InitPlan) rather than once per candidate.
    SELECT o.code, o.state, o.created_at, x.exact, round(x.d::numeric, 1) AS d, x.cell_d
    FROM cases o
    CROSS JOIN LATERAL (
        SELECT ST_Distance(ST_Transform(o.geom, %(metric)s), (SELECT t.mgeom FROM target t)) AS d,
               ST_Distance(ST_SnapToGrid(ST_Transform(o.geom, 4547), %(cell)s),
                           (SELECT ST_SnapToGrid(t.mgeom, %(cell)s) FROM target t)) AS cell_d,
               (%(dup_work)s AND {dup_scope}) OR coalesce(o.reporter_user = %(user)s, false) AS exact
    ) x
    WHERE o.geom && ST_Expand(ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4490),
                              %(dup_reach)s / (111320.0 * cos(radians(%(y)s))) * 1.2, %(dup_reach)s / 110574.0 * 1.2)
      AND o.category = %(category)s AND o.district_code = %(district)s AND o.state = ANY(%(open)s)
      AND o.created_at >= %(created)s - make_interval(days => %(days)s)
      AND CASE WHEN x.exact THEN x.d <= %(dup_radius)s ELSE x.cell_d <= %(cell)s * 1.5 END
    ORDER BY CASE WHEN x.exact THEN x.d ELSE x.cell_d END, o.created_at DESC
    LIMIT 10
),
answer AS (
    SELECT jsonb_set(f.feature::jsonb, ARRAY['properties', 'events'],
                     (SELECT jsonb_agg(jsonb_build_object('at', ev.at, 'actor', ev.actor, 'action', ev.action,
                                                          'from_state', ev.from_state, 'to_state', ev.to_state,
                                                          'note', ev.note, 'details', ev.details))
                      FROM ev))
           || jsonb_build_object('possible_duplicates', coalesce(
                  (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                        'code', nb.code, 'state', nb.state,
                                        'state_zh', %(state_names)s::jsonb ->> nb.state,
                                        'reported_at', nb.created_at,
                                        'distance_m', CASE WHEN nb.exact THEN nb.d END,
                                        'proximity', CASE WHEN nb.exact THEN NULL WHEN nb.cell_d = 0
                                                          THEN 'same_cell' ELSE 'adjacent_cell' END,
                                        'proximity_zh', CASE WHEN nb.exact THEN NULL WHEN nb.cell_d = 0
                                                             THEN '同一 50 米网格内' ELSE '相邻 50 米网格' END))
                                    ORDER BY CASE WHEN nb.exact THEN nb.d ELSE nb.cell_d END, nb.created_at DESC)
                   FROM nearby nb), '[]'::jsonb)) AS doc
    FROM ({feature}) f (feature, id)
),
claim AS (
    INSERT INTO idempotency_keys (key, caller, request_hash, status, response)
    SELECT %(key)s, %(caller)s, %(hash)s, 201, answer.doc FROM answer WHERE %(key)s::text IS NOT NULL
)
SELECT inside.ok, inside.swapped, answer.doc FROM inside LEFT JOIN answer ON true
