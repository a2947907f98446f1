-- Operations: due runs as jobs taken by any number of workers (FOR UPDATE SKIP LOCKED, leases with
-- heartbeat), the scheduler's memory of the last fire per pipeline, and which job a run executed.
CREATE TABLE datenwerk.jobs (
    id                bigserial PRIMARY KEY,
    pipeline          text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('scheduled', 'manual', 'backfill')),
    -- The fire time (scheduled), the request time (manual) or the chunk start (backfill): with kind and
    -- pipeline it makes a job unique, so two schedulers never enqueue one fire twice.
    due_at            timestamptz NOT NULL,
    not_before        timestamptz NOT NULL,
    window_from       timestamptz,
    window_to         timestamptz,
    status            text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 3,
    lease_owner       text,
    lease_expires_at  timestamptz,
    heartbeat_at      timestamptz,
    run_id            bigint REFERENCES datenwerk.runs (id),
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    UNIQUE (pipeline, kind, due_at)
);
CREATE INDEX jobs_ready_idx ON datenwerk.jobs (not_before) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_pipeline_idx ON datenwerk.jobs (pipeline, created_at DESC);

ALTER TABLE datenwerk.runs ADD COLUMN job_id bigint REFERENCES datenwerk.jobs (id);
CREATE INDEX runs_job_idx ON datenwerk.runs (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE datenwerk.schedules (
    pipeline    text PRIMARY KEY,
    expression  text NOT NULL,
    last_fire   timestamptz NOT NULL,
    next_fire   timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
