-- The same assignment as assign_cases.sql, for a handful of cases (intake, an
-- action, a small edit): each point looks up its polygons through their GiST
-- indexes (point → polygon), which costs a few index probes per case, where the
-- bulk form would scan every case inside each polygon.
-- Parameters: %(ids)s (bigint[]), %(district)s, %(initial)s.
WITH target AS (
    SELECT c.id, c.geom, c.category FROM cases c
    WHERE c.district_code = %(district)s AND c.id = ANY(%(ids)s::bigint[])
)
-- continues with route_points.sql, route_decide.sql and assign_update.sql
