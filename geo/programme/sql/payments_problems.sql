-- After payments_valued.sql: one row per problem, in row order.
SELECT n, field, reason FROM (
    SELECT n, 1 AS o, 'building' AS field,
           CASE WHEN building IS NULL THEN 'missing' ELSE 'building ''' || building || ''' does not exist' END AS reason
    FROM valued WHERE zone_code IS NULL
    UNION ALL
    SELECT n, 2, 'room', 'household ' || building || '-' || unit || '-' || room || ' is not in the register'
    FROM valued WHERE room <> '' AND zone_code IS NOT NULL AND household_id IS NULL
    UNION ALL
    SELECT n, 3, 'period', CASE WHEN period IS NULL THEN 'missing' ELSE '''' || period || ''' is not a month (YYYY-MM)' END
    FROM valued WHERE month IS NULL
    UNION ALL
    SELECT n, 4, 'amount', CASE WHEN amount IS NULL THEN 'missing' ELSE '''' || amount || ''' is not a positive amount' END
    FROM valued WHERE value IS NULL
    UNION ALL
    SELECT n, 5, 'paid_on', CASE WHEN paid_on IS NULL THEN 'missing'
                                 WHEN day IS NULL THEN '''' || paid_on || ''' is not a date (YYYY-MM-DD)'
                                 WHEN day < DATE '2000-01-01' THEN day || ' is before 2000-01-01'
                                 ELSE day || ' is in the future' END
    FROM valued WHERE day IS NULL OR day < DATE '2000-01-01' OR day > %(today)s
    UNION ALL
    SELECT n, 6, 'households_paid', '''' || households_paid || ''' is not a count'
    FROM valued WHERE room = '' AND households_paid IS NOT NULL AND paid_count IS NULL
    UNION ALL
    SELECT n, 7, 'period', CASE WHEN starts_on IS NULL THEN 'zone ''' || zone_code || ''' has no service start: nothing is chargeable'
        ELSE 'before the first chargeable month '
             || to_char(date_trunc('month', (starts_on + make_interval(months => %(grace)s))::date - 1)
                        + interval '1 month', 'YYYY-MM') || ' (先服务后收费)' END
    FROM valued WHERE month IS NOT NULL AND zone_code IS NOT NULL AND (starts_on IS NULL
        OR month < (date_trunc('month', (starts_on + make_interval(months => %(grace)s))::date - 1)
                    + interval '1 month')::date)
) problems ORDER BY n, o
