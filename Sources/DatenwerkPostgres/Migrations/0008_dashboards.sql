-- Dashboard SQL (issue 14): a stable, documented API in schema `datenwerk_api` (docs/dashboards.md), over three
-- tables the loader keeps current in each run's own transaction, for the series, hours and days the run touched
-- (never a full refresh; `datenwerk db refresh-aggregates` rebuilds them after hand-made SQL changes).
--
-- * `series`: one row per (station, property) with its first and latest observation — "latest value of every
--   station" reads a few thousand rows, not the observations.
-- * `observations_hourly`: count, sum, min and max per series and UTC hour, ONLY for series that have
--   observations off the full hour (sub-hourly data). A series whose every start is on a full UTC hour
--   (`series.hourly_raw`: hourly, daily or monthly data) is its own hourly aggregate; `datenwerk_api.hourly`
--   reads its observations directly, so a load of hourly data writes no second copy of every row.
-- * `observations_daily`: the same per series and calendar day in Europe/Berlin (the municipalities' day).

CREATE TABLE datenwerk.series (
    station_id    bigint NOT NULL,
    property      text COLLATE "C" NOT NULL,
    first_start   timestamptz NOT NULL,
    last_start    timestamptz NOT NULL,
    last_end      timestamptz,
    last_result   double precision NOT NULL,
    last_quality  text,
    hourly_raw    boolean NOT NULL,          -- every phenomenon_start is on a full UTC hour
    PRIMARY KEY (station_id, property)
);

CREATE TABLE datenwerk.observations_hourly (
    station_id  bigint NOT NULL,
    property    text COLLATE "C" NOT NULL,
    hour        timestamptz NOT NULL,        -- start of the UTC hour
    n           integer NOT NULL,
    total       double precision NOT NULL,
    minimum     double precision NOT NULL,
    maximum     double precision NOT NULL,
    PRIMARY KEY (station_id, property, hour)
);

CREATE TABLE datenwerk.observations_daily (
    station_id  bigint NOT NULL,
    property    text COLLATE "C" NOT NULL,
    day         date NOT NULL,               -- calendar day in Europe/Berlin
    n           integer NOT NULL,
    total       double precision NOT NULL,
    minimum     double precision NOT NULL,
    maximum     double precision NOT NULL,
    PRIMARY KEY (station_id, property, day)
);

-- Rebuilds all three from `observations` (the migration's backfill; `datenwerk db refresh-aggregates`).
CREATE FUNCTION datenwerk.refresh_aggregates() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE datenwerk.series, datenwerk.observations_hourly, datenwerk.observations_daily;
    INSERT INTO datenwerk.series (station_id, property, first_start, last_start, last_end, last_result, last_quality, hourly_raw)
    SELECT l.station_id, l.property, a.first_start, l.phenomenon_start, l.phenomenon_end, l.result, l.quality, a.hourly_raw
    FROM (SELECT DISTINCT ON (station_id, property) station_id, property, phenomenon_start, phenomenon_end, result, quality
          FROM datenwerk.observations ORDER BY station_id, property, phenomenon_start DESC) l
    JOIN (SELECT station_id, property, min(phenomenon_start) AS first_start,
                 bool_and(date_trunc('hour', phenomenon_start, 'UTC') = phenomenon_start) AS hourly_raw
          FROM datenwerk.observations GROUP BY station_id, property) a
      ON a.station_id = l.station_id AND a.property = l.property;
    INSERT INTO datenwerk.observations_hourly (station_id, property, hour, n, total, minimum, maximum)
    SELECT o.station_id, o.property, date_trunc('hour', o.phenomenon_start, 'UTC'), count(*), sum(o.result), min(o.result), max(o.result)
    FROM datenwerk.observations o
    JOIN datenwerk.series s ON s.station_id = o.station_id AND s.property = o.property AND NOT s.hourly_raw
    GROUP BY 1, 2, 3;
    INSERT INTO datenwerk.observations_daily (station_id, property, day, n, total, minimum, maximum)
    SELECT station_id, property, (phenomenon_start AT TIME ZONE 'Europe/Berlin')::date, count(*), sum(result), min(result), max(result)
    FROM datenwerk.observations
    GROUP BY 1, 2, 3;
$$;

SELECT datenwerk.refresh_aggregates();

CREATE SCHEMA IF NOT EXISTS datenwerk_api;
COMMENT ON SCHEMA datenwerk_api IS 'Datenwerk dashboard API: stable views for Grafana, Superset, QGIS (docs/dashboards.md)';

-- Latest value per station and property.
CREATE VIEW datenwerk_api.latest AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name, st.geom,
       ST_X(ST_PointOnSurface(st.geom)) AS longitude, ST_Y(ST_PointOnSurface(st.geom)) AS latitude,
       s.property, p.unit, p.label_de, p.label_en,
       s.last_start AS phenomenon_start, s.last_end AS phenomenon_end, s.last_result AS result, s.last_quality AS quality,
       now() - coalesce(s.last_end, s.last_start) AS age,
       extract(epoch FROM now() - coalesce(s.last_end, s.last_start))::double precision AS age_seconds
FROM datenwerk.series s
JOIN datenwerk.stations st ON st.id = s.station_id
JOIN datenwerk.observed_properties p ON p.key = s.property;

-- Observations with their station and unit (raw; filter by time, they are many). Joined through `series`, so a
-- filter on stations (a bbox, keys) becomes one primary-key range scan per series over the time range, e.g. all
-- stations in a bbox over the last 24 hours: 6 ms at 10M rows (docs/dashboards.md), whatever the rows' physical
-- order (the BRIN on time only helps where rows were written in time order).
CREATE VIEW datenwerk_api.observations AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name, st.geom,
       o.property, p.unit, o.phenomenon_start, o.phenomenon_end, o.result, o.quality
FROM datenwerk.series s
JOIN datenwerk.stations st ON st.id = s.station_id
JOIN datenwerk.observations o ON o.station_id = s.station_id AND o.property = s.property
JOIN datenwerk.observed_properties p ON p.key = s.property;

-- Hourly aggregates per series (UTC hours). `sum` only for counts (properties per interval), NULL otherwise.
CREATE VIEW datenwerk_api.hourly AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name,
       b.property, p.unit, b.hour, b.n, b.avg, b.min, b.max, CASE WHEN p.per_interval THEN b.total END AS sum, p.per_interval
FROM (
    SELECT station_id, property, hour, n, total / n AS avg, minimum AS min, maximum AS max, total
    FROM datenwerk.observations_hourly
    UNION ALL
    SELECT o.station_id, o.property, o.phenomenon_start, 1, o.result, o.result, o.result, o.result
    FROM datenwerk.observations o
    JOIN datenwerk.series s ON s.station_id = o.station_id AND s.property = o.property AND s.hourly_raw
) b
JOIN datenwerk.stations st ON st.id = b.station_id
JOIN datenwerk.observed_properties p ON p.key = b.property;

-- Daily aggregates per series (calendar days in Europe/Berlin).
CREATE VIEW datenwerk_api.daily AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name,
       d.property, p.unit, d.day, d.n, d.total / d.n AS avg, d.minimum AS min, d.maximum AS max,
       CASE WHEN p.per_interval THEN d.total END AS sum, p.per_interval
FROM datenwerk.observations_daily d
JOIN datenwerk.stations st ON st.id = d.station_id
JOIN datenwerk.observed_properties p ON p.key = d.property;

-- Stations with the properties they measure and their first and latest time.
CREATE VIEW datenwerk_api.stations AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name, st.kind, st.geom,
       ST_X(ST_PointOnSurface(st.geom)) AS longitude, ST_Y(ST_PointOnSurface(st.geom)) AS latitude, st.altitude,
       coalesce(array_agg(s.property ORDER BY s.property) FILTER (WHERE s.property IS NOT NULL), '{}') AS properties,
       min(s.first_start) AS first_time, max(s.last_start) AS last_time
FROM datenwerk.stations st
LEFT JOIN datenwerk.series s ON s.station_id = st.id
GROUP BY st.id;

-- The observed properties: key, canonical UCUM unit, labels, whether values are counts per interval (sum them).
CREATE VIEW datenwerk_api.properties AS
SELECT key AS property, unit, label_de, label_en, per_interval, range_min, range_max
FROM datenwerk.observed_properties;

-- The run history (for charts of loads, failures and quarantine over time).
CREATE VIEW datenwerk_api.runs AS
SELECT id AS run_id, pipeline, tenant, trigger, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds,
       records_read, loaded, inserted, updated, quarantined, skipped, bytes, error_step, error
FROM datenwerk.runs;

-- Per pipeline: the last run, the last success and failure, the last 24 hours, open quarantine, the schedule.
CREATE VIEW datenwerk_api.pipelines_health AS
SELECT p.pipeline,
       last.id AS last_run_id, last.status AS last_status, last.started_at AS last_started_at,
       last.finished_at AS last_finished_at, last.error_step AS last_error_step, last.error AS last_error,
       ok.finished_at AS last_success_at, bad.finished_at AS last_failure_at,
       extract(epoch FROM now() - ok.finished_at)::double precision AS seconds_since_success,
       day.runs AS runs_24h, day.failures AS failures_24h, day.loaded AS loaded_24h, day.quarantined AS quarantined_24h,
       q.open AS quarantine_open, q.new_24h AS quarantine_new_24h,
       sch.expression AS schedule, sch.next_fire
FROM (SELECT pipeline FROM datenwerk.runs UNION SELECT pipeline FROM datenwerk.schedules) p
LEFT JOIN LATERAL (SELECT * FROM datenwerk.runs r WHERE r.pipeline = p.pipeline ORDER BY r.started_at DESC, r.id DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (SELECT r.finished_at FROM datenwerk.runs r WHERE r.pipeline = p.pipeline AND r.status = 'succeeded'
                   ORDER BY r.started_at DESC LIMIT 1) ok ON true
LEFT JOIN LATERAL (SELECT r.finished_at FROM datenwerk.runs r WHERE r.pipeline = p.pipeline AND r.status = 'failed'
                   ORDER BY r.started_at DESC LIMIT 1) bad ON true
LEFT JOIN LATERAL (SELECT count(*) AS runs, count(*) FILTER (WHERE r.status = 'failed') AS failures,
                          coalesce(sum(r.loaded), 0)::bigint AS loaded, coalesce(sum(r.quarantined), 0)::bigint AS quarantined
                   FROM datenwerk.runs r WHERE r.pipeline = p.pipeline AND r.started_at > now() - interval '24 hours') day ON true
LEFT JOIN LATERAL (SELECT count(*) AS open, count(*) FILTER (WHERE qq.first_seen > now() - interval '24 hours') AS new_24h
                   FROM datenwerk.quarantine qq WHERE qq.pipeline = p.pipeline) q ON true
LEFT JOIN datenwerk.schedules sch ON sch.pipeline = p.pipeline;

-- Sets a login role's password without the password ever being part of a statement's text (bind parameter).
CREATE FUNCTION datenwerk.set_role_password(role_name text, password text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, password);
END $$;

-- Readers (`datenwerk db grant-reader NAME`) get this role: the API schema only, nothing of `datenwerk`.
-- A database user without CREATEROLE still migrates; `grant-reader` then says what is missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'datenwerk_api_reader') THEN
        CREATE ROLE datenwerk_api_reader NOLOGIN;
    END IF;
    GRANT USAGE ON SCHEMA datenwerk_api TO datenwerk_api_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA datenwerk_api TO datenwerk_api_reader;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'role datenwerk_api_reader not created (no CREATEROLE): %', SQLERRM;
END $$;
