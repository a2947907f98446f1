-- The privacy gate (issue 16, docs/privacy.md): a dataset may declare `min_count: N` (counts of people —
-- pedestrians, Wi-Fi devices, cyclists). A published value that is not 0 and below N is suppressed, and so is
-- every aggregate computed from such a value (avg, min, max and sum of an hour or day that contains one): an
-- aggregate is published only when every value it is computed from is 0 or at least N. `n` (how many
-- observations a bucket has) is a count of measurements, not of people, and stays.
--
-- * `dataset_privacy`: one row per pipeline whose dataset declares `min_count`, written by every load from the
--   pipeline's spec (`datenwerk.record_privacy`, called in the load's transaction); a pipeline whose spec no
--   longer declares it has its row (and its series) removed by its next load.
-- * `private_series`: the series (station, property) such a pipeline wrote — marked by each load for the rows
--   it wrote, and for all the pipeline's rows when its `min_count` is new.
-- * The `datenwerk_api` views `latest`, `observations`, `hourly` and `daily` keep their columns (a suppressed
--   value is NULL) and gain a last column `suppressed`.

CREATE TABLE datenwerk.dataset_privacy (
    pipeline    text PRIMARY KEY,
    dataset     text NOT NULL,
    min_count   integer NOT NULL CHECK (min_count > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE datenwerk.private_series (
    station_id  bigint NOT NULL,
    property    text COLLATE "C" NOT NULL,
    pipeline    text NOT NULL,
    PRIMARY KEY (station_id, property, pipeline)
);
CREATE INDEX private_series_pipeline_idx ON datenwerk.private_series (pipeline);

-- The gate of each private series (the largest when two private pipelines write the same series).
CREATE VIEW datenwerk.series_min_count AS
SELECT ps.station_id, ps.property, max(dp.min_count) AS min_count
FROM datenwerk.private_series ps
JOIN datenwerk.dataset_privacy dp ON dp.pipeline = ps.pipeline
GROUP BY ps.station_id, ps.property;

-- True when `v` may not be published under `min_count` (NULL: no gate): not 0 and below it.
CREATE FUNCTION datenwerk.below_min_count(v double precision, min_count integer) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(min_count IS NOT NULL AND v <> 0 AND v < min_count, false)
$$;

-- The views below spell the gate out instead of calling these functions: a function in a view runs with the
-- reader's rights (`datenwerk_api_reader` has none on schema `datenwerk`), a view's own expressions with its
-- owner's. A bucket (hour, day) is checked from its stored minimum and maximum alone unless the minimum is 0 and
-- the maximum is not: then its rows are looked up (one primary-key range scan of the series over the bucket).

-- Written by every load (in its transaction) from its pipeline's spec: the gate (NULL: none, the pipeline's
-- rows are removed) and the series the run wrote (its rows: run_id = run, starts from_time … to_time).
-- When the gate is new for a pipeline that loaded before, every series of its runs is marked (once; that reads
-- `observations` whole, as there is no index on run_id).
CREATE FUNCTION datenwerk.record_privacy(
    p_pipeline text, p_dataset text, p_min_count integer, p_run bigint, from_time timestamptz, to_time timestamptz
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    known boolean;
BEGIN
    IF p_min_count IS NULL THEN
        DELETE FROM datenwerk.dataset_privacy WHERE pipeline = p_pipeline;
        DELETE FROM datenwerk.private_series WHERE pipeline = p_pipeline;
        RETURN;
    END IF;
    SELECT true INTO known FROM datenwerk.dataset_privacy WHERE pipeline = p_pipeline;
    INSERT INTO datenwerk.dataset_privacy (pipeline, dataset, min_count) VALUES (p_pipeline, p_dataset, p_min_count)
    ON CONFLICT (pipeline) DO UPDATE SET dataset = EXCLUDED.dataset, min_count = EXCLUDED.min_count, updated_at = now()
    WHERE (datenwerk.dataset_privacy.dataset, datenwerk.dataset_privacy.min_count) IS DISTINCT FROM (EXCLUDED.dataset, EXCLUDED.min_count);
    IF known IS NULL AND EXISTS (SELECT 1 FROM datenwerk.runs WHERE pipeline = p_pipeline AND id <> p_run AND status = 'succeeded') THEN
        -- The gate is new for a pipeline that loaded before: all its rows (one read of `observations`, once).
        INSERT INTO datenwerk.private_series (station_id, property, pipeline)
        SELECT DISTINCT o.station_id, o.property, p_pipeline FROM datenwerk.observations o
        WHERE o.run_id IN (SELECT id FROM datenwerk.runs WHERE pipeline = p_pipeline)
        ON CONFLICT DO NOTHING;
    ELSIF from_time IS NOT NULL AND to_time IS NOT NULL THEN
        INSERT INTO datenwerk.private_series (station_id, property, pipeline)
        SELECT DISTINCT o.station_id, o.property, p_pipeline FROM datenwerk.observations o
        WHERE o.run_id = p_run AND o.phenomenon_start >= from_time AND o.phenomenon_start <= to_time
        ON CONFLICT DO NOTHING;
    END IF;
END $$;

-- Latest value per station and property; a value below the gate is NULL.
CREATE OR REPLACE VIEW datenwerk_api.latest AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name, st.geom,
       ST_X(ST_PointOnSurface(st.geom)) AS longitude, ST_Y(ST_PointOnSurface(st.geom)) AS latitude,
       s.property, p.unit, p.label_de, p.label_en,
       s.last_start AS phenomenon_start, s.last_end AS phenomenon_end,
       CASE WHEN coalesce(g.min_count IS NOT NULL AND s.last_result <> 0 AND s.last_result < g.min_count, false) THEN NULL ELSE s.last_result END AS result,
       s.last_quality AS quality,
       now() - coalesce(s.last_end, s.last_start) AS age,
       extract(epoch FROM now() - coalesce(s.last_end, s.last_start))::double precision AS age_seconds,
       coalesce(g.min_count IS NOT NULL AND s.last_result <> 0 AND s.last_result < g.min_count, false) AS suppressed
FROM datenwerk.series s
JOIN datenwerk.stations st ON st.id = s.station_id
JOIN datenwerk.observed_properties p ON p.key = s.property
LEFT JOIN datenwerk.series_min_count g ON g.station_id = s.station_id AND g.property = s.property;

-- Observations with their station and unit; a value below the gate is NULL.
CREATE OR REPLACE VIEW datenwerk_api.observations AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name, st.geom,
       o.property, p.unit, o.phenomenon_start, o.phenomenon_end,
       CASE WHEN coalesce(g.min_count IS NOT NULL AND o.result <> 0 AND o.result < g.min_count, false) THEN NULL ELSE o.result END AS result, o.quality,
       coalesce(g.min_count IS NOT NULL AND o.result <> 0 AND o.result < g.min_count, false) AS suppressed
FROM datenwerk.series s
JOIN datenwerk.stations st ON st.id = s.station_id
JOIN datenwerk.observations o ON o.station_id = s.station_id AND o.property = s.property
JOIN datenwerk.observed_properties p ON p.key = s.property
LEFT JOIN datenwerk.series_min_count g ON g.station_id = s.station_id AND g.property = s.property;

-- Hourly aggregates per series (UTC hours); an hour that holds a value below the gate has avg, min, max and
-- sum NULL. The buckets are 0008's, unchanged; the gate is joined outside them, so a filter on a station still
-- becomes a primary-key range scan of its buckets (a join inside the UNION ALL kept PostgreSQL from it).
CREATE OR REPLACE VIEW datenwerk_api.hourly AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name,
       b.property, p.unit, b.hour, b.n,
       CASE WHEN NOT x.suppressed THEN b.avg END AS avg,
       CASE WHEN NOT x.suppressed THEN b.min END AS min,
       CASE WHEN NOT x.suppressed THEN b.max END AS max,
       CASE WHEN p.per_interval AND NOT x.suppressed THEN b.total END AS sum, p.per_interval, x.suppressed
FROM (
    SELECT station_id, property, hour, n, total / n AS avg, minimum AS min, maximum AS max, total
    FROM datenwerk.observations_hourly
    UNION ALL
    SELECT o.station_id, o.property, o.phenomenon_start, 1, o.result, o.result, o.result, o.result
    FROM datenwerk.observations o
    JOIN datenwerk.series s ON s.station_id = o.station_id AND s.property = o.property AND s.hourly_raw
) b
JOIN datenwerk.stations st ON st.id = b.station_id
JOIN datenwerk.observed_properties p ON p.key = b.property
LEFT JOIN datenwerk.series_min_count g ON g.station_id = b.station_id AND g.property = b.property
CROSS JOIN LATERAL (SELECT CASE
    WHEN g.min_count IS NULL OR b.min >= g.min_count THEN false
    WHEN b.min <> 0 THEN true
    WHEN b.max = 0 THEN false
    ELSE EXISTS (SELECT 1 FROM datenwerk.observations o
                 WHERE o.station_id = b.station_id AND o.property = b.property
                   AND o.phenomenon_start >= b.hour AND o.phenomenon_start < b.hour + interval '1 hour'
                   AND o.result <> 0 AND o.result < g.min_count)
END AS suppressed) x;

-- Daily aggregates per series (calendar days in Europe/Berlin); a day that holds a value below the gate has
-- avg, min, max and sum NULL.
CREATE OR REPLACE VIEW datenwerk_api.daily AS
SELECT st.id AS station_id, st.tenant, st.key AS station_key, st.name AS station_name,
       d.property, p.unit, d.day, d.n,
       CASE WHEN NOT x.suppressed THEN d.total / d.n END AS avg,
       CASE WHEN NOT x.suppressed THEN d.minimum END AS min,
       CASE WHEN NOT x.suppressed THEN d.maximum END AS max,
       CASE WHEN p.per_interval AND NOT x.suppressed THEN d.total END AS sum, p.per_interval, x.suppressed
FROM datenwerk.observations_daily d
JOIN datenwerk.stations st ON st.id = d.station_id
JOIN datenwerk.observed_properties p ON p.key = d.property
LEFT JOIN datenwerk.series_min_count g ON g.station_id = d.station_id AND g.property = d.property
CROSS JOIN LATERAL (SELECT CASE
    WHEN g.min_count IS NULL OR d.minimum >= g.min_count THEN false
    WHEN d.minimum <> 0 THEN true
    WHEN d.maximum = 0 THEN false
    ELSE EXISTS (SELECT 1 FROM datenwerk.observations o
                 WHERE o.station_id = d.station_id AND o.property = d.property
                   AND o.phenomenon_start >= (d.day::timestamp AT TIME ZONE 'Europe/Berlin')
                   AND o.phenomenon_start < ((d.day + 1)::timestamp AT TIME ZONE 'Europe/Berlin')
                   AND o.result <> 0 AND o.result < g.min_count)
END AS suppressed) x;
