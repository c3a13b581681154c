-- One page of features as a finished GeoJSON FeatureCollection (bytea, UTF-8).
-- {where} filters the layer (district, bbox, datetime, attributes, CQL2);
-- {keyset} continues after/before the cursor row; {order} is the page order
-- (reversed for a "prev" page, which {out_dir} turns back for output).
-- {kept_count} is the count kept in layer_stats when the request has no filter but the
-- district (exact at any size), else NULL: then counting stops at %(cap)s rows.
-- Every text that is not SQL (links, their titles, hrefs) arrives as a bound value.
WITH page AS (
    SELECT t.id AS _id, t.code AS _code, {key_cols}
           row_to_json(_p)::text AS _props,
           ST_AsGeoJSON({geom}, %(digits)s, 0) AS _geom,
           row_number() OVER (ORDER BY {order}) AS _rn
    FROM {table} AS t CROSS JOIN LATERAL (SELECT {props}) AS _p
    WHERE {where} AND {keyset}
    ORDER BY {order}
    LIMIT %(fetch)s
),
shown AS (SELECT * FROM page WHERE _rn <= %(limit)s),
facts AS (
    SELECT (SELECT count(*) FROM shown) AS returned,
           (SELECT count(*) FROM page) > %(limit)s AS more,
           (SELECT {token} FROM shown WHERE _rn = 1) AS low_token,
           (SELECT {token} FROM shown WHERE _rn = (SELECT max(_rn) FROM shown)) AS high_token
)
SELECT convert_to(concat(
    '{{"type":"FeatureCollection","features":[',
    (SELECT string_agg(concat('{{"type":"Feature","id":', to_json(_code), ',"geometry":',
                              coalesce(_geom, 'null'), ',"properties":', _props, '}}'),
                       ',' ORDER BY _rn {out_dir})
     FROM shown),
    '],"numberReturned":', f.returned,
    CASE
        WHEN NOT %(from_cursor)s AND NOT f.more THEN concat(',"numberMatched":', f.returned)
        ELSE coalesce(
            {kept_count},
            (SELECT CASE WHEN m.n < %(cap)s THEN concat(',"numberMatched":', m.n) ELSE '' END
             FROM (SELECT count(*) AS n
                   FROM (SELECT 1 FROM {table} AS t WHERE {where} LIMIT %(cap)s) AS c) AS m))
    END,
    ',"timeStamp":"', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '"',
    ',"links":[', %(links)s::text,
    CASE WHEN {last_token} IS NOT NULL AND (CASE WHEN %(forward)s THEN f.more ELSE %(from_cursor)s END)
         THEN concat(',{{"rel":"next","type":"application/geo+json","title":', to_json(%(next_title)s::text), ',"href":',
                     to_json(%(page_href)s::text || 'n' || {last_token}), '}}')
         ELSE '' END,
    CASE WHEN {first_token} IS NOT NULL AND (CASE WHEN %(forward)s THEN %(from_cursor)s ELSE f.more END)
         THEN concat(',{{"rel":"prev","type":"application/geo+json","title":', to_json(%(prev_title)s::text), ',"href":',
                     to_json(%(page_href)s::text || 'p' || {first_token}), '}}')
         ELSE '' END,
    ']}}'), 'UTF8')
FROM facts AS f
