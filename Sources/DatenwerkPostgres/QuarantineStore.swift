import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import PostgresNIO

/// Reads `datenwerk.quarantine` for `quarantine replay`.
package struct QuarantineStore: Sendable {
    package let database: Database

    package init(_ database: Database) {
        self.database = database
    }

    /// Stored records of `pipeline` with an id after `after`, oldest first; only those in `ids` when given.
    package func page(pipeline: String, after: Int64, ids: [Int64] = [], limit: Int = 500) async throws -> [StoredQuarantine] {
        let rows = try await database.client.query("""
            SELECT id, origin, line, record, path, field, reason, raw, fields::text FROM datenwerk.quarantine
            WHERE pipeline = \(pipeline) AND id > \(after) AND (cardinality(\(ids)::bigint[]) = 0 OR id = ANY(\(ids)::bigint[]))
            ORDER BY id LIMIT \(limit)
            """, logger: database.logger)
        var page: [StoredQuarantine] = []
        for try await (id, origin, line, record, path, field, reason, raw, fields) in rows.decode((Int64, String, Int?, Int?, String?, String?, String, String, String?).self) {
            let location = SourceLocation(origin: origin, line: line, record: record, path: path)
            let decoded = try fields.map { try JSONParser.parse(Array($0.utf8)) }
            page.append(StoredQuarantine(id: id, error: RecordError(location, field: field, reason), raw: raw, fields: decoded))
        }
        return page
    }

    /// A replay of `pipeline`'s quarantined records (all, or `ids`) for `PipelineRunner.run(_:context:)`.
    package func replay(pipeline: String, ids: [Int64] = []) -> QuarantineReplay {
        let store = self
        return QuarantineReplay { after in try await store.page(pipeline: pipeline, after: after, ids: ids) }
    }
}
