import DatenwerkServer
import DatenwerkTesting
import Foundation
import JWTKit
import Synchronization
import Testing

/// OIDC bearer JWTs (docs/access.md) against a real JWKS endpoint on loopback, as a municipality's Keycloak serves
/// it: ES256 keys made here with jwt-kit; scopes from `scope` and from Keycloak's `realm_access.roles`.
@Suite(.serialized) struct AccessOIDCTests {
    typealias A = AccessControlTests
    typealias P = PublishingServer
    static let issuer = "https://sso.musterstadt.example/realms/musterstadt"
    static let audience = "datenwerk"

    struct Claims: JWTPayload {
        struct Realm: Codable { var roles: [String] }
        var iss: String = AccessOIDCTests.issuer
        var aud: [String] = [AccessOIDCTests.audience, "account"]
        var exp: Double = Date().timeIntervalSince1970 + 300
        var sub = "f3c1c7d2-user"
        var scope: String?
        var realm_access: Realm?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func jwk(_ key: ES256PrivateKey, kid: String) -> String {
        let p = key.publicKey.parameters!
        return #"{"kty":"EC","crv":"P-256","x":"\#(p.x)","y":"\#(p.y)","kid":"\#(kid)","alg":"ES256","use":"sig"}"#
    }

    static func sign(_ claims: Claims, _ key: ES256PrivateKey, kid: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    @Test func validJWTsAreLetInAndEveryKindOfInvalidOneIs401() async throws {
        let first = ES256PrivateKey(), second = ES256PrivateKey(), stranger = ES256PrivateKey()
        let served = Mutex(#"{"keys":[\#(Self.jwk(first, kid: "k1"))]}"#)
        let jwks = try await LoopbackHTTPServer.start { _ in .text(served.withLock { $0 }, contentType: "application/json") }
        let oidc = OIDCConfiguration(issuer: Self.issuer, audience: Self.audience, jwksURL: jwks.baseURL + "/realms/musterstadt/protocol/openid-connect/certs",
                                     minRefreshInterval: .zero)
        do {
            try await A.withServer(oidc: oidc) { s in
                let run = try await Self.sign(Claims(scope: "openid profile run:\(P.klima)"), first, kid: "k1")
                let answer = try await s.server.request(.POST, A.runsPath, headers: A.bearer(run))
                #expect(answer.status == 202, "\(answer.text)")
                // Keycloak realm roles count as scopes.
                let role = try await Self.sign(Claims(scope: "openid", realm_access: .init(roles: ["offline_access", "read:\(P.restricted)"])), first, kid: "k1")
                #expect(try await s.server.request(.GET, A.downloadPath, headers: A.bearer(role)).status == 200)
                // A valid token without the scope: 403.
                #expect(try await s.server.request(.POST, A.runsPath, headers: A.bearer(role)).status == 403)

                var invalid: [(String, String)] = []
                invalid.append(("wrong issuer", try await Self.sign(Claims(iss: "https://sso.other.example/realms/x", scope: "admin"), first, kid: "k1")))
                invalid.append(("wrong audience", try await Self.sign(Claims(aud: ["account"], scope: "admin"), first, kid: "k1")))
                invalid.append(("expired", try await Self.sign(Claims(exp: Date().timeIntervalSince1970 - 600, scope: "admin"), first, kid: "k1")))
                invalid.append(("bad signature", try await Self.sign(Claims(scope: "admin"), stranger, kid: "k1")))
                invalid.append(("unknown key", try await Self.sign(Claims(scope: "admin"), second, kid: "k2")))
                let parts = run.split(separator: ".")
                let forged = Data(#"{"iss":"\#(Self.issuer)","aud":"\#(Self.audience)","exp":9999999999,"scope":"admin"}"#.utf8).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                invalid.append(("payload swapped", "\(parts[0]).\(forged).\(parts[2])"))
                for (what, token) in invalid {
                    let refused = try await s.server.request(.POST, A.runsPath, headers: A.bearer(token))
                    #expect(refused.status == 401, "\(what): \(refused.text)")
                    #expect(refused.header("WWW-Authenticate")?.contains("invalid_token") == true, "\(what)")
                }

                // The issuer rotates its keys: a token with the new kid makes the server fetch the key set again.
                let before = jwks.requests.count
                served.withLock { $0 = #"{"keys":[\#(Self.jwk(first, kid: "k1")),\#(Self.jwk(second, kid: "k2"))]}"# }
                let rotated = try await Self.sign(Claims(scope: "run:\(P.klima)"), second, kid: "k2")
                let afterRotation = try await s.server.request(.POST, A.runsPath, headers: A.bearer(rotated))
                #expect(afterRotation.status == 202, "\(afterRotation.text)")
                #expect(jwks.requests.count > before)

                let log = s.log.text
                // Each was refused for its own reason (the log says which; the client only gets 401).
                for reason in ["wrong issuer", "wrong audience", "the token has expired", "the signature does not verify", "is not in the issuer's key set"] {
                    #expect(log.contains("OIDC token refused: \(reason)") || log.contains(reason), "\(reason)")
                }
                for token in [run, role, rotated] + invalid.map(\.1) {
                    #expect(!log.contains(String(token.split(separator: ".")[2].prefix(24))), "a JWT signature is in the log")
                }
            }
        } catch {
            try await jwks.stop()
            throw error
        }
        try await jwks.stop()
    }

    @Test func anUnreachableKeySetIs503NotTheClientsFaultAndIsNotAskedPerRequest() async throws {
        let key = ES256PrivateKey()
        let jwks = try await LoopbackHTTPServer.start { _ in .text("maintenance", status: 500) }
        let oidc = OIDCConfiguration(issuer: Self.issuer, audience: Self.audience, jwksURL: jwks.baseURL + "/certs")
        do {
            try await A.withServer(oidc: oidc) { s in
                let token = try await Self.sign(Claims(scope: "admin"), key, kid: "k1")
                for _ in 0..<3 {
                    let answer = try await s.server.request(.POST, A.runsPath, headers: A.bearer(token))
                    #expect(answer.status == 503, "\(answer.text)")
                    #expect(answer.header("Retry-After") != nil)
                }
                // One fetch for the three requests (the next waits `minRefreshInterval`), and API tokens still work.
                #expect(jwks.requests.count == 1)
                let admin = try await A.token(s.db, ["admin"])
                #expect(try await s.server.request(.POST, A.runsPath, headers: A.bearer(admin.token)).status == 202)
            }
        } catch {
            try await jwks.stop()
            throw error
        }
        try await jwks.stop()
    }

    @Test func theScopeClaimIsConfigurableAndForeignScopesGrantNothing() async throws {
        let key = ES256PrivateKey()
        let jwks = try await LoopbackHTTPServer.start { _ in .text(#"{"keys":[\#(Self.jwk(key, kid: "k1"))]}"#, contentType: "application/json") }
        var oidc = OIDCConfiguration(issuer: Self.issuer, audience: Self.audience, jwksURL: jwks.baseURL + "/certs")
        oidc.scopeClaim = "datenwerk_scopes"
        do {
            try await A.withServer(oidc: oidc) { s in
                struct Custom: JWTPayload {
                    var iss = AccessOIDCTests.issuer
                    var aud = AccessOIDCTests.audience
                    var exp = Date().timeIntervalSince1970 + 300
                    var datenwerk_scopes: [String]
                    var scope = "admin"   // not the configured claim: grants nothing
                    func verify(using algorithm: some JWTAlgorithm) async throws {}
                }
                let keys = JWTKeyCollection()
                await keys.add(ecdsa: key, kid: "k1")
                let good = try await keys.sign(Custom(datenwerk_scopes: ["tenant:05515000"]), kid: "k1")
                #expect(try await s.server.request(.POST, A.runsPath, headers: A.bearer(good)).status == 202)
                let foreign = try await keys.sign(Custom(datenwerk_scopes: ["ingest:*", "write", "tenant:"]), kid: "k1")
                #expect(try await s.server.request(.POST, A.runsPath, headers: A.bearer(foreign)).status == 403)
            }
        } catch {
            try await jwks.stop()
            throw error
        }
        try await jwks.stop()
    }
}
