import DatenwerkCore
import Foundation
import Testing

/// Scopes of API and OIDC tokens (docs/access.md) and the wrong-token limit, without a server.
@Suite struct AccessScopeTests {
    @Test func scopesParseAndPrintBack() throws {
        for text in ["admin", "ingest:ttn-emden", "run:musterstadt-klima", "read:musterstadt-intern", "tenant:05515000"] {
            #expect(try AccessScope.parse(text).description == text)
        }
        #expect(try AccessScope.parse(" admin ") == .admin)
        for bad in ["", "root", "ingest:", "ingest", "read:*", "tenant:0551 5000", "write:klima", "run:a:b", "read:a/b", "Admin"] {
            #expect(throws: AccessScope.Invalid.self, "\(bad)") { try AccessScope.parse(bad) }
        }
        #expect(AccessScope.parseKnown(["openid", "profile", "ingest:klima", "offline_access", "admin"]) == [.ingest("klima"), .admin])
    }

    @Test func eachScopeGrantsExactlyItsAction() throws {
        let ingest = AccessNeed(.ingest, "ttn-emden", tenant: "03402000")
        let run = AccessNeed(.run, "musterstadt-klima", tenant: "05515000")
        let read = AccessNeed(.read, "musterstadt-intern", tenant: "05515000")
        let all = [ingest, run, read]
        let table: [(AccessScope, [AccessNeed])] = [
            (.admin, all),
            (.ingest("ttn-emden"), [ingest]),
            (.run("musterstadt-klima"), [run]),
            (.read("musterstadt-intern"), [read]),
            (.tenant("05515000"), [run, read]),
            (.tenant("03402000"), [ingest]),
            // Same name, other action: nothing. A dataset named like a pipeline is not that pipeline.
            (.ingest("musterstadt-klima"), []),
            (.read("musterstadt-klima"), []),
            (.run("ttn-emden"), []),
            (.tenant("0551500"), []),
        ]
        for (scope, granted) in table {
            for need in all {
                #expect(scope.grants(need) == granted.contains(need), "\(scope) → \(need)")
            }
        }
        // A pipeline without a tenant is granted by no tenant scope, not even an empty one.
        let orphan = AccessNeed(.run, "x", tenant: "")
        #expect(orphan.tenant == nil)
        #expect(![AccessScope.tenant("05515000")].grant(orphan))
        #expect([AccessScope.read("a"), .admin].grant(orphan))
        #expect(run.description == "run:musterstadt-klima")
    }

    @Test func tenFailuresAMinuteThen429UntilOneIsForgiven() {
        let limiter = FailureLimiter(.init(burst: 10, window: .seconds(60)))
        let t0 = ContinuousClock.now
        for i in 0..<10 {
            #expect(limiter.retryAfter("10.0.0.1", now: t0) == nil, "failure \(i)")
            limiter.recordFailure("10.0.0.1", now: t0)
        }
        #expect(limiter.retryAfter("10.0.0.1", now: t0) == 6)
        #expect(limiter.retryAfter("10.0.0.1", now: t0 + .seconds(4)) == 2)
        // Another client is not affected.
        #expect(limiter.retryAfter("10.0.0.2", now: t0) == nil)
        // After 6 s one failure is forgiven: one more try, then held off again.
        #expect(limiter.retryAfter("10.0.0.1", now: t0 + .seconds(6)) == nil)
        limiter.recordFailure("10.0.0.1", now: t0 + .seconds(6))
        #expect(limiter.retryAfter("10.0.0.1", now: t0 + .seconds(6)) == 6)
        // A minute later everything is forgiven.
        #expect(limiter.retryAfter("10.0.0.1", now: t0 + .seconds(66)) == nil)
    }

    @Test func theTableIsBounded() {
        let limiter = FailureLimiter(.init(burst: 3, window: .seconds(60), maxClients: 100))
        let t0 = ContinuousClock.now
        for i in 0..<1000 { limiter.recordFailure("client-\(i)", now: t0 + .milliseconds(i)) }
        #expect(limiter.trackedClients <= 100)
        // The newest clients are remembered; buckets that refilled are dropped first.
        limiter.recordFailure("client-999", now: t0 + .seconds(1)); limiter.recordFailure("client-999", now: t0 + .seconds(1))
        #expect(limiter.retryAfter("client-999", now: t0 + .seconds(1)) != nil)
        for i in 0..<100 { limiter.recordFailure("late-\(i)", now: t0 + .seconds(600)) }
        #expect(limiter.trackedClients <= 100)
        #expect(limiter.retryAfter("client-999", now: t0 + .seconds(600)) == nil)
    }
}
