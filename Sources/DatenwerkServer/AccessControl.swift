import DatenwerkCore
import DatenwerkPostgres
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The guard of the protected routes (docs/access.md): push ingest, run triggers, quarantine replay and the
/// restricted datasets. Open data never passes here.
///
/// For one request: a client (peer address) with too many wrong credentials lately → 429 with `Retry-After`
/// (`FailureLimiter`) → no credential → 401 with `WWW-Authenticate: Bearer` → a credential that is none of:
/// a route's own secret (a push pipeline's `token_env`, the legacy `DATENWERK_DOWNLOAD_TOKEN`), an active API
/// token (looked up by its SHA-256 in the database on every request: a revoked or expired token fails from the
/// next request on), a valid OIDC bearer JWT → 401, counted as a failure → a valid credential whose scopes do not
/// grant the request → 403 naming the scope it needs → let in.
///
/// No token, hash or JWT is ever written to the log or into an answer: log lines name the token's id, the
/// OIDC subject or the variable whose value matched.
package struct AccessControl: Sendable {
    /// A secret a route accepts besides API tokens and OIDC, with the name the log uses for it.
    struct Alternative: Sendable {
        var label: String
        var secret: String
    }

    /// Who was let in (for the log).
    struct Principal: Sendable, CustomStringConvertible {
        var description: String
    }

    let connections: ServerConnections
    let oidc: OIDCVerifier?
    /// Why bearer JWTs are refused although some DATENWERK_OIDC_* variable is set (half configured).
    let oidcProblem: String?
    let limiter: FailureLimiter
    /// Pipeline name → its `tenant:` (AGS).
    let tenants: [String: String]
    /// Peer addresses of reverse proxies whose `X-Forwarded-For` names the client (`DATENWERK_TRUSTED_PROXIES`);
    /// from any other peer the header is ignored (a client could name anyone).
    let trustedProxies: Set<String>
    let logger: Logger
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    static let realm = #"Bearer realm="datenwerk""#

    init(connections: ServerConnections, oidc: OIDCVerifier?, oidcProblem: String? = nil, limiter: FailureLimiter,
         tenants: [String: String], trustedProxies: Set<String> = [], logger: Logger) {
        self.connections = connections
        self.oidc = oidc
        self.oidcProblem = oidcProblem
        self.limiter = limiter
        self.tenants = tenants
        self.trustedProxies = trustedProxies
        self.logger = logger
    }

    /// The client whose wrong tokens are counted: the peer address, or — from a trusted proxy — the address the
    /// proxy appended last to `X-Forwarded-For`.
    func client(_ request: Request, context: ServerRequestContext) -> String {
        let peer = context.remoteAddress?.ipAddress ?? "unknown"
        guard trustedProxies.contains(peer), let forwarded = request.headers[Self.forwardedFor],
              let last = forwarded.split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }), !last.isEmpty, last.count <= 64 else {
            return peer
        }
        return last
    }

    /// The tenant (AGS) of a pipeline, for `tenant:<ags>` scopes.
    func tenant(ofPipeline name: String) -> String? { tenants[name] }

    /// Let in, or the answer to send instead. `restricted`: the answers are marked `Cache-Control: private, no-store`
    /// (a restricted dataset's 401/403 must not be cached or shared). Throws only when the database cannot be asked.
    func check(_ request: Request, context: ServerRequestContext, need: AccessNeed, alternatives: [Alternative] = [],
               restricted: Bool = false) async throws -> Result<Principal, ResponseError> {
        let client = client(request, context: context)
        var extra: HTTPFields = restricted ? [.cacheControl: "private, no-store", .vary: "Authorization"] : [.cacheControl: "no-store"]
        if let wait = limiter.retryAfter(client) {
            // Debug only: a guesser that goes on would fill the log (the warning came when it was held off).
            logger.debug("access: \(need) from \(client) refused: too many wrong tokens lately (429, retry after \(wait) s)")
            extra[.retryAfter] = String(wait)
            return .failure(ResponseError(.problem(.tooManyRequests,
                "too many wrong tokens from this address; try again in \(wait) second\(wait == 1 ? "" : "s")", headers: extra)))
        }
        guard let presented = PushIngest.token(request.headers), !presented.isEmpty else {
            extra[.wwwAuthenticate] = Self.realm
            return .failure(ResponseError(.problem(.unauthorized,
                "no token: send it as `Authorization: Bearer <token>` or `X-Datenwerk-Token: <token>` (a token with \(need), its tenant's scope or admin)",
                headers: extra)))
        }
        for alternative in alternatives where PushIngest.constantTimeEqual(presented, alternative.secret) {
            return .success(Principal(description: "the token of \(alternative.label)"))
        }
        let scopes: [AccessScope]
        let who: String
        if APIToken.looksLikeOne(presented), let token = try await TokenStore.active(hash: APIToken.hash(presented), connections: connections) {
            scopes = AccessScope.parseKnown(token.scopes)
            who = "API token #\(token.id)"
        } else if OIDCVerifier.looksLikeJWT(presented), let oidc {
            do {
                scopes = try await oidc.verify(presented)
                who = "an OIDC token"
            } catch .keysUnavailable(let why) {
                logger.error("access: \(need) from \(client): OIDC keys unavailable: \(why)")
                extra[.retryAfter] = "30"
                return .failure(ResponseError(.problem(.serviceUnavailable,
                    "bearer tokens cannot be checked at the moment (the identity provider's keys are unavailable); try again later", headers: extra)))
            } catch .invalid(let why) {
                return .failure(refuse(need, client: client, why: "OIDC token refused: \(why)", extra: extra))
            }
        } else {
            if OIDCVerifier.looksLikeJWT(presented), let oidcProblem { logger.error("access: a bearer JWT cannot be checked: \(oidcProblem)") }
            return .failure(refuse(need, client: client, why: "unknown, revoked or expired token", extra: extra))
        }
        guard scopes.grant(need) else {
            logger.warning("access: \(who) from \(client) lacks \(need) (403)")
            extra[.wwwAuthenticate] = #"\#(Self.realm), error="insufficient_scope", scope="\#(need)""#
            // The tenant's AGS is not named: a token of another tenant need not learn whose the pipeline or dataset is.
            return .failure(ResponseError(.problem(.forbidden,
                "the token does not allow this: it needs the scope \(need), its tenant's scope or admin", headers: extra)))
        }
        return .success(Principal(description: who))
    }

    /// 401 for a credential that is not valid; counts against the client.
    private func refuse(_ need: AccessNeed, client: String, why: String, extra: HTTPFields) -> ResponseError {
        limiter.recordFailure(client)
        logger.warning("access: \(need) from \(client): \(why) (401)")
        if let wait = limiter.retryAfter(client) {
            logger.warning("access: \(client) is held off for \(wait) s: \(limiter.policy.burst) wrong tokens within \(limiter.policy.window) (429 until then)")
        }
        var headers = extra
        headers[.wwwAuthenticate] = #"\#(Self.realm), error="invalid_token""#
        return ResponseError(.problem(.unauthorized, "the token is not valid for '\(need.name)' (unknown, revoked or expired)", headers: headers))
    }
}
