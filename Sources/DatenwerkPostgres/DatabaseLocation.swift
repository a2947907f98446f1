import Foundation
import PostgresNIO

/// Where the database is: a `postgres://` URL from `DATABASE_URL`, or the embedded cluster.
package struct DatabaseLocation: Sendable, CustomStringConvertible {
    package var host: String?
    package var port: Int
    package var unixSocketPath: String?
    package var username: String
    package var password: String?
    package var database: String
    package var requireTLS: Bool

    package struct InvalidURL: Error, CustomStringConvertible {
        package var description: String
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=…&host=/socket/dir`.
    package init(url: String) throws {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw InvalidURL(description: "DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        self.username = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        self.port = components.port ?? query["port"].flatMap { Int($0) } ?? 5432
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? username : path
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            self.unixSocketPath = socketDirectory + "/.s.PGSQL.\(port)"
            self.host = nil
        } else {
            self.host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
            self.unixSocketPath = nil
        }
        let sslmode = query["sslmode"] ?? "prefer"
        self.requireTLS = ["require", "verify-ca", "verify-full"].contains(sslmode)
    }

    package init(socketPath: String, username: String, database: String) {
        self.host = nil
        self.port = 0
        self.unixSocketPath = socketPath
        self.username = username
        self.password = nil
        self.database = database
        self.requireTLS = false
    }

    /// The same server, another database.
    package func with(database: String) -> DatabaseLocation {
        var copy = self
        copy.database = database
        return copy
    }

    /// A `postgres://` URL for this location, including the password: for child processes, never for output.
    package var url: String {
        let user = username.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? username
        let secret = password.map { ":" + ($0.addingPercentEncoding(withAllowedCharacters: .urlPasswordAllowed) ?? $0) } ?? ""
        if let unixSocketPath {
            let directory = (unixSocketPath as NSString).deletingLastPathComponent
            let port = unixSocketPath.split(separator: ".").last.map(String.init) ?? "5432"
            return "postgres://\(user)\(secret)@/\(database)?host=\(directory)&port=\(port)"
        }
        return "postgres://\(user)\(secret)@\(host ?? "localhost"):\(port)/\(database)\(requireTLS ? "?sslmode=require" : "")"
    }

    /// Never shows the password.
    package var description: String {
        if let unixSocketPath { return "postgres://\(username)@/\(database)?host=\((unixSocketPath as NSString).deletingLastPathComponent)" }
        return "postgres://\(username)@\(host ?? "localhost"):\(port)/\(database)"
    }

    package var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let unixSocketPath {
            configuration = .init(unixSocketPath: unixSocketPath, username: username, password: password, database: database)
        } else {
            configuration = .init(
                host: host ?? "localhost", port: port, username: username, password: password, database: database,
                tls: requireTLS ? .require(.makeClientConfiguration()) : .disable
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.minimumConnections = 0
        configuration.options.maximumConnections = 8
        return configuration
    }
}
