-- Zero silent drops: every value a source offers is loaded, quarantined or skipped under a named rule.
-- values_read: the values the source offered; quarantined_values: the values the quarantined records stand for;
-- skips: {"rule": count}, e.g. {"duplicate": 3, "missing_value": 12}; skipped (0001) is their sum.
-- balanced: values_read = loaded + quarantined_values + skipped (NULL when a connector does not count values).
ALTER TABLE datenwerk.runs ADD COLUMN values_read bigint NOT NULL DEFAULT 0;
ALTER TABLE datenwerk.runs ADD COLUMN quarantined_values bigint NOT NULL DEFAULT 0;
ALTER TABLE datenwerk.runs ADD COLUMN skips jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE datenwerk.runs ADD COLUMN balanced boolean;
