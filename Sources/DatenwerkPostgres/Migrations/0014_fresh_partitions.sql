-- Fresh partitions (issue 13). A first load of a month that has no partition yet does not copy its rows into an
-- indexed partition: it fills a table of its own transaction without indexes, builds the indexes once at the end
-- and attaches the table then (PostgresObservationSink.beginFresh / attachFresh). Measured with psql on the
-- bench's 1M rows in 7 months: COPY into the indexed partitions 1.84 s; COPY into fresh tables 0.62 s, their
-- indexes and ATTACH 0.45 s. Nothing is visible to anyone else before the load commits; a load that fails or
-- gives way leaves nothing behind (the tables are rolled back with it).

-- One month's advisory lock: held by a load filling that month's fresh table until it commits, and taken by
-- ensure_observation_partition before it creates the partition (so it waits for that load instead of failing on
-- the name).
CREATE FUNCTION datenwerk.observation_partition_lock(name text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('datenwerk.partition ' || name, 0) $$;

CREATE FUNCTION datenwerk.observation_partition_name(month_start timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('observations_y%sm%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY'), to_char(month_start AT TIME ZONE 'UTC', 'MM'))
$$;

CREATE OR REPLACE FUNCTION datenwerk.ensure_observation_partition(t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := datenwerk.observation_partition_name(month_start);
BEGIN
    IF to_regclass('datenwerk.' || name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(datenwerk.observation_partition_lock(name));
        PERFORM pg_advisory_xact_lock(hashtext('datenwerk.partitions'));
        IF to_regclass('datenwerk.' || name) IS NULL THEN
            EXECUTE format('CREATE TABLE datenwerk.%I (LIKE datenwerk.observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', name);
            EXECUTE format('ALTER TABLE datenwerk.observations ATTACH PARTITION datenwerk.%I FOR VALUES FROM (%L) TO (%L)',
                           name, month_start, month_start + interval '1 month');
        END IF;
    END IF;
    RETURN name;
END $$;

-- The month of t gets a fresh table, a partition of the load's own parent `parent` (made here the first time; one
-- COPY routes the rows of every fresh month), checked to its month so that ATTACH need not scan it. Answers
-- 'fresh', 'exists' (the month has a partition: its rows go into observations) or 'busy' (another load is
-- filling it: never waited for here).
CREATE FUNCTION datenwerk.begin_fresh_partition(parent text, t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month_end timestamptz := month_start + interval '1 month';
    name text := datenwerk.observation_partition_name(month_start);
BEGIN
    IF to_regclass('datenwerk.' || name) IS NOT NULL THEN RETURN 'exists'; END IF;
    IF NOT pg_try_advisory_xact_lock(datenwerk.observation_partition_lock(name)) THEN RETURN 'busy'; END IF;
    IF to_regclass('datenwerk.' || name) IS NOT NULL THEN RETURN 'exists'; END IF;
    IF to_regclass('datenwerk.' || quote_ident(parent)) IS NULL THEN
        EXECUTE format('CREATE TABLE datenwerk.%I (LIKE datenwerk.observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (phenomenon_start)', parent);
    END IF;
    EXECUTE format('CREATE TABLE datenwerk.%I PARTITION OF datenwerk.%I FOR VALUES FROM (%L) TO (%L)', name, parent, month_start, month_end);
    EXECUTE format('ALTER TABLE datenwerk.%I ADD CONSTRAINT %I CHECK (phenomenon_start >= %L AND phenomenon_start < %L)',
                   name, name || '_fresh', month_start, month_end);
    RETURN 'fresh';
END $$;

-- A fresh table gets the indexes of observations' partitions, built once over the rows it has (a repeated key
-- fails here with 23505). A month the load has left (its rows came in time order) is indexed while the load goes
-- on into the next one; rows that still come for it are then inserted into its indexes as into any partition.
CREATE FUNCTION datenwerk.index_fresh_partition(name text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indrelid = ('datenwerk.' || quote_ident(name))::regclass AND indisprimary) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE datenwerk.%I ADD PRIMARY KEY (station_id, property, phenomenon_start)', name);
    EXECUTE format('CREATE INDEX ON datenwerk.%I USING brin (phenomenon_start)', name);
    RETURN true;
END $$;

-- Rows came back to a month indexed ahead (the file was not in time order after all): its indexes go again, so the
-- rest of its rows are not inserted into them one by one; attach_fresh_partitions builds them at the end.
CREATE FUNCTION datenwerk.unindex_fresh_partition(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT conname FROM pg_constraint WHERE conrelid = ('datenwerk.' || quote_ident(name))::regclass AND contype = 'p' LOOP
        EXECUTE format('ALTER TABLE datenwerk.%I DROP CONSTRAINT %I', name, item.conname);
    END LOOP;
    FOR item IN SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = ('datenwerk.' || quote_ident(name))::regclass LOOP
        EXECUTE 'DROP INDEX ' || item.index;
    END LOOP;
END $$;

-- The load's fresh tables, indexed, become partitions of observations; the load's parent is dropped. ATTACH takes
-- SHARE UPDATE EXCLUSIVE on observations (readers and loads writing rows go on) and would build any index of
-- observations that a later migration adds and index_fresh_partition does not (FreshPartitionTests compares the
-- index lists).
CREATE FUNCTION datenwerk.attach_fresh_partitions(parent text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    attached integer := 0;
BEGIN
    IF to_regclass('datenwerk.' || quote_ident(parent)) IS NULL THEN RETURN 0; END IF;
    FOR part IN SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = ('datenwerk.' || quote_ident(parent))::regclass ORDER BY 1 LOOP
        PERFORM datenwerk.index_fresh_partition(part.name);
        EXECUTE format('ALTER TABLE datenwerk.%I DETACH PARTITION datenwerk.%I', parent, part.name);
        EXECUTE format('ALTER TABLE datenwerk.observations ATTACH PARTITION datenwerk.%I %s', part.name, part.bound);
        EXECUTE format('ALTER TABLE datenwerk.%I DROP CONSTRAINT %I', part.name, part.name || '_fresh');
        attached := attached + 1;
    END LOOP;
    EXECUTE format('DROP TABLE datenwerk.%I', parent);
    RETURN attached;
END $$;
