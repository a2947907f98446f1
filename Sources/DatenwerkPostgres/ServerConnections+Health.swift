import PostgresNIO

/// The statements of the server's database watch and of `/health`, with `ServerConnections`' bounded waits.
extension ServerConnections {
    /// One round trip; throws when the database does not answer (or is marked away).
    package func ping() async throws {
        _ = try await rows("SELECT 1")
    }

    /// The versions in `public.datenwerk_migrations`, as stored.
    package func appliedMigrations() async throws -> [Int] {
        try await rows("""
            SELECT version FROM public.datenwerk_migrations
            """).map { try $0.decode(Int.self) }
    }
}
