import DatenwerkCore
import Foundation
import Logging
import PostgresNIO

/// One API token as stored (`datenwerk.api_tokens`): never the token itself, only its SHA-256 hash and a hint.
package struct StoredToken: Sendable, Hashable {
    package var id: Int64
    package var name: String
    /// `dwk_` and the next 4 characters: enough to tell tokens apart in a list, far too little to guess one.
    package var hint: String
    package var scopes: [String]
    package var createdAt: Date
    package var expiresAt: Date?
    package var revokedAt: Date?
    package var lastUsedAt: Date?

    package init(id: Int64, name: String, hint: String, scopes: [String], createdAt: Date, expiresAt: Date?, revokedAt: Date?, lastUsedAt: Date?) {
        self.id = id
        self.name = name
        self.hint = hint
        self.scopes = scopes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }

    /// Neither revoked nor expired at `now`.
    package func isActive(at now: Date = Date()) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }
}

/// The API tokens of `datenwerk tokens create|list|revoke` (docs/access.md). The CLI writes through `Database`;
/// the server looks tokens up through its request connections (`active(hash:connections:)`), on every request,
/// so a revocation or an expiry counts from the next request on — there is no cache to invalidate.
package struct TokenStore: Sendable {
    package let database: Database
    package init(_ database: Database) { self.database = database }

    /// Stores a new token's hash; returns its id.
    package func create(hash: [UInt8], hint: String, name: String, scopes: [String], expiresAt: Date?) async throws -> Int64 {
        let bytes = ByteBuffer(bytes: hash)   // bytea ([UInt8] would bind as "char"[])
        let rows = try await database.client.query("""
            INSERT INTO datenwerk.api_tokens (token_hash, hint, name, scopes, expires_at)
            VALUES (\(bytes), \(hint), \(name), \(scopes), \(expiresAt)) RETURNING id
            """, logger: database.logger)
        for try await id in rows.decode(Int64.self) { return id }
        throw TokenStoreError(message: "the new token's row was not returned")
    }

    /// Every token, newest first (revoked and expired ones too, so an operator sees what happened).
    package func list() async throws -> [StoredToken] {
        let rows = try await database.client.query("""
            SELECT id, name, hint, scopes, created_at, expires_at, revoked_at, last_used_at
            FROM datenwerk.api_tokens ORDER BY id DESC
            """, logger: database.logger)
        var tokens: [StoredToken] = []
        for try await (id, name, hint, scopes, created, expires, revoked, used) in rows.decode((Int64, String, String, [String], Date, Date?, Date?, Date?).self) {
            tokens.append(StoredToken(id: id, name: name, hint: hint, scopes: scopes, createdAt: created, expiresAt: expires, revokedAt: revoked, lastUsedAt: used))
        }
        return tokens
    }

    /// Revokes the token `id` now; false when there is no such token or it was revoked before.
    package func revoke(id: Int64) async throws -> Bool {
        let rows = try await database.client.query("""
            UPDATE datenwerk.api_tokens SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING id
            """, logger: database.logger)
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    /// The token with this hash when it is neither revoked nor expired (the database's clock decides); notes its
    /// use at most once a minute. nil: no such token, or revoked, or expired — the caller cannot tell which.
    package static func active(hash: [UInt8], connections: ServerConnections) async throws -> (id: Int64, scopes: [String])? {
        let bytes = ByteBuffer(bytes: hash)
        let rows = try await connections.rows("""
            WITH hit AS (
                SELECT id, scopes FROM datenwerk.api_tokens
                WHERE token_hash = \(bytes) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            ), touched AS (
                UPDATE datenwerk.api_tokens t SET last_used_at = now() FROM hit
                WHERE t.id = hit.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
            )
            SELECT id, scopes FROM hit
            """)
        guard let row = rows.first else { return nil }
        let (id, scopes) = try row.decode((Int64, [String]).self)
        return (id, scopes)
    }
}

package struct TokenStoreError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// A job as `POST /pipelines/{name}/runs` reports it (`GET /pipelines/{name}/runs/{job}`).
package struct JobSummary: Sendable, Hashable {
    package var id: Int64
    package var pipeline: String
    package var kind: String
    package var status: String
    package var attempts: Int
    package var runID: Int64?
    package var createdAt: Date
    package var startedAt: Date?
    package var finishedAt: Date?

    /// The job `id` of `pipeline`; nil when there is none.
    package static func find(id: Int64, pipeline: String, connections: ServerConnections) async throws -> JobSummary? {
        let rows = try await connections.rows("""
            SELECT id, pipeline, kind, status, attempts, run_id, created_at, started_at, finished_at
            FROM datenwerk.jobs WHERE id = \(id) AND pipeline = \(pipeline)
            """)
        guard let row = rows.first else { return nil }
        let (id, pipeline, kind, status, attempts, run, created, started, finished) =
            try row.decode((Int64, String, String, String, Int, Int64?, Date, Date?, Date?).self)
        return JobSummary(id: id, pipeline: pipeline, kind: kind, status: status, attempts: attempts, runID: run,
                          createdAt: created, startedAt: started, finishedAt: finished)
    }
}
