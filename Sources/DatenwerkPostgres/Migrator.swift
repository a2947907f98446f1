import DatenwerkCore
import Foundation
import Logging
import PostgresNIO

/// Applies the versioned SQL files in `Migrations/` (NNNN_name.sql) once each, in order, under an advisory lock,
/// then refreshes the observed-property vocabulary.
package struct Migrator: Sendable {
    package struct Migration: Sendable {
        package var version: Int
        package var name: String
        package var sql: String
    }

    package let database: Database

    package init(_ database: Database) { self.database = database }

    package static func bundled() throws -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw EmbeddedPostgres.Failure(description: "migrations are missing from the bundle")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        return try files.map { file in
            let stem = String(file.dropLast(4))
            guard let version = Int(stem.prefix(while: \.isNumber)) else {
                throw EmbeddedPostgres.Failure(description: "migration file \(file) does not start with a version number")
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: stem, sql: sql)
        }
    }

    /// Returns the versions applied by this call.
    @discardableResult
    package func migrate() async throws -> [Int] {
        let migrations = try Self.bundled()
        let logger = database.logger
        return try await database.transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('datenwerk.migrate'))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS public.datenwerk_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM public.datenwerk_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                do {
                    try await Database.executeScript(migration.sql, on: connection, logger: logger)
                } catch {
                    throw EmbeddedPostgres.Failure(description: "migration \(migration.name) failed: \(String(reflecting: error))")
                }
                try await connection.query("INSERT INTO public.datenwerk_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                done.append(migration.version)
            }
            // The vocabulary, in one statement (one round trip instead of one per property at every start of
            // a run), rewriting only the rows that changed.
            var upsert = PostgresQuery.StringInterpolation(literalCapacity: 1024, interpolationCount: 7 * Vocabulary.properties.count)
            upsert.appendLiteral("INSERT INTO datenwerk.observed_properties AS o (key, unit, label_de, label_en, per_interval, range_min, range_max) VALUES ")
            for (i, p) in Vocabulary.properties.enumerated() {
                upsert.appendLiteral(i == 0 ? "(" : ", (")
                upsert.appendInterpolation(p.key)
                upsert.appendLiteral(", ")
                upsert.appendInterpolation(p.unit)
                upsert.appendLiteral(", ")
                upsert.appendInterpolation(p.labelDE)
                upsert.appendLiteral(", ")
                upsert.appendInterpolation(p.labelEN)
                upsert.appendLiteral(", ")
                upsert.appendInterpolation(p.perInterval)
                upsert.appendLiteral("::boolean, ")
                upsert.appendInterpolation(p.range?.lowerBound)
                upsert.appendLiteral("::double precision, ")
                upsert.appendInterpolation(p.range?.upperBound)
                upsert.appendLiteral("::double precision)")
            }
            upsert.appendLiteral("""
                 ON CONFLICT (key) DO UPDATE SET unit = EXCLUDED.unit, label_de = EXCLUDED.label_de, label_en = EXCLUDED.label_en,
                    per_interval = EXCLUDED.per_interval, range_min = EXCLUDED.range_min, range_max = EXCLUDED.range_max
                WHERE (o.unit, o.label_de, o.label_en, o.per_interval, o.range_min, o.range_max)
                    IS DISTINCT FROM (EXCLUDED.unit, EXCLUDED.label_de, EXCLUDED.label_en, EXCLUDED.per_interval, EXCLUDED.range_min, EXCLUDED.range_max)
                """)
            try await connection.query(PostgresQuery(stringInterpolation: upsert), logger: logger)
            return done
        }
    }

    /// The versions recorded as applied (empty when the schema was never migrated).
    package func appliedVersions() async throws -> Set<Int> {
        try await database.transaction { connection in
            let exists = try await connection.query("SELECT to_regclass('public.datenwerk_migrations') IS NOT NULL", logger: database.logger).decode(Bool.self)
            var found = false
            for try await e in exists { found = e }
            guard found else { return [] }
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM public.datenwerk_migrations", logger: database.logger).decode(Int.self) {
                applied.insert(version)
            }
            return applied
        }
    }
}
