import DatenwerkCore
import DatenwerkPostgres
import DatenwerkTesting
import PostgresNIO
import Testing

/// `Migrator.migrate`, which every run calls first: the vocabulary of observed properties in the database.
@Suite struct MigratorTests {
    struct Row: Equatable {
        var key, unit, de, en: String
        var perInterval: Bool
        var min, max: Double?
    }

    static func rows(_ db: Database) async throws -> [Row] {
        try await db.client.query("""
            SELECT key, unit, label_de, label_en, per_interval, range_min, range_max FROM datenwerk.observed_properties ORDER BY key
            """, logger: db.logger).decode((String, String, String, String, Bool, Double?, Double?).self).collect()
            .map { Row(key: $0.0, unit: $0.1, de: $0.2, en: $0.3, perInterval: $0.4, min: $0.5, max: $0.6) }
    }

    @Test func theVocabularyIsWrittenAsItIsAndRepairedWithoutRewritingUnchangedRows() async throws {
        try await TestDatabase.with { db in
            let expected = Vocabulary.properties.map {
                Row(key: $0.key, unit: $0.unit, de: $0.labelDE, en: $0.labelEN, perInterval: $0.perInterval, min: $0.range?.lowerBound, max: $0.range?.upperBound)
            }.sorted { $0.key < $1.key }
            #expect(try await Self.rows(db) == expected)
            #expect(expected.contains { $0.perInterval } && expected.contains { !$0.perInterval })

            // A row edited by hand is set back; the others keep their row version (not rewritten at every run).
            try await db.client.query("UPDATE datenwerk.observed_properties SET label_de = 'verändert', range_min = NULL WHERE key = 'air_temperature'", logger: db.logger)
            let before = try await db.client.query("SELECT key, xmin::text FROM datenwerk.observed_properties", logger: db.logger)
                .decode((String, String).self).collect()
            try await Migrator(db).migrate()
            #expect(try await Self.rows(db) == expected)
            let after = Dictionary(uniqueKeysWithValues: try await db.client.query("SELECT key, xmin::text FROM datenwerk.observed_properties", logger: db.logger)
                .decode((String, String).self).collect())
            for (key, version) in before {
                if key == "air_temperature" { #expect(after[key] != version) } else { #expect(after[key] == version, "\(key) was rewritten") }
            }
        }
    }
}
