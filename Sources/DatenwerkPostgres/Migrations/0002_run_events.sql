-- Run history: HTTP retries and other events of a run.
ALTER TABLE datenwerk.runs ADD COLUMN retries integer NOT NULL DEFAULT 0;
ALTER TABLE datenwerk.runs ADD COLUMN events jsonb NOT NULL DEFAULT '[]'::jsonb;
