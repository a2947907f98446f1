-- The BRIN index on the start only where the rows lie in time order (issue 13). A BRIN index keeps the smallest
-- and largest start of every 128 pages: tight where rows were written in time order (live feeds, backfills
-- hour by hour), useless where a file came station by station (every block range then spans the whole month,
-- docs/dashboards.md), and there it cost a full scan of each fresh month at the end of a first load: 0.1 s of
-- the bench's 1M-row load, ~1 s of its 10M, on the one core the load's connection has for its index builds.
-- The index becomes one per partition instead of one on observations (whose every partition must have it):
-- partitions that live loads make get it (ensure_observation_partition), fresh tables get it when the load's
-- rows came in time order (index_fresh_partition's time_index), the partitions there are keep theirs.

DO $$
DECLARE
    part record;
BEGIN
    DROP INDEX datenwerk.observations_time_brin;
    FOR part IN SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'datenwerk.observations'::regclass LOOP
        EXECUTE format('CREATE INDEX %I ON datenwerk.%I USING brin (phenomenon_start)', part.name || '_time_brin', part.name);
    END LOOP;
END $$;

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
            EXECUTE format('CREATE INDEX %I ON datenwerk.%I USING brin (phenomenon_start)', name || '_time_brin', name);
            EXECUTE format('ALTER TABLE datenwerk.observations ATTACH PARTITION datenwerk.%I FOR VALUES FROM (%L) TO (%L)',
                           name, month_start, month_start + interval '1 month');
        END IF;
    END IF;
    RETURN name;
END $$;

-- A fresh table gets the indexes of observations' partitions: the primary key, and the BRIN index on the start
-- when `time_index` (the load's rows came in time order).
DROP FUNCTION datenwerk.index_fresh_partition(text);
CREATE FUNCTION datenwerk.index_fresh_partition(name text, time_index boolean DEFAULT true) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indrelid = ('datenwerk.' || quote_ident(name))::regclass AND indisprimary) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE datenwerk.%I ADD PRIMARY KEY (station_id, property, phenomenon_start)', name);
    IF time_index THEN
        EXECUTE format('CREATE INDEX %I ON datenwerk.%I USING brin (phenomenon_start)', name || '_time_brin', name);
    END IF;
    RETURN true;
END $$;

-- The fresh tables not indexed yet get their indexes here (`time_index`: see index_fresh_partition).
DROP FUNCTION datenwerk.attach_fresh_partitions(text);
CREATE FUNCTION datenwerk.attach_fresh_partitions(parent text, time_index boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    attached integer := 0;
BEGIN
    IF to_regclass('datenwerk.' || quote_ident(parent)) IS NULL THEN RETURN 0; END IF;
    FOR part IN SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = ('datenwerk.' || quote_ident(parent))::regclass ORDER BY 1 LOOP
        PERFORM datenwerk.index_fresh_partition(part.name, time_index);
        EXECUTE format('ALTER TABLE datenwerk.%I DETACH PARTITION datenwerk.%I', parent, part.name);
        EXECUTE format('ALTER TABLE datenwerk.observations ATTACH PARTITION datenwerk.%I %s', part.name, part.bound);
        EXECUTE format('ALTER TABLE datenwerk.%I DROP CONSTRAINT %I', part.name, part.name || '_fresh');
        attached := attached + 1;
    END LOOP;
    EXECUTE format('DROP TABLE datenwerk.%I', parent);
    RETURN attached;
END $$;
