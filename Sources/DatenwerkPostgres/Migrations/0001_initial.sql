-- Datenwerk schema v1: common model, run history, checkpoints, quarantine.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS datenwerk;

CREATE TABLE datenwerk.observed_properties (
    key         text PRIMARY KEY,
    unit        text NOT NULL,              -- canonical UCUM unit
    label_de    text NOT NULL,
    label_en    text NOT NULL,
    per_interval boolean NOT NULL DEFAULT false,
    range_min   double precision,
    range_max   double precision
);

CREATE TABLE datenwerk.stations (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL,              -- Amtlicher Gemeindeschlüssel of the municipality
    key         text NOT NULL,              -- '<source>:<external id>'
    name        text,
    kind        text,
    geom        geometry(Geometry, 4326),
    altitude    double precision,
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, key)
);
CREATE INDEX stations_geom_idx ON datenwerk.stations USING gist (geom);

CREATE TABLE datenwerk.runs (
    id              bigserial PRIMARY KEY,
    pipeline        text NOT NULL,
    tenant          text NOT NULL,
    trigger         text NOT NULL DEFAULT 'manual',
    status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    records_read    bigint NOT NULL DEFAULT 0,
    loaded          bigint NOT NULL DEFAULT 0,
    inserted        bigint NOT NULL DEFAULT 0,
    updated         bigint NOT NULL DEFAULT 0,
    quarantined     bigint NOT NULL DEFAULT 0,
    skipped         bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    error_step      text,
    error           text,
    host            text
);
CREATE INDEX runs_pipeline_idx ON datenwerk.runs (pipeline, started_at DESC);

CREATE TABLE datenwerk.observations (
    station_id        bigint NOT NULL REFERENCES datenwerk.stations (id),
    property          text NOT NULL REFERENCES datenwerk.observed_properties (key),
    phenomenon_start  timestamptz NOT NULL,
    phenomenon_end    timestamptz,
    result            double precision NOT NULL,
    quality           text,
    run_id            bigint,
    PRIMARY KEY (station_id, property, phenomenon_start)
) PARTITION BY RANGE (phenomenon_start);
CREATE INDEX observations_time_idx ON datenwerk.observations (phenomenon_start);

CREATE TABLE datenwerk.checkpoints (
    pipeline    text PRIMARY KEY,
    cursor      jsonb NOT NULL,
    run_id      bigint REFERENCES datenwerk.runs (id),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE datenwerk.quarantine (
    id           bigserial PRIMARY KEY,
    pipeline     text NOT NULL,
    run_id       bigint REFERENCES datenwerk.runs (id),
    origin       text NOT NULL,             -- file path or URL
    line         integer,
    record       integer,
    path         text,                      -- JSON path inside the document
    field        text,
    reason       text NOT NULL,
    raw          text NOT NULL,             -- the payload as it came in
    fingerprint  text NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    seen_count   integer NOT NULL DEFAULT 1,
    UNIQUE (pipeline, fingerprint)
);

-- Create the monthly partition of observations that holds `t`, if missing.
CREATE FUNCTION datenwerk.ensure_observation_partition(t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    name text := format('observations_y%sm%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY'), to_char(month_start AT TIME ZONE 'UTC', 'MM'));
BEGIN
    IF to_regclass('datenwerk.' || name) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('datenwerk.partitions'));
        IF to_regclass('datenwerk.' || name) IS NULL THEN
            EXECUTE format('CREATE TABLE datenwerk.%I PARTITION OF datenwerk.observations FOR VALUES FROM (%L) TO (%L)',
                           name, month_start, month_start + interval '1 month');
        END IF;
    END IF;
    RETURN name;
END $$;

-- A convenient view for dashboards and GIS: one row per observation with station and unit.
CREATE VIEW datenwerk.observations_view AS
SELECT s.tenant, s.key AS station_key, s.name AS station_name, s.geom,
       o.property, p.unit, o.phenomenon_start, o.phenomenon_end, o.result, o.quality, o.run_id
FROM datenwerk.observations o
JOIN datenwerk.stations s ON s.id = o.station_id
JOIN datenwerk.observed_properties p ON p.key = o.property;
