import ArgumentParser
import DatenwerkCore
import DatenwerkPostgres
import DatenwerkServer
import Foundation

/// `datenwerk tokens create|list|revoke`: the API tokens of `datenwerk serve` (docs/access.md).
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Create, list and revoke API tokens for push ingest, run triggers, quarantine replay and restricted datasets.",
        discussion: """
            A token is shown once, when it is created; the database keeps only its SHA-256 hash. Scopes: admin, \
            ingest:<pipeline>, run:<pipeline> (run triggers and quarantine replay), read:<dataset>, tenant:<ags> \
            (all of that tenant's pipelines and datasets). A revoked or expired token is refused from the next request on.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print it once.")

        @Option(name: .customLong("scope"), help: "A scope (repeatable): admin, ingest:<pipeline>, run:<pipeline>, read:<dataset>, tenant:<ags>.")
        var scopes: [String]

        @Option(help: "Expire after this long: 90m, 12h, 30d, 52w (default: never).")
        var expires: String?

        @Option(help: "What the token is for (shown by `tokens list`).")
        var name = ""

        func validate() throws {
            guard !scopes.isEmpty else { throw ValidationError("give at least one --scope") }
            for scope in scopes {
                do { _ = try AccessScope.parse(scope) } catch { throw ValidationError(error.message) }
            }
            if let expires, TokensCommand.duration(expires) == nil {
                throw ValidationError("--expires '\(expires)': a whole number with m, h, d or w (e.g. 30d)")
            }
        }

        func run() async throws {
            let scopes = try self.scopes.map { try AccessScope.parse($0).description }
            let expiresAt = expires.flatMap(TokensCommand.duration).map { Date().addingTimeInterval($0) }
            let token = APIToken.generate()
            let (name, hash, hint) = (self.name, APIToken.hash(token), APIToken.hint(token))
            let id = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await TokenStore(opened.database).create(hash: hash, hint: hint, name: name, scopes: scopes, expiresAt: expiresAt)
            }
            print(token)
            stderr("token #\(id) (\(scopes.joined(separator: " ")))\(expiresAt.map { ", expires \(TokensCommand.format($0))" } ?? ""): "
                   + "shown only now, store it safely; revoke it with `datenwerk tokens revoke \(id)`")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per token: id, state, hint, scopes, name (never the token).")

        func run() async throws {
            let tokens = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await TokenStore(opened.database).list()
            }
            if tokens.isEmpty { print("no tokens (datenwerk tokens create --scope …)"); return }
            let now = Date()
            for t in tokens {
                let state = t.revokedAt.map { "revoked \(TokensCommand.format($0))" }
                    ?? t.expiresAt.map { $0 <= now ? "expired \(TokensCommand.format($0))" : "active until \(TokensCommand.format($0))" }
                    ?? "active"
                let used = t.lastUsedAt.map { "used \(TokensCommand.format($0))" } ?? "never used"
                print("#\(t.id)\t\(t.hint)…\t\(state)\t\(used)\t\(t.scopes.joined(separator: " "))\t\(t.name)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token: refused from the next request on.")

        @Argument(help: "The token's id (datenwerk tokens list).")
        var id: Int64

        func run() async throws {
            let id = self.id
            let revoked = try await DatabaseEnvironment(logger: makeLogger(verbose: false)).with { opened in
                try await TokenStore(opened.database).revoke(id: id)
            }
            guard revoked else {
                stderr("error: no active token #\(id) (datenwerk tokens list)")
                throw Exit.invalidConfiguration
            }
            print("token #\(id) revoked")
        }
    }

    /// `30d` → seconds; nil when not a positive whole number with m, h, d or w.
    static func duration(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0 else { return nil }
        switch unit {
        case "m": return TimeInterval(n) * 60
        case "h": return TimeInterval(n) * 3600
        case "d": return TimeInterval(n) * 86400
        case "w": return TimeInterval(n) * 7 * 86400
        default: return nil
        }
    }

    static func format(_ date: Date) -> String { date.ISO8601Format() }
}
