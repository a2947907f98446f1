import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The database could not be reached in time: the HTTP server answers 503 with `Retry-After`.
package struct DatabaseUnavailable: Error, CustomStringConvertible {
    /// Why, for the log (never sent to clients: it may name hosts and roles).
    package var reason: String
    /// The database did not answer in time (rather than refusing or failing).
    package var timedOut: Bool
    package init(_ reason: String, timedOut: Bool = false) {
        self.reason = reason
        self.timedOut = timedOut
    }
    package var description: String { "the database is unavailable: \(reason)" }
}

/// The connections `datenwerk serve` answers requests with: direct connections, opened on demand, kept idle
/// for reuse, with every wait bounded.
///
/// Why not the pool (`PostgresClient`): while the server is down the pool keeps a request waiting for a
/// connection for as long as its circuit breaker allows (a minute and more), and after a long outage it
/// retries only on its back-off (up to 60 s), so service would return late. Here a request either gets a
/// connection within `acquireTimeout` or fails with `DatabaseUnavailable`, and the first request after the
/// server is back connects at once. When a connection succeeds after failures, `onRecovered` runs (the
/// server resets the load pool then, so pushes and workers come back as quickly).
///
/// Rows are read whole per statement (`collect`), never through postgres-nio's back-pressured row stream:
/// postgres-nio 1.33.2 traps (`RowStreamStateMachine`, "waitingForDemand") when a backend dies while a
/// stream waits for demand, which a slow download client causes. Large results are read in keyset pages.
package final class ServerConnections: Sendable {
    package static let retryAfterSeconds = 5
    /// `application_name` of these connections in `pg_stat_activity`.
    package static let applicationName = "datenwerk-serve"
    package let configuration: PostgresConnection.Configuration
    package let limit: Int
    package let acquireTimeout: Duration
    package let logger: Logger
    private let onRecovered: @Sendable () -> Void
    private let setupError: String?
    private let state = Mutex(State())

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var nextWaiter = 0
        var waiters: [(id: Int, wake: @Sendable () -> Void)] = []
        var failing = false
        var closed = false
    }

    package init(_ location: DatabaseLocation, limit: Int = 16, acquireTimeout: Duration = .seconds(5), logger: Logger,
                onRecovered: @escaping @Sendable () -> Void = {}) {
        var configuration: PostgresConnection.Configuration
        var setupError: String?
        if let socket = location.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: location.username, password: location.password, database: location.database)
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if location.requireTLS {
                do { tls = .require(try .init(configuration: .makeClientConfiguration())) } catch {
                    setupError = "TLS could not be set up: \(error)"
                }
            }
            configuration = .init(host: location.host ?? "localhost", port: location.port, username: location.username,
                                  password: location.password, database: location.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(Int64(max(1, acquireTimeout.components.seconds - 1)))
        configuration.options.additionalStartupParameters = [("application_name", Self.applicationName)]
        self.configuration = configuration
        self.setupError = setupError
        self.limit = max(1, limit)
        self.acquireTimeout = acquireTimeout
        self.logger = logger
        self.onRecovered = onRecovered
    }

    /// Connections to the same database as `database`'s pool; when a connection succeeds after failures, the
    /// pool is reset (`Database.resetPool`) so that loads do not wait out its back-off.
    package convenience init(database: Database, limit: Int = 16, acquireTimeout: Duration = .seconds(5)) {
        self.init(database.location, limit: limit, acquireTimeout: acquireTimeout, logger: database.logger,
                  onRecovered: { database.resetPool() })
    }

    /// Whether the last attempt to connect failed (for `/health` without waiting).
    package var isFailing: Bool { state.withLock { $0.failing } }

    /// Runs `body` with one connection; throws `DatabaseUnavailable` when none can be had within `acquireTimeout`.
    /// A connection that closed, or whose statement failed with a connection error, is not reused.
    package func withConnection<T: Sendable>(_ body: (GuardedConnection) async throws -> T) async throws -> T {
        let lease = try await self.lease()
        do {
            let result = try await body(lease.connection)
            lease.release(reusable: true)
            return result
        } catch {
            lease.release(reusable: !isConnectionError(error) && !(error is CancellationError))
            throw error
        }
    }

    /// One connection until `release` (for work that outlives a call, such as a download whose cursor is
    /// opened before the answer's head and read while its body is written). A lease dropped without `release`
    /// closes its connection.
    package func lease() async throws -> Lease {
        Lease(try await acquire(), owner: self)
    }

    package final class Lease: Sendable {
        package let connection: GuardedConnection
        private let raw: PostgresConnection
        private let owner: ServerConnections
        private let released = Atomic(false)

        init(_ raw: PostgresConnection, owner: ServerConnections) {
            self.raw = raw
            self.owner = owner
            self.connection = GuardedConnection(raw)
        }

        /// Gives the connection back (`reusable`: to the idle ones; otherwise it is closed). Only the first call counts.
        package func release(reusable: Bool) {
            let first = released.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
            if first { owner.release(raw, reusable: reusable) }
        }

        deinit { release(reusable: false) }
    }

    /// All rows of one statement, read whole (see the type's note on postgres-nio's row stream). For reads and
    /// idempotent statements only: one that fails because its connection died (an idle connection whose backend
    /// was terminated or restarted before the closing reached this process) runs once more on a new connection,
    /// so the first request after such a loss is answered instead of failing (`/health` answered 503 right after
    /// backends were terminated under load, though the database was there).
    package func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await withConnection { try await $0.collect(query, logger: logger) }
        } catch where isConnectionError(error) {
            logger.debug("a database connection had died; the statement runs again on a new one (\(describeDatabaseError(error)))")
            return try await withConnection { try await $0.collect(query, logger: logger) }
        }
    }

    /// Closes the idle connections; later requests fail.
    package func shutdown() async {
        let idle = state.withLock { s in
            s.closed = true
            let idle = s.idle
            s.open -= idle.count
            s.idle = []
            return idle
        }
        for connection in idle { try? await connection.close() }
    }

    // MARK: Acquire and release

    private enum Step {
        case use(PostgresConnection)
        case connect
        case wait(Int)
        case closed
    }

    private func acquire() async throws -> PostgresConnection {
        let deadline = ContinuousClock.now + acquireTimeout
        while true {
            try Task.checkCancellation()
            let step: Step = state.withLock { s in
                if s.closed { return .closed }
                while let connection = s.idle.popLast() {
                    if !connection.isClosed { return .use(connection) }
                    s.open -= 1
                }
                if s.open < limit {
                    s.open += 1
                    return .connect
                }
                s.nextWaiter += 1
                return .wait(s.nextWaiter)
            }
            switch step {
            case .closed:
                throw DatabaseUnavailable("the server is shutting down")
            case .use(let connection):
                return connection
            case .connect:
                return try await connect(deadline: deadline)
            case .wait(let id):
                guard ContinuousClock.now < deadline else {
                    throw DatabaseUnavailable("all \(limit) database connections stayed busy for \(acquireTimeout)", timedOut: true)
                }
                await waitForRelease(id: id, until: deadline)
            }
        }
    }

    private func connect(deadline: ContinuousClock.Instant) async throws -> PostgresConnection {
        if let setupError {
            state.withLock { $0.open -= 1 }
            throw DatabaseUnavailable(setupError)
        }
        let configuration = self.configuration
        let logger = self.logger
        let timeout = max(deadline - .now, .milliseconds(100))
        do {
            let connection = try await withDeadline(timeout, what: "connecting to PostgreSQL", abandoned: { Self.close($0) }) {
                try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                                                     id: Int.random(in: 1...Int.max), logger: logger).get()
            }
            let recovered = state.withLock { s in
                defer { s.failing = false }
                return s.failing
            }
            if recovered {
                logger.notice("the database answers again")
                onRecovered()
            }
            return connection
        } catch {
            let first = state.withLock { s in
                s.open -= 1
                defer { s.failing = true }
                return !s.failing
            }
            wakeOne()
            let reason = (error as? DatabaseUnavailable)?.reason ?? describeDatabaseError(error)
            if first { logger.error("the database is unavailable: \(reason)") }
            throw DatabaseUnavailable(reason, timedOut: (error as? DatabaseUnavailable)?.timedOut ?? false)
        }
    }

    private func release(_ connection: PostgresConnection, reusable: Bool) {
        let keep = reusable && !connection.isClosed
        let closeIt = state.withLock { s -> Bool in
            if keep, !s.closed {
                s.idle.append(connection)
                return false
            }
            s.open -= 1
            return true
        }
        if closeIt { Self.close(connection) }
        wakeOne()
    }

    /// Closes without waiting, keeping the connection alive until it is closed: postgres-nio asserts (a trap in
    /// debug builds) when a `PostgresConnection` is deinitialised while still open.
    private static func close(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    private func wakeOne() {
        let wake = state.withLock { s in s.waiters.isEmpty ? nil : s.waiters.removeFirst().wake }
        wake?()
    }

    private func waitForRelease(id: Int, until deadline: ContinuousClock.Instant) async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        state.withLock { $0.waiters.append((id, { continuation.finish() })) }
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            continuation.finish()
        }
        for await _ in stream {}
        timer.cancel()
        state.withLock { s in s.waiters.removeAll { $0.id == id } }
    }
}

/// Runs `operation`, or throws `DatabaseUnavailable` when it has not finished within `timeout`. The operation
/// runs in a task of its own and is cancelled then; the caller does not wait for it to notice (an
/// `EventLoopFuture` does not), and `abandoned` receives a value it delivers later (e.g. to close a connection).
package func withDeadline<T: Sendable>(_ timeout: Duration, what: String, abandoned: @escaping @Sendable (T) -> Void = { _ in },
                                      _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let gate = FirstResult<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            gate.set(continuation)
            let work = Task {
                let result = await Result(catching: { try await operation() })
                if !gate.resume(result), case .success(let late) = result { abandoned(late) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if gate.resume(.failure(DatabaseUnavailable("\(what) took longer than \(timeout)", timedOut: true))) { work.cancel() }
            }
            gate.onDone { timer.cancel() }
            gate.onCancel { work.cancel() }
        }
    } onCancel: {
        gate.cancel()
    }
}

/// The first of several results resumes a continuation; the later ones are refused.
final class FirstResult<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var done = false
        var cancelled = false
        var doneActions: [@Sendable () -> Void] = []
        var cancelActions: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let cancelNow = state.withLock { state in
            state.continuation = continuation
            return state.cancelled
        }
        if cancelNow { _ = resume(.failure(CancellationError())) }
    }

    /// True when this result was the first.
    @discardableResult
    func resume(_ result: Result<T, any Error>) -> Bool {
        let (taken, actions) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [@Sendable () -> Void]) in
            guard !state.done, let c = state.continuation else { return (nil, []) }
            state.done = true
            state.continuation = nil
            defer { state.doneActions = [] }
            return (c, state.doneActions)
        }
        guard let taken else { return false }
        taken.resume(with: result)
        for action in actions { action() }
        return true
    }

    func onDone(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.done { return true }
            state.doneActions.append(action)
            return false
        }
        if now { action() }
    }

    func onCancel(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.cancelled { return true }
            state.cancelActions.append(action)
            return false
        }
        if now { action() }
    }

    func cancel() {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            state.cancelled = true
            defer { state.cancelActions = [] }
            return state.cancelActions
        }
        for action in actions { action() }
        _ = resume(.failure(CancellationError()))
    }
}
