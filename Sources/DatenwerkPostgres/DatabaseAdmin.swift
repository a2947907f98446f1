import PostgresNIO

/// Creates and drops whole databases, on a connection to the server's maintenance database (`postgres`);
/// used for the per-test databases. Names are quoted as identifiers.
package struct DatabaseAdmin: Sendable {
    package let database: Database

    package init(_ database: Database) {
        self.database = database
    }

    /// `CREATE DATABASE name`, as a copy of `template` when given.
    package func create(_ name: String, template: String? = nil) async throws {
        var sql = "CREATE DATABASE \(quoteIdentifier(name))"
        if let template { sql += " TEMPLATE \(quoteIdentifier(template))" }
        try await database.client.query(PostgresQuery(unsafeSQL: sql), logger: database.logger)
    }

    /// The names of the databases that start with `prefix`.
    package func databases(withPrefix prefix: String) async throws -> [String] {
        var names: [String] = []
        for try await name in try await database.client.query(
            "SELECT datname::text FROM pg_database WHERE starts_with(datname, \(prefix))", logger: database.logger).decode(String.self) {
            names.append(name)
        }
        return names
    }

    /// Drops `name` if it exists, ending its sessions (`WITH (FORCE)`).
    package func drop(_ name: String) async throws {
        try await database.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)"), logger: database.logger)
    }
}
