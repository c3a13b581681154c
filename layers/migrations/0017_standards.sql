-- phase: post
-- The plan's four standards (issue 19 point 4): 长效机制形成 asks each zone's fee collection rate at
-- every acceptance request, and the performance points (point 5) each sub-district's for a year. Read
-- from the bills and payments themselves that is a scan of every bill (2.3 million at the scale of a
-- large district, about 2 s); so each building's month is kept summed here — bills, amount billed,
-- amount paid (own payments of its households and the building's monthly totals) — by statement-level
-- triggers on fee_bills and fee_payments, set-based like the writes themselves. A zone's figures then
-- read ~24 rows per building. Kept per building, not per zone: a building's zone comes from the
-- buildings layer when read, so a re-imported layer that moves a building moves its money with it.
CREATE TABLE fee_building_months (
    district_code text NOT NULL,
    building_code text NOT NULL,
    period date NOT NULL,
    bills integer NOT NULL DEFAULT 0,
    billed numeric(14, 2) NOT NULL DEFAULT 0,
    paid numeric(14, 2) NOT NULL DEFAULT 0,
    PRIMARY KEY (district_code, building_code, period)
);
CREATE INDEX fee_building_months_period_idx ON fee_building_months (district_code, period);

-- rows in (district, building, period) order: concurrent writers lock summary rows in one order
CREATE FUNCTION fee_months_add(delta jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO fee_building_months AS m (district_code, building_code, period, bills, billed, paid)
    SELECT d.district_code, d.building_code, d.period, d.bills, d.billed, d.paid
    FROM jsonb_to_recordset(delta) AS d(district_code text, building_code text, period date, bills integer,
                                        billed numeric, paid numeric)
    ORDER BY 1, 2, 3
    ON CONFLICT (district_code, building_code, period) DO UPDATE
    SET bills = m.bills + EXCLUDED.bills, billed = m.billed + EXCLUDED.billed, paid = m.paid + EXCLUDED.paid;
$$;

-- one function per event: a trigger function may name only the transition tables its event has
CREATE FUNCTION fee_bills_months_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.n)::integer AS bills, sum(c.amount) AS billed,
               0 AS paid
        FROM (SELECT b.district_code, b.household_id, b.period, 1 AS n, b.amount FROM new_rows b) c
        JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_bills_months_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.n)::integer AS bills, sum(c.amount) AS billed,
               0 AS paid
        FROM (SELECT b.district_code, b.household_id, b.period, -1 AS n, -b.amount AS amount FROM old_rows b) c
        JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_bills_months_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.n)::integer AS bills, sum(c.amount) AS billed,
               0 AS paid
        FROM (SELECT b.district_code, b.household_id, b.period, 1 AS n, b.amount FROM new_rows b
        UNION ALL SELECT b.district_code, b.household_id, b.period, -1, -b.amount FROM old_rows b) c
        JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_payments_months_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period,
               0 AS bills, 0 AS billed, sum(c.amount) AS paid
        FROM (SELECT p.district_code, p.household_id, p.building_code, p.period, p.amount FROM new_rows p) c
        LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_payments_months_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period,
               0 AS bills, 0 AS billed, sum(c.amount) AS paid
        FROM (SELECT p.district_code, p.household_id, p.building_code, p.period, -p.amount AS amount FROM old_rows p) c
        LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_payments_months_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        SELECT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period,
               0 AS bills, 0 AS billed, sum(c.amount) AS paid
        FROM (SELECT p.district_code, p.household_id, p.building_code, p.period, p.amount FROM new_rows p
        UNION ALL SELECT p.district_code, p.household_id, p.building_code, p.period, -p.amount FROM old_rows p) c
        LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

-- PostgreSQL 15: a trigger with transition tables names one event
CREATE TRIGGER fee_bills_months_ins AFTER INSERT ON fee_bills REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_bills_months_ins();
CREATE TRIGGER fee_bills_months_upd AFTER UPDATE ON fee_bills REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_bills_months_upd();
CREATE TRIGGER fee_bills_months_del AFTER DELETE ON fee_bills REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_bills_months_del();
CREATE TRIGGER fee_payments_months_ins AFTER INSERT ON fee_payments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_payments_months_ins();
CREATE TRIGGER fee_payments_months_upd AFTER UPDATE ON fee_payments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fee_payments_months_upd();
CREATE TRIGGER fee_payments_months_del AFTER DELETE ON fee_payments REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_payments_months_del();

-- what is there already
INSERT INTO fee_building_months (district_code, building_code, period, bills, billed, paid)
SELECT district_code, building_code, period, sum(bills), sum(billed), sum(paid) FROM (
    SELECT f.district_code, h.building_code, f.period, count(*) AS bills, sum(f.amount) AS billed, 0 AS paid
    FROM fee_bills f JOIN households h ON h.id = f.household_id GROUP BY 1, 2, 3
    UNION ALL
    SELECT p.district_code, coalesce(p.building_code, h.building_code), p.period, 0, 0, sum(p.amount)
    FROM fee_payments p LEFT JOIN households h ON h.id = p.household_id GROUP BY 1, 2, 3
) s GROUP BY 1, 2, 3;
