import Foundation

/// One permission of an API token or an OIDC bearer token (docs/access.md):
///
/// | scope | allows |
/// |---|---|
/// | `admin` | everything below, for every pipeline and dataset |
/// | `ingest:<pipeline>` | push ingest into the pipeline (`POST /ingest/<pipeline>`) |
/// | `run:<pipeline>` | run triggers and quarantine replay of the pipeline (`POST /pipelines/<pipeline>/runs`, `…/quarantine/replay`) |
/// | `read:<dataset>` | the restricted dataset's record and downloads (`/datasets/<dataset>/…`) |
/// | `tenant:<ags>` | all of the above for the pipelines (and their datasets) whose `tenant:` is `<ags>` |
package enum AccessScope: Hashable, Sendable, CustomStringConvertible {
    case admin
    case ingest(String)
    case run(String)
    case read(String)
    case tenant(String)

    package struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// `admin`, `ingest:<pipeline>`, `run:<pipeline>`, `read:<dataset>` or `tenant:<ags>`; the name is not empty and
    /// has no whitespace, `:` or `*` (a scope names exactly one thing: there are no wildcards besides `admin`).
    package static func parse(_ text: String) throws(Invalid) -> AccessScope {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "admin" { return .admin }
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw Invalid(message: "scope '\(Self.shorten(text))' is not one of admin, ingest:<pipeline>, run:<pipeline>, read:<dataset>, tenant:<ags>")
        }
        let kind = String(trimmed[..<colon])
        let name = String(trimmed[trimmed.index(after: colon)...])
        guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == ":" || $0 == "*" || $0 == "/" }) else {
            throw Invalid(message: "scope '\(Self.shorten(text))': the name after '\(kind):' must be one pipeline, dataset or tenant (no spaces, ':', '/' or '*')")
        }
        switch kind {
        case "ingest": return .ingest(name)
        case "run": return .run(name)
        case "read": return .read(name)
        case "tenant": return .tenant(name)
        default:
            throw Invalid(message: "scope '\(Self.shorten(text))' is not one of admin, ingest:<pipeline>, run:<pipeline>, read:<dataset>, tenant:<ags>")
        }
    }

    /// The scopes among `texts` that parse (an OIDC claim may hold other roles as well; those grant nothing).
    package static func parseKnown<S: Sequence>(_ texts: S) -> [AccessScope] where S.Element == String {
        texts.compactMap { try? parse($0) }
    }

    package var description: String {
        switch self {
        case .admin: "admin"
        case .ingest(let p): "ingest:\(p)"
        case .run(let p): "run:\(p)"
        case .read(let d): "read:\(d)"
        case .tenant(let t): "tenant:\(t)"
        }
    }

    /// Whether this scope allows `need`.
    package func grants(_ need: AccessNeed) -> Bool {
        switch (self, need.action) {
        case (.admin, _): true
        case (.tenant(let ags), _): need.tenant == ags
        case (.ingest(let p), .ingest): p == need.name
        case (.run(let p), .run): p == need.name
        case (.read(let d), .read): d == need.name
        default: false
        }
    }

    static func shorten(_ text: String) -> String { text.count > 60 ? String(text.prefix(60)) + "…" : text }
}

extension Sequence where Element == AccessScope {
    /// Whether any of the scopes allows `need`.
    package func grant(_ need: AccessNeed) -> Bool { contains { $0.grants(need) } }
}

/// What a request asks to do: an action on one pipeline or dataset, and the tenant (AGS) that owns it.
package struct AccessNeed: Hashable, Sendable, CustomStringConvertible {
    package enum Action: String, Sendable { case ingest, run, read }
    package var action: Action
    /// The pipeline (ingest, run) or the dataset id (read).
    package var name: String
    /// The pipeline's `tenant:`; nil: no `tenant:<ags>` scope grants it.
    package var tenant: String?

    package init(_ action: Action, _ name: String, tenant: String?) {
        self.action = action
        self.name = name
        self.tenant = tenant.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The narrowest scope that grants it (`ingest:klima`): what a 403 names.
    package var scope: AccessScope {
        switch action {
        case .ingest: .ingest(name)
        case .run: .run(name)
        case .read: .read(name)
        }
    }

    package var description: String { scope.description }
}
