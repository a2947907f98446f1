-- Quarantine replay: the record as decoded (field → value), so `datenwerk quarantine replay` can map it
-- again after a mapping fix without the rest of its document (a CSV line's header, a JSON document's shape).
ALTER TABLE datenwerk.quarantine ADD COLUMN fields jsonb;
