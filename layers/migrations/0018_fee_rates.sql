-- phase: post
-- The collection rates per building, zone and sub-district (issue 19 point 3, benchmark (c)) read the
-- per-building monthly sums of migration 0017 instead of every bill (2.3 million at a large district's
-- scale, 16 s). What the sums lacked, kept here by the same statement-level triggers:
--   bills_paid        bills whose household's own payments for the month cover the bill (>= amount),
--   paid_capped       what households' own payments cover of their bills, each capped at its bill,
--   total_paid        the building's monthly totals (the property company's own charging system),
--   total_households  the households those totals say they cover.
-- Capping is per bill, so a payment changes a building's figures by what it changes for its bill
-- (before/after), and a bill by what is already paid for its household and month. The triggers lock
-- the building's month row first (one order: district, building, period) and only then read payments
-- and bills: a concurrent bill run and a payment for the same month then see each other's committed rows.
ALTER TABLE fee_building_months
    ADD COLUMN bills_paid integer NOT NULL DEFAULT 0,
    ADD COLUMN paid_capped numeric(14, 2) NOT NULL DEFAULT 0,
    ADD COLUMN total_paid numeric(14, 2) NOT NULL DEFAULT 0,
    ADD COLUMN total_households integer NOT NULL DEFAULT 0;

-- a bill run asks which of its month's households have paid: the month's own payments, not all
CREATE INDEX fee_payments_period_idx ON fee_payments (period, household_id) INCLUDE (amount)
    WHERE household_id IS NOT NULL;

-- the rows of ``keys`` made if missing (waiting for a concurrent maker) and locked, in one order; a lock,
-- not a no-op update: the sums are read by every rate and would bloat with a dead row per write
CREATE FUNCTION fee_months_lock(keys jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fee_building_months (district_code, building_code, period)
    SELECT d.district_code, d.building_code, d.period
    FROM jsonb_to_recordset(keys) AS d(district_code text, building_code text, period date)
    ORDER BY 1, 2, 3
    ON CONFLICT (district_code, building_code, period) DO NOTHING;
    PERFORM 1 FROM fee_building_months m
    JOIN jsonb_to_recordset(keys) AS d(district_code text, building_code text, period date)
      ON m.district_code = d.district_code AND m.building_code = d.building_code AND m.period = d.period
    ORDER BY m.district_code, m.building_code, m.period FOR UPDATE OF m;
END;
$$;

-- the rows are locked (fee_months_lock) before; a delta may name a row more than once (summed first:
-- an UPDATE changes each row once)
CREATE OR REPLACE FUNCTION fee_months_add(delta jsonb) RETURNS void LANGUAGE sql AS $$
    UPDATE fee_building_months AS m
    SET bills = m.bills + d.bills, billed = m.billed + d.billed, paid = m.paid + d.paid,
        bills_paid = m.bills_paid + d.bills_paid, paid_capped = m.paid_capped + d.paid_capped,
        total_paid = m.total_paid + d.total_paid, total_households = m.total_households + d.total_households
    FROM (SELECT district_code, building_code, period, sum(bills) AS bills, sum(billed) AS billed, sum(paid) AS paid,
                 sum(bills_paid) AS bills_paid, sum(paid_capped) AS paid_capped, sum(total_paid) AS total_paid,
                 sum(total_households) AS total_households
          FROM jsonb_to_recordset(delta) AS d(district_code text, building_code text, period date, bills integer,
                                              billed numeric, paid numeric, bills_paid integer, paid_capped numeric,
                                              total_paid numeric, total_households integer)
          GROUP BY 1, 2, 3) d
    WHERE m.district_code = d.district_code AND m.building_code = d.building_code AND m.period = d.period;
$$;

-- bills: sign +1 for new rows, -1 for old rows. A bill's share of its building's month given what its
-- household has paid for the month (own): least(own, amount), and paid when own >= amount. First as
-- if nothing were paid (a bill of 0 is paid), then corrected for the bills whose month has payments,
-- read after the lock. (PostgreSQL 15: only the trigger function itself sees its transition tables.)
CREATE OR REPLACE FUNCTION fee_bills_months_ins() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta jsonb;
    missing bigint;
    periods date[];
BEGIN
    SELECT jsonb_agg(g), sum(g.missing), array_agg(DISTINCT g.period) INTO delta, missing, periods FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.sign)::integer AS bills,
               sum(c.sign * c.amount) AS billed, 0 AS paid,
               coalesce(sum(c.sign) FILTER (WHERE c.amount <= 0), 0) AS bills_paid, 0 AS paid_capped,
               0 AS total_paid, 0 AS total_households, count(*) FILTER (WHERE h.id IS NULL) AS missing
        FROM (SELECT district_code, household_id, period, amount, 1 AS sign FROM new_rows) c LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3) g;
    IF missing > 0 THEN
        RAISE EXCEPTION 'fee_bills names % households that do not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM fee_months_lock(delta);
    PERFORM fee_months_add(delta);
    -- bills whose household has paid for the month already (after the lock: committed payments; a
    -- bill run before the month's first payment, the usual order, has none to look at)
    IF EXISTS (SELECT 1 FROM fee_payments p WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL) THEN
        PERFORM fee_months_add(jsonb_agg(g)) FROM (
            SELECT c.district_code, h.building_code, c.period, 0 AS bills, 0 AS billed, 0 AS paid,
                   sum(c.sign * ((o.own >= c.amount)::integer - (c.amount <= 0)::integer)) AS bills_paid,
                   sum(c.sign * least(o.own, c.amount)) AS paid_capped, 0 AS total_paid, 0 AS total_households
            FROM (SELECT district_code, household_id, period, amount, 1 AS sign FROM new_rows) c
            JOIN (SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
                  WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL GROUP BY 1, 2) o
              ON o.household_id = c.household_id AND o.period = c.period
            JOIN households h ON h.id = c.household_id
            GROUP BY 1, 2, 3
        ) g HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fee_bills_months_del() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta jsonb;
    missing bigint;
    periods date[];
BEGIN
    SELECT jsonb_agg(g), sum(g.missing), array_agg(DISTINCT g.period) INTO delta, missing, periods FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.sign)::integer AS bills,
               sum(c.sign * c.amount) AS billed, 0 AS paid,
               coalesce(sum(c.sign) FILTER (WHERE c.amount <= 0), 0) AS bills_paid, 0 AS paid_capped,
               0 AS total_paid, 0 AS total_households, count(*) FILTER (WHERE h.id IS NULL) AS missing
        FROM (SELECT district_code, household_id, period, amount, -1 AS sign FROM old_rows) c LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3) g;
    IF missing > 0 THEN
        RAISE EXCEPTION 'fee_bills names % households that do not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM fee_months_lock(delta);
    PERFORM fee_months_add(delta);
    -- bills whose household has paid for the month already (after the lock: committed payments; a
    -- bill run before the month's first payment, the usual order, has none to look at)
    IF EXISTS (SELECT 1 FROM fee_payments p WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL) THEN
        PERFORM fee_months_add(jsonb_agg(g)) FROM (
            SELECT c.district_code, h.building_code, c.period, 0 AS bills, 0 AS billed, 0 AS paid,
                   sum(c.sign * ((o.own >= c.amount)::integer - (c.amount <= 0)::integer)) AS bills_paid,
                   sum(c.sign * least(o.own, c.amount)) AS paid_capped, 0 AS total_paid, 0 AS total_households
            FROM (SELECT district_code, household_id, period, amount, -1 AS sign FROM old_rows) c
            JOIN (SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
                  WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL GROUP BY 1, 2) o
              ON o.household_id = c.household_id AND o.period = c.period
            JOIN households h ON h.id = c.household_id
            GROUP BY 1, 2, 3
        ) g HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fee_bills_months_upd() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta jsonb;
    missing bigint;
    periods date[];
BEGIN
    SELECT jsonb_agg(g), sum(g.missing), array_agg(DISTINCT g.period) INTO delta, missing, periods FROM (
        SELECT c.district_code, h.building_code, c.period, sum(c.sign)::integer AS bills,
               sum(c.sign * c.amount) AS billed, 0 AS paid,
               coalesce(sum(c.sign) FILTER (WHERE c.amount <= 0), 0) AS bills_paid, 0 AS paid_capped,
               0 AS total_paid, 0 AS total_households, count(*) FILTER (WHERE h.id IS NULL) AS missing
        FROM (SELECT district_code, household_id, period, amount, 1 AS sign FROM new_rows
              UNION ALL SELECT district_code, household_id, period, amount, -1 AS sign FROM old_rows) c LEFT JOIN households h ON h.id = c.household_id GROUP BY 1, 2, 3) g;
    IF missing > 0 THEN
        RAISE EXCEPTION 'fee_bills names % households that do not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM fee_months_lock(delta);
    PERFORM fee_months_add(delta);
    -- bills whose household has paid for the month already (after the lock: committed payments; a
    -- bill run before the month's first payment, the usual order, has none to look at)
    IF EXISTS (SELECT 1 FROM fee_payments p WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL) THEN
        PERFORM fee_months_add(jsonb_agg(g)) FROM (
            SELECT c.district_code, h.building_code, c.period, 0 AS bills, 0 AS billed, 0 AS paid,
                   sum(c.sign * ((o.own >= c.amount)::integer - (c.amount <= 0)::integer)) AS bills_paid,
                   sum(c.sign * least(o.own, c.amount)) AS paid_capped, 0 AS total_paid, 0 AS total_households
            FROM (SELECT district_code, household_id, period, amount, 1 AS sign FROM new_rows
                  UNION ALL SELECT district_code, household_id, period, amount, -1 AS sign FROM old_rows) c
            JOIN (SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
                  WHERE p.period = ANY(periods) AND p.household_id IS NOT NULL GROUP BY 1, 2) o
              ON o.household_id = c.household_id AND o.period = c.period
            JOIN households h ON h.id = c.household_id
            GROUP BY 1, 2, 3
        ) g HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END;
$$;

-- payments: sign +1 for new rows, -1 for old rows. Own payments change their bill's share by
-- share(sum now) - share(sum before), the sum before being the sum now less this statement's net change
-- (read after the lock); one row per building and month goes to fee_months_add (a bulk insert of two
-- million payments makes two thousand rows, not two million).
CREATE OR REPLACE FUNCTION fee_payments_months_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_lock(jsonb_agg(k)) FROM (
        SELECT DISTINCT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period
        FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, 1 AS sign FROM new_rows) c
        LEFT JOIN households h ON h.id = c.household_id) k HAVING count(*) > 0;
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        WITH c AS MATERIALIZED (
            SELECT c.district_code, c.household_id, coalesce(c.building_code, h.building_code) AS building_code,
                   c.households_paid, c.period, c.amount, c.sign
            FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, 1 AS sign FROM new_rows) c
            LEFT JOIN households h ON h.id = c.household_id),
        n AS MATERIALIZED (
            SELECT district_code, building_code, household_id, period, sum(sign * amount) AS net FROM c
            WHERE household_id IS NOT NULL GROUP BY 1, 2, 3, 4),
        own AS (
            SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
            JOIN n ON n.household_id = p.household_id AND n.period = p.period GROUP BY 1, 2)
        SELECT district_code, building_code, period, 0 AS bills, 0 AS billed, sum(paid) AS paid,
               sum(bills_paid) AS bills_paid, sum(paid_capped) AS paid_capped, sum(total_paid) AS total_paid,
               sum(total_households) AS total_households
        FROM (
            SELECT district_code, building_code, period, sign * amount AS paid, 0 AS bills_paid, 0 AS paid_capped,
                   CASE WHEN household_id IS NULL THEN sign * amount ELSE 0 END AS total_paid,
                   CASE WHEN household_id IS NULL THEN sign * coalesce(households_paid, 0) ELSE 0 END
                       AS total_households
            FROM c
            UNION ALL
            SELECT n.district_code, n.building_code, n.period, 0,
                   (coalesce(o.own, 0) >= f.amount)::integer - (coalesce(o.own, 0) - n.net >= f.amount)::integer,
                   least(coalesce(o.own, 0), f.amount) - least(coalesce(o.own, 0) - n.net, f.amount), 0, 0
            FROM n JOIN fee_bills f ON f.household_id = n.household_id AND f.period = n.period
            LEFT JOIN own o ON o.household_id = n.household_id AND o.period = n.period
        ) d GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fee_payments_months_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_lock(jsonb_agg(k)) FROM (
        SELECT DISTINCT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period
        FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, -1 AS sign FROM old_rows) c
        LEFT JOIN households h ON h.id = c.household_id) k HAVING count(*) > 0;
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        WITH c AS MATERIALIZED (
            SELECT c.district_code, c.household_id, coalesce(c.building_code, h.building_code) AS building_code,
                   c.households_paid, c.period, c.amount, c.sign
            FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, -1 AS sign FROM old_rows) c
            LEFT JOIN households h ON h.id = c.household_id),
        n AS MATERIALIZED (
            SELECT district_code, building_code, household_id, period, sum(sign * amount) AS net FROM c
            WHERE household_id IS NOT NULL GROUP BY 1, 2, 3, 4),
        own AS (
            SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
            JOIN n ON n.household_id = p.household_id AND n.period = p.period GROUP BY 1, 2)
        SELECT district_code, building_code, period, 0 AS bills, 0 AS billed, sum(paid) AS paid,
               sum(bills_paid) AS bills_paid, sum(paid_capped) AS paid_capped, sum(total_paid) AS total_paid,
               sum(total_households) AS total_households
        FROM (
            SELECT district_code, building_code, period, sign * amount AS paid, 0 AS bills_paid, 0 AS paid_capped,
                   CASE WHEN household_id IS NULL THEN sign * amount ELSE 0 END AS total_paid,
                   CASE WHEN household_id IS NULL THEN sign * coalesce(households_paid, 0) ELSE 0 END
                       AS total_households
            FROM c
            UNION ALL
            SELECT n.district_code, n.building_code, n.period, 0,
                   (coalesce(o.own, 0) >= f.amount)::integer - (coalesce(o.own, 0) - n.net >= f.amount)::integer,
                   least(coalesce(o.own, 0), f.amount) - least(coalesce(o.own, 0) - n.net, f.amount), 0, 0
            FROM n JOIN fee_bills f ON f.household_id = n.household_id AND f.period = n.period
            LEFT JOIN own o ON o.household_id = n.household_id AND o.period = n.period
        ) d GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION fee_payments_months_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fee_months_lock(jsonb_agg(k)) FROM (
        SELECT DISTINCT c.district_code, coalesce(c.building_code, h.building_code) AS building_code, c.period
        FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, 1 AS sign FROM new_rows
                  UNION ALL SELECT district_code, household_id, building_code, households_paid, period, amount, -1 AS sign FROM old_rows) c
        LEFT JOIN households h ON h.id = c.household_id) k HAVING count(*) > 0;
    PERFORM fee_months_add(jsonb_agg(g)) FROM (
        WITH c AS MATERIALIZED (
            SELECT c.district_code, c.household_id, coalesce(c.building_code, h.building_code) AS building_code,
                   c.households_paid, c.period, c.amount, c.sign
            FROM (SELECT district_code, household_id, building_code, households_paid, period, amount, 1 AS sign FROM new_rows
                  UNION ALL SELECT district_code, household_id, building_code, households_paid, period, amount, -1 AS sign FROM old_rows) c
            LEFT JOIN households h ON h.id = c.household_id),
        n AS MATERIALIZED (
            SELECT district_code, building_code, household_id, period, sum(sign * amount) AS net FROM c
            WHERE household_id IS NOT NULL GROUP BY 1, 2, 3, 4),
        own AS (
            SELECT p.household_id, p.period, sum(p.amount) AS own FROM fee_payments p
            JOIN n ON n.household_id = p.household_id AND n.period = p.period GROUP BY 1, 2)
        SELECT district_code, building_code, period, 0 AS bills, 0 AS billed, sum(paid) AS paid,
               sum(bills_paid) AS bills_paid, sum(paid_capped) AS paid_capped, sum(total_paid) AS total_paid,
               sum(total_households) AS total_households
        FROM (
            SELECT district_code, building_code, period, sign * amount AS paid, 0 AS bills_paid, 0 AS paid_capped,
                   CASE WHEN household_id IS NULL THEN sign * amount ELSE 0 END AS total_paid,
                   CASE WHEN household_id IS NULL THEN sign * coalesce(households_paid, 0) ELSE 0 END
                       AS total_households
            FROM c
            UNION ALL
            SELECT n.district_code, n.building_code, n.period, 0,
                   (coalesce(o.own, 0) >= f.amount)::integer - (coalesce(o.own, 0) - n.net >= f.amount)::integer,
                   least(coalesce(o.own, 0), f.amount) - least(coalesce(o.own, 0) - n.net, f.amount), 0, 0
            FROM n JOIN fee_bills f ON f.household_id = n.household_id AND f.period = n.period
            LEFT JOIN own o ON o.household_id = n.household_id AND o.period = n.period
        ) d GROUP BY 1, 2, 3
    ) g HAVING count(*) > 0;
    RETURN NULL;
END;
$$;

-- what is there already: the new columns from the bills and payments themselves
UPDATE fee_building_months SET bills_paid = 0, paid_capped = 0, total_paid = 0, total_households = 0;
INSERT INTO fee_building_months AS m (district_code, building_code, period, bills_paid, paid_capped, total_paid,
                                      total_households)
SELECT district_code, building_code, period, sum(bp), sum(pc), sum(tp), sum(th) FROM (
    SELECT f.district_code, h.building_code, f.period, count(*) FILTER (WHERE coalesce(o.own, 0) >= f.amount) AS bp,
           sum(least(coalesce(o.own, 0), f.amount)) AS pc, 0 AS tp, 0 AS th
    FROM fee_bills f JOIN households h ON h.id = f.household_id
    LEFT JOIN (SELECT household_id, period, sum(amount) AS own FROM fee_payments WHERE household_id IS NOT NULL
               GROUP BY 1, 2) o ON o.household_id = f.household_id AND o.period = f.period
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT p.district_code, p.building_code, p.period, 0, 0, sum(p.amount), sum(coalesce(p.households_paid, 0))
    FROM fee_payments p WHERE p.building_code IS NOT NULL GROUP BY 1, 2, 3
) s GROUP BY 1, 2, 3
ON CONFLICT (district_code, building_code, period) DO UPDATE
SET bills_paid = EXCLUDED.bills_paid, paid_capped = EXCLUDED.paid_capped, total_paid = EXCLUDED.total_paid,
    total_households = EXCLUDED.total_households;

-- Bills and payments name their household (and bills their standard) by id. As foreign keys these were
-- checked row by row (a trigger call per bill: 188,000 for a month of 94,000 bills, most of a bill run's
-- time); checked here per statement instead, over the rows it wrote, with the same guarantee: a write
-- naming a missing row fails (SQLSTATE 23503 as before), and deleting a household or a standard that a
-- bill or payment names fails. The delete side takes SHARE on fee_bills and fee_payments first, so it
-- waits for bill runs and imports under way and sees their rows (the rare operation pays, not the run).
ALTER TABLE fee_bills DROP CONSTRAINT fee_bills_household_id_fkey;
ALTER TABLE fee_bills DROP CONSTRAINT fee_bills_standard_id_fkey;
ALTER TABLE fee_payments DROP CONSTRAINT fee_payments_household_id_fkey;

CREATE FUNCTION fee_bills_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    -- (households: checked by the fee_building_months triggers, which join them anyway)
    SELECT n.standard_id INTO missing FROM (SELECT DISTINCT standard_id FROM new_rows) n
    WHERE NOT EXISTS (SELECT 1 FROM fee_standards s WHERE s.id = n.standard_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'fee_bills names fee standard % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_payments_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT n.household_id INTO missing FROM new_rows n
    WHERE n.household_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM households h WHERE h.id = n.household_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'fee_payments names household % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION households_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN
    LOCK TABLE fee_bills, fee_payments IN SHARE MODE;
    SELECT o.id INTO named FROM old_rows o
    WHERE EXISTS (SELECT 1 FROM fee_bills f WHERE f.household_id = o.id)
       OR EXISTS (SELECT 1 FROM fee_payments p WHERE p.household_id = o.id) LIMIT 1;
    IF named IS NOT NULL THEN
        RAISE EXCEPTION 'household % has bills or payments', named USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION fee_standards_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN
    LOCK TABLE fee_bills IN SHARE MODE;
    SELECT o.id INTO named FROM old_rows o WHERE EXISTS (SELECT 1 FROM fee_bills f WHERE f.standard_id = o.id) LIMIT 1;
    IF named IS NOT NULL THEN
        RAISE EXCEPTION 'fee standard % has bills', named USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

-- named to fire before the *_months_* triggers (statement triggers fire in name order): a missing household
-- is the error, not the sums' missing building
CREATE TRIGGER fee_bills_check_ins AFTER INSERT ON fee_bills REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_bills_refs();
CREATE TRIGGER fee_bills_check_upd AFTER UPDATE ON fee_bills REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_bills_refs();
CREATE TRIGGER fee_payments_check_ins AFTER INSERT ON fee_payments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_payments_refs();
CREATE TRIGGER fee_payments_check_upd AFTER UPDATE ON fee_payments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_payments_refs();
CREATE TRIGGER households_refs_del AFTER DELETE ON households REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION households_refs();
CREATE TRIGGER fee_standards_refs_del AFTER DELETE ON fee_standards REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fee_standards_refs();

-- Bills by month were read by the collection rates, which now read fee_building_months; no read path
-- asks for a month's bills by (district, period) any more, and each bill run paid for the index.
DROP INDEX fee_bills_period_idx;

-- The arrears list of the fees pages (issue 21 point 6) gives the property team a number to call: the
-- household's contact phone from the register, shown masked as the guarded rules say (138****0000).
ALTER TABLE households ADD COLUMN phone text CHECK (char_length(phone) <= 40);
