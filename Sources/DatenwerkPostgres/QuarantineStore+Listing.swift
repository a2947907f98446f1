import DatenwerkCore
import PostgresNIO

/// Reads `datenwerk.quarantine` for `datenwerk quarantine list` and `show`.
extension QuarantineStore {
    /// One line of `quarantine list`.
    package struct Entry: Sendable, Hashable {
        package var id: Int64
        /// Where the record came from and why it was set aside.
        package var error: RecordError
        package var seenCount: Int
    }

    /// The first `limit` quarantined records of `pipeline`, oldest first.
    package func list(pipeline: String, limit: Int) async throws -> [Entry] {
        let rows = try await database.client.query("""
            SELECT id, origin, line, record, path, field, reason, seen_count FROM datenwerk.quarantine
            WHERE pipeline = \(pipeline) ORDER BY id LIMIT \(limit)
            """, logger: database.logger).decode((Int64, String, Int?, Int?, String?, String?, String, Int).self)
        var entries: [Entry] = []
        for try await r in rows {
            let error = RecordError(SourceLocation(origin: r.1, line: r.2, record: r.3, path: r.4), field: r.5, r.6)
            entries.append(Entry(id: r.0, error: error, seenCount: r.7))
        }
        return entries
    }

    /// One quarantined record with its raw payload, for `quarantine show`.
    package struct Detail: Sendable, Hashable {
        package var pipeline: String
        package var error: RecordError
        package var raw: String
        package var runID: Int64?
        /// First seen, UTC to the second (`2024-10-27T01:00:00Z`).
        package var firstSeen: String
        package var seenCount: Int
        /// The decoded fields as indented JSON, when they were stored.
        package var fields: String?
    }

    /// The record `id`, or nil when there is none.
    package func record(id: Int64) async throws -> Detail? {
        let rows = try await database.client.query("""
            SELECT pipeline, origin, line, record, path, field, reason, raw, run_id,
                   to_char(first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), seen_count, jsonb_pretty(fields)
            FROM datenwerk.quarantine WHERE id = \(id)
            """, logger: database.logger).decode((String, String, Int?, Int?, String?, String?, String, String, Int64?, String, Int, String?).self)
        var found: Detail?
        for try await r in rows where found == nil {
            let error = RecordError(SourceLocation(origin: r.1, line: r.2, record: r.3, path: r.4), field: r.5, r.6)
            found = Detail(pipeline: r.0, error: error, raw: r.7, runID: r.8, firstSeen: r.9, seenCount: r.10, fields: r.11)
        }
        return found
    }
}
