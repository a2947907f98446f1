import DatenwerkCore
import Logging
import PostgresNIO

/// The dashboard API's maintenance (docs/dashboards.md): rebuilding the aggregates, and login roles that read
/// `datenwerk_api` only.
package struct AggregateMaintenance: Sendable {
    let database: Database

    package init(_ database: Database) { self.database = database }

    /// Rebuilds `series`, `observations_hourly` and `observations_daily` from `observations` (after hand-made
    /// SQL changes; loads keep them current themselves).
    package func refreshAll() async throws {
        try await database.transaction { connection in
            try await connection.query("SELECT datenwerk.refresh_aggregates()", logger: database.logger)
            // Runs whose hourly buckets' second transaction never committed need no repair now.
            try await connection.query("UPDATE datenwerk.runs SET aggregates_pending = NULL WHERE aggregates_pending IS NOT NULL", logger: database.logger)
        }
    }

    /// A login role for dashboards: member of `datenwerk_api_reader` (SELECT on `datenwerk_api`, nothing of
    /// `datenwerk`), with a statement timeout and a connection limit. Creates it or updates it (password,
    /// timeout). The password is sent as a bind parameter of a format() call server-side, never logged.
    package func grantReader(name: String, password: String?, statementTimeoutMilliseconds: Int, connectionLimit: Int) async throws {
        guard Self.isValidRoleName(name) else {
            throw DashboardAPIError(message: "role name '\(name)' is not allowed: use lower-case letters, digits and _ (at most 63, starting with a letter; not pg_…, datenwerk or postgres)")
        }
        try await database.transaction { connection in
            let logger = database.logger
            var exists = false
            for try await found in try await connection.query("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = \(name))", logger: logger).decode(Bool.self) {
                exists = found
            }
            try await connection.query(PostgresQuery(unsafeSQL: exists ? "ALTER ROLE \(name) LOGIN" : "CREATE ROLE \(name) LOGIN"), logger: logger)
            if let password {
                // ALTER ROLE takes no bind parameters: the function quotes the password on the server (format %L).
                var binds = PostgresBindings()
                binds.append(name)
                binds.append(password)
                try await connection.query(PostgresQuery(unsafeSQL: """
                    SELECT datenwerk.set_role_password($1, $2)
                    """, binds: binds), logger: logger)
            }
            try await connection.query(PostgresQuery(unsafeSQL: """
                ALTER ROLE \(name) NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT \(connectionLimit)
                """), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "ALTER ROLE \(name) SET statement_timeout = \(statementTimeoutMilliseconds)"), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "ALTER ROLE \(name) SET default_transaction_read_only = on"), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "ALTER ROLE \(name) SET search_path = datenwerk_api, public"), logger: logger)
            var readerRole = false
            for try await found in try await connection.query("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'datenwerk_api_reader')", logger: logger).decode(Bool.self) {
                readerRole = found
            }
            guard readerRole else {
                throw DashboardAPIError(message: "role datenwerk_api_reader is missing: the database user that ran the migrations lacks CREATEROLE; create it as an administrator (see docs/dashboards.md)")
            }
            try await connection.query(PostgresQuery(unsafeSQL: "GRANT datenwerk_api_reader TO \(name)"), logger: logger)
        }
    }

    /// Lower-case identifiers only: the name goes into DDL unquoted (it is checked, not escaped).
    package static func isValidRoleName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), bytes.count <= 63 else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
            && !name.hasPrefix("pg_") && name != "datenwerk" && name != "postgres" && name != "datenwerk_api_reader"
    }
}

package struct DashboardAPIError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}
