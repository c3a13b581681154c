-- A payments file checked set-based (issue 19 benchmark (b)): its cells are in the temporary table
-- payment_rows (n = row number, cells as text, NULL when blank). Each distinct month, day, amount and
-- count text is read once (a file repeats them: 10,000 rows, a handful of values), then every row is
-- joined to its building (in the caller's zones), household and zone service start.
-- Parameters: district, today, grace and the caller's zone scope (geo.access.scope.zone_scope); braces
-- doubled: the text is a psycopg sql.SQL template. Followed by payments_problems.sql (the check) or by
-- the import's INSERT's SELECT (geo/programme/fees.py).
WITH months AS (
    -- YYYY-MM (or / between), anything after a second '-' ignored, as period_of reads it
    SELECT period, CASE WHEN pm[1]::integer >= 1 AND pm[2]::integer BETWEEN 1 AND 12
                        THEN make_date(pm[1]::integer, pm[2]::integer, 1) END AS month
    FROM (SELECT period, regexp_match(replace(period, '/', '-'), '^\s*(\d{{1,4}})\s*-\s*(\d{{1,2}})\s*(-.*)?$') AS pm
          FROM (SELECT DISTINCT period FROM payment_rows) x) y
),
days AS (
    -- 2023-08-15, 2023/8/15, 2023年8月15日, 20230815 or a spreadsheet's datetime, as parse_date reads them
    SELECT paid_on, CASE WHEN dm[2]::integer BETWEEN 1 AND 12 AND dm[1]::integer >= 1 THEN
               CASE WHEN dm[3]::integer BETWEEN 1 AND extract(day FROM make_date(dm[1]::integer, dm[2]::integer, 1)
                                                            + interval '1 month - 1 day')
                    THEN make_date(dm[1]::integer, dm[2]::integer, dm[3]::integer) END END AS day
    FROM (SELECT paid_on, coalesce(regexp_match(t, '^(\d{{4}})-(\d{{1,2}})-(\d{{1,2}})$'),
                                   regexp_match(t, '^(\d{{4}})(\d{{2}})(\d{{2}})$'),
                                   regexp_match(t, '^(\d{{4}})-(\d{{2}})-(\d{{2}})[ T]\d{{2}}(?::\d{{2}}(?::\d{{2}}(?:\.\d{{1,6}})?)?)?$')) AS dm
          FROM (SELECT paid_on, btrim(replace(replace(replace(replace(paid_on, '年', '-'), '月', '-'), '日', ''), '/', '-')) AS t
                FROM (SELECT DISTINCT paid_on FROM payment_rows) x) y) z
),
amounts AS (
    -- a positive decimal number that fits the column (numeric(12, 2))
    SELECT amount, CASE WHEN number THEN CASE WHEN btrim(amount)::numeric > 0 AND btrim(amount)::numeric < 1e10
                                              THEN btrim(amount)::numeric END END AS value
    FROM (SELECT amount, amount ~ '^\s*\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{{1,3}})?\s*$' AS number
          FROM (SELECT DISTINCT amount FROM payment_rows) x) y
),
counts AS (
    SELECT households_paid, CASE WHEN households_paid ~ '^\s*\+?\d{{1,9}}\s*$' THEN btrim(households_paid)::integer END
           AS paid_count
    FROM (SELECT DISTINCT households_paid FROM payment_rows) x
),
buildings_in_scope AS (
    SELECT b.code, b.zone_code, v.starts_on FROM buildings b
    JOIN zones z ON z.code = b.zone_code AND z.district_code = b.district_code
    LEFT JOIN zone_services v ON v.district_code = b.district_code AND v.zone_code = b.zone_code
    WHERE b.district_code = %(district)s AND b.code IN (SELECT building FROM payment_rows) AND {scope}
),
valued AS (
    SELECT r.n, r.building, coalesce(r.unit, '') AS unit, coalesce(r.room, '') AS room, r.period, r.amount, r.paid_on,
           r.households_paid, m.month, d.day, a.value, c.paid_count, s.zone_code, s.starts_on, h.id AS household_id
    FROM payment_rows r
    LEFT JOIN months m ON m.period = r.period
    LEFT JOIN days d ON d.paid_on = r.paid_on
    LEFT JOIN amounts a ON a.amount = r.amount
    LEFT JOIN counts c ON c.households_paid = r.households_paid
    LEFT JOIN buildings_in_scope s ON s.code = r.building
    LEFT JOIN households h ON h.district_code = %(district)s AND h.building_code = r.building
        AND h.unit = coalesce(r.unit, '') AND h.room = r.room AND s.zone_code IS NOT NULL
)
