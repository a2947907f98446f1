-- A run whose new hourly dashboard buckets were written in a second transaction beside its load (the first-load
-- fast path, HourlySideLoad.swift, docs/dashboards.md): the span of its rows, set by the load's transaction and
-- cleared by the second one when it commits right after. A run left with it (the process died between the two
-- commits) has its aggregates recomputed by the next load of its tenant or `datenwerk db refresh-aggregates`.
ALTER TABLE datenwerk.runs ADD COLUMN aggregates_pending tstzrange;
CREATE INDEX runs_aggregates_pending_idx ON datenwerk.runs (tenant) WHERE aggregates_pending IS NOT NULL;
