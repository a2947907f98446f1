import DatenwerkCore
import DatenwerkHTTP
import Foundation
import JWTKit
import Logging

/// Optional OIDC bearer tokens (a municipality's Keycloak), docs/access.md. Configured from the environment:
///
/// | variable | meaning |
/// |---|---|
/// | `DATENWERK_OIDC_ISSUER` | the `iss` every token must carry (Keycloak: `https://sso.example.de/realms/<realm>`) |
/// | `DATENWERK_OIDC_AUDIENCE` | a value the token's `aud` must contain (the client id) |
/// | `DATENWERK_OIDC_JWKS_URL` | the issuer's key set (Keycloak: `…/protocol/openid-connect/certs`) |
/// | `DATENWERK_OIDC_SCOPE_CLAIM` | the claim with the scopes, default `scope` (space-separated string or array) |
///
/// Keycloak realm roles (`realm_access.roles`) count as scopes too, so `ingest:klima` can be a role. Claims
/// that are not Datenwerk scopes (`openid`, `profile`, `offline_access`, …) grant nothing.
package struct OIDCConfiguration: Sendable, Equatable {
    package var issuer: String
    package var audience: String
    package var jwksURL: String
    package var scopeClaim: String
    package var realmRoles: Bool
    /// An unknown `kid` fetches the key set again, but not more often than this (a stream of made-up key ids
    /// must not become a stream of requests to the identity provider).
    package var minRefreshInterval: Duration
    /// The key set is fetched again after this long even when every `kid` is known (removed keys stop working).
    package var maxKeyAge: Duration
    /// Clock skew allowed for `exp` and `nbf`.
    package var leeway: Duration

    package init(issuer: String, audience: String, jwksURL: String, scopeClaim: String = "scope", realmRoles: Bool = true,
                 minRefreshInterval: Duration = .seconds(10), maxKeyAge: Duration = .seconds(3600), leeway: Duration = .seconds(30)) {
        self.issuer = issuer
        self.audience = audience
        self.jwksURL = jwksURL
        self.scopeClaim = scopeClaim
        self.realmRoles = realmRoles
        self.minRefreshInterval = minRefreshInterval
        self.maxKeyAge = maxKeyAge
        self.leeway = leeway
    }

    package struct Incomplete: Error, CustomStringConvertible {
        package var missing: [String]
        package var description: String {
            "OIDC is half configured: set \(missing.joined(separator: ", ")) as well (or none of DATENWERK_OIDC_*); bearer JWTs are refused until then"
        }
    }

    /// nil when none of the variables is set; throws when some but not all of issuer, audience and JWKS URL are.
    package static func from(environment: [String: String]) throws(Incomplete) -> OIDCConfiguration? {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 } }
        let names = ["DATENWERK_OIDC_ISSUER", "DATENWERK_OIDC_AUDIENCE", "DATENWERK_OIDC_JWKS_URL"]
        let values = names.map(value)
        if values.allSatisfy({ $0 == nil }) { return nil }
        let missing = zip(names, values).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty else { throw Incomplete(missing: missing) }
        return OIDCConfiguration(issuer: values[0]!, audience: values[1]!, jwksURL: values[2]!,
                                 scopeClaim: value("DATENWERK_OIDC_SCOPE_CLAIM") ?? "scope")
    }
}

/// Verifies bearer JWTs against the configured JWKS: signature (asymmetric algorithms only), `iss`, `aud`,
/// `exp` (required), `nbf`; the scopes come from the scope claim and Keycloak's realm roles.
package actor OIDCVerifier {
    package enum Failure: Error, Equatable, CustomStringConvertible {
        /// The token is not valid: the text says why (for the log; the client gets a generic 401).
        case invalid(String)
        /// The key set could not be fetched (and none is cached): the server's problem, not the client's.
        case keysUnavailable(String)

        package var description: String {
            switch self {
            case .invalid(let why): why
            case .keysUnavailable(let why): "the JWKS could not be fetched: \(why)"
            }
        }
    }

    package nonisolated let configuration: OIDCConfiguration
    let fetcher: HTTPFetcher
    let logger: Logger
    private var keys: JWTKeyCollection?
    private var kids: Set<String> = []
    private var fetchedAt: ContinuousClock.Instant?
    private var refreshing: Task<Void, Never>?
    private var lastError: String?

    static let algorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    package init(configuration: OIDCConfiguration, fetcher: HTTPFetcher, logger: Logger) {
        self.configuration = configuration
        self.fetcher = fetcher
        self.logger = logger
    }

    /// Whether `token` has the shape of a JWT (three base64url parts), so it is worth verifying.
    package nonisolated static func looksLikeJWT(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && parts[0].hasPrefix("eyJ") && !parts[2].isEmpty
    }

    /// The scopes of a valid token.
    package func verify(_ token: String, now: Date = Date()) async throws(Failure) -> [AccessScope] {
        let header = try Self.header(token)
        guard let alg = header.alg, Self.algorithms.contains(alg) else {
            throw .invalid("algorithm '\(header.alg ?? "none")' is not accepted (only asymmetric signatures)")
        }
        guard let kid = header.kid, !kid.isEmpty else { throw .invalid("the token names no key (kid)") }
        let collection = try await keys(for: kid)
        guard let collection else { throw .invalid("key '\(Self.shorten(kid))' is not in the issuer's key set") }
        let claims: OIDCClaims
        do {
            claims = try await collection.verify(token, as: OIDCClaims.self)
        } catch {
            throw .invalid("the signature does not verify")
        }
        return try check(claims.values, now: now)
    }

    /// The claims' checks after the signature: issuer, audience, expiry, not-before; then the scopes.
    func check(_ claims: [String: JSONValue], now: Date) throws(Failure) -> [AccessScope] {
        guard case .string(let iss)? = claims["iss"], iss == configuration.issuer else { throw .invalid("wrong issuer") }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let a)?: audiences = [a]
        case .array(let list)?: audiences = list.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: audiences = []
        }
        guard audiences.contains(configuration.audience) else { throw .invalid("wrong audience") }
        let leeway = Double(configuration.leeway.components.seconds)
        guard case .number(let exp)? = claims["exp"] else { throw .invalid("the token has no expiry (exp)") }
        guard exp + leeway > now.timeIntervalSince1970 else { throw .invalid("the token has expired") }
        if case .number(let nbf)? = claims["nbf"], nbf - leeway > now.timeIntervalSince1970 { throw .invalid("the token is not valid yet (nbf)") }
        var texts: [String] = []
        switch claims[configuration.scopeClaim] {
        case .string(let s)?: texts += s.split(separator: " ").map(String.init)
        case .array(let list)?: texts += list.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: break
        }
        if configuration.realmRoles, case .object(let realm)? = claims["realm_access"],
           case .array(let roles)? = realm.first(where: { $0.key == "roles" })?.value {
            texts += roles.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        return AccessScope.parseKnown(texts)
    }

    /// The key collection when it holds `kid`, fetching the key set again if it does not (at most every
    /// `minRefreshInterval`) or if it is older than `maxKeyAge`.
    private func keys(for kid: String) async throws(Failure) -> JWTKeyCollection? {
        let now = ContinuousClock.now
        let age = fetchedAt.map { $0.duration(to: now) }
        let stale = age.map { $0 >= configuration.maxKeyAge } ?? true
        let mayRefresh = age.map { $0 >= configuration.minRefreshInterval } ?? true
        if stale || (!kids.contains(kid) && mayRefresh) {
            await refresh()
        }
        guard let keys else { throw .keysUnavailable(lastError ?? "no key set") }
        return kids.contains(kid) ? keys : nil
    }

    /// One fetch at a time; callers that arrive meanwhile wait for it.
    private func refresh() async {
        if let refreshing { return await refreshing.value }
        let task = Task { await self.fetch() }
        refreshing = task
        await task.value
        refreshing = nil
    }

    private func fetch() async {
        let url = configuration.jwksURL
        do {
            let response = try await fetcher.get(HTTPFetcher.Request(url: url, headers: [("Accept", "application/json")], timeout: .seconds(10), retry: .none))
            guard (200..<300).contains(response.status) else { throw OIDCFetchError(message: "HTTP \(response.status)") }
            let buffer = try await response.body.collect(upTo: 1 << 20)
            let json = String(buffer: buffer)
            let collection = JWTKeyCollection()
            let jwks = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
            var found: Set<String> = []
            for key in jwks.keys {
                // Keys without an id, for encryption (RSA-OAEP), or of a kind jwt-kit cannot use, are skipped, not fatal.
                guard let id = key.keyIdentifier?.string, key.algorithm != .rsaOAEP else { continue }
                do { try await collection.add(jwk: key); found.insert(id) } catch { logger.warning("OIDC: key '\(Self.shorten(id))' of \(url) skipped: \(error)") }
            }
            guard !found.isEmpty else { throw OIDCFetchError(message: "the key set holds no usable signing key") }
            keys = collection
            kids = found
            fetchedAt = .now
            lastError = nil
            logger.info("OIDC: \(found.count) signing key(s) from \(url)")
        } catch {
            // The old keys (if any) stay in use; the next attempt waits `minRefreshInterval`, so an identity
            // provider that is down is not asked once per request.
            fetchedAt = .now
            lastError = "\(error)"
            logger.error("OIDC: the key set \(url) could not be fetched: \(error)")
        }
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
    }

    static func header(_ token: String) throws(Failure) -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = base64URLDecode(String(parts[0])),
              let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw .invalid("not a JWT (header)")
        }
        return header
    }

    static func base64URLDecode(_ text: String) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }

    static func shorten(_ text: String) -> String { text.count > 40 ? String(text.prefix(40)) + "…" : text }
}

struct OIDCFetchError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Every claim of a token, whatever its name (the scope claim's name is configured); the checks are
/// `OIDCVerifier.check`, after the signature.
struct OIDCClaims: JWTPayload {
    var values: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        var values: [String: JSONValue] = [:]
        for key in container.allKeys {
            if let value = try? container.decode(ClaimValue.self, forKey: key) { values[key.stringValue] = value.json }
        }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        for (key, value) in values { try container.encode(ClaimValue(value), forKey: AnyKey(stringValue: key)) }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A JSON value as a `Codable` (claims are small; depth is what the token has).
struct ClaimValue: Codable {
    var json: JSONValue
    init(_ json: JSONValue) { self.json = json }

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !array.isAtEnd { items.append(try array.decode(ClaimValue.self).json) }
            json = .array(items)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var members: [JSONValue.Member] = []
            for key in object.allKeys { members.append(.init(key.stringValue, try object.decode(ClaimValue.self, forKey: key).json)) }
            json = .object(members)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { json = .null }
        else if let b = try? single.decode(Bool.self) { json = .bool(b) }
        else if let n = try? single.decode(Double.self) { json = .number(n) }
        else { json = .string(try single.decode(String.self)) }
    }

    func encode(to encoder: any Encoder) throws {
        switch json {
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(ClaimValue(item)) }
        case .object(let members):
            var c = encoder.container(keyedBy: AnyKey.self)
            for m in members { try c.encode(ClaimValue(m.value), forKey: AnyKey(stringValue: m.key)) }
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .number(let n): var c = encoder.singleValueContainer(); try c.encode(n)
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        }
    }
}
