import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Thrown instead of waiting forever when the server closed the connection under an operation.
package struct ConnectionLost: Error, CustomStringConvertible {
    package var description: String {
        "the connection to PostgreSQL closed during the operation (server restart or network failure); nothing of it was committed"
    }
}

/// One connection, with every operation bounded by the connection's life.
///
/// postgres-nio 1.33 can leave an operation waiting forever once its connection is gone:
/// - a query written to a channel that has already closed: the write fails and the query's promise is
///   dropped with it (`PostgresConnection.query` writes with `promise: nil`), so `ROLLBACK` after a server
///   restart never returns;
/// - a COPY write waiting for the socket to become writable when the server's FATAL error arrives: the state
///   machine stores the error and drops the waiting promise.
///
/// `GuardedConnection` refuses operations on a closed connection at once, and gives up on one still pending
/// `grace` after the close, so a server restart fails the run with an error instead of hanging the worker.
/// An abandoned operation's task stays suspended (it holds a closed connection and one buffer); nothing of
/// its transaction was committed.
package struct GuardedConnection: Sendable {
    package let connection: PostgresConnection
    private let watch: CloseWatch

    package init(_ connection: PostgresConnection, grace: Duration = .seconds(1)) {
        self.connection = connection
        self.watch = CloseWatch.of(connection, grace: grace)
    }

    package var isClosed: Bool { connection.isClosed || watch.isGone }

    @discardableResult
    package func query(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        let connection = self.connection
        return try await watch.bounded { try await connection.query(query, logger: logger, file: file, line: line) }
    }

    /// All rows of `query`, read whole without back-pressure (the row stream of postgres-nio 1.33.2 traps when
    /// its backend dies while it waits for demand; collecting never leaves it waiting). Keep results bounded
    /// (`LIMIT`): the rows are held in memory.
    package func collect(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        let connection = self.connection
        return try await watch.bounded { try await connection.query(query, logger: logger).get().rows }
    }

    /// `COPY table (columns) FROM STDIN` in text or binary format; every write is bounded by the connection's life.
    /// For `.binary`, the stream's header and trailer are written here: `writeData` writes rows only.
    ///
    /// postgres-nio 1.33 traps (`preconditionFailure`) when a COPY write, `CopyDone` or `CopyFail` reaches its
    /// state machine after the connection closed but before its handler left the pipeline. So every call into
    /// the COPY runs on the connection's event loop, in the same job as a check that the channel is still
    /// open; after a close it first lets the event loop remove the handler (one hop through its queue), and the
    /// library then fails cleanly with "connection closed". `writeData` itself runs off the event loop.
    package func copyFrom(table: String, columns: [String], format: CopyFormat = .text, logger: Logger,
                          writeData: (Writer) async throws -> Void) async throws {
        let (connection, watch) = (self.connection, self.watch)
        let loop = EventLoopExecutor(connection.eventLoop)
        try await withTaskExecutorPreference(loop) {
            // On the event loop: nothing can close the channel between this check and the COPY's first write.
            guard !connection.isClosed, !watch.isGone else { throw ConnectionLost() }
            try await connection.copyFrom(table: table, columns: Self.copyColumns(columns, format: format), logger: logger) { writer in
                do {
                    try await withTaskExecutorPreference(globalConcurrentExecutor) {
                        let w = Writer(writer: writer, watch: watch, loop: loop, connection: connection)
                        if format == .binary { try await w.write(ByteBuffer(bytes: CopyBinary.header)) }
                        try await writeData(w)
                        if format == .binary { try await w.write(ByteBuffer(bytes: CopyBinary.trailer)) }
                    }
                } catch {
                    try await loop.settle(connection)
                    throw error
                }
                // Back on the event loop: `CopyDone` follows in this job, so the channel must be open now.
                if connection.isClosed {
                    try await loop.settle(connection)
                    throw ConnectionLost()
                }
            }
        }
    }

    /// The column list for postgres-nio's `copyFrom`, which offers the text format only. It puts each name
    /// between double quotes as given and ends the statement with `FROM STDIN WITH (FORMAT text)`; for binary,
    /// the last name closes the list itself, names the format and comments out the library's ending:
    /// `COPY "t"("a","b") FROM STDIN WITH (FORMAT binary) --") FROM STDIN WITH (FORMAT text)`. The names are
    /// our own constants. Should a later postgres-nio escape quotes in names, the statement names a column that
    /// does not exist and the COPY fails at once (`CopyBinaryTests` would say so); no data could be misread.
    static func copyColumns(_ columns: [String], format: CopyFormat) -> [String] {
        guard format == .binary else { return columns }
        precondition(!columns.isEmpty && columns.allSatisfy { !$0.contains("\"") && !$0.contains("-") }, "binary COPY needs plain column names")
        var named = columns
        named[named.count - 1] += "\") FROM STDIN WITH (FORMAT binary) --"
        return named
    }

    package struct Writer: Sendable {
        let writer: PostgresCopyFromWriter
        let watch: CloseWatch
        let loop: EventLoopExecutor
        let connection: PostgresConnection

        package func write(_ buffer: ByteBuffer) async throws {
            let (writer, loop, connection) = (self.writer, self.loop, self.connection)
            try await watch.bounded {
                try await withTaskExecutorPreference(loop) {
                    guard !connection.isClosed else {
                        try await loop.settle(connection)
                        throw ConnectionLost()
                    }
                    try await writer.write(buffer)
                }
            }
        }
    }
}

/// Runs tasks on a NIO event loop, so a check of the channel and a call into postgres-nio's state machine
/// happen in one event-loop job.
final class EventLoopExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }

    /// After a close: one hop through the event loop's queue, behind the removal of the connection's handlers.
    func settle(_ connection: PostgresConnection) async throws {
        guard connection.isClosed else { return }
        try await eventLoop.submit {}.get()
    }
}

/// Fails the operations still pending on a connection `grace` after it closed. One per open connection
/// (a pooled connection serves many transactions: one callback on its close, not one per use).
final class CloseWatch: Sendable {
    private static let registry = Mutex<[ObjectIdentifier: CloseWatch]>([:])

    static func of(_ connection: PostgresConnection, grace: Duration) -> CloseWatch {
        let key = ObjectIdentifier(connection)
        let (watch, isNew) = registry.withLock { registry in
            if let known = registry[key] { return (known, false) }
            let watch = CloseWatch(connection)
            registry[key] = watch
            return (watch, true)
        }
        if isNew {
            // Outside the lock: the callback runs at once when the connection has already closed.
            connection.closeFuture.whenComplete { _ in
                _ = registry.withLock { $0.removeValue(forKey: key) }
                Task {
                    try? await Task.sleep(for: grace)
                    watch.giveUp()
                }
            }
        }
        return watch
    }

    private struct State {
        var gone = false
        var nextID = 0
        var pending: [Int: @Sendable (any Error) -> Void] = [:]
    }

    private let state = Mutex(State())
    private let isClosed: @Sendable () -> Bool

    private init(_ connection: PostgresConnection) {
        isClosed = { connection.isClosed }
    }

    var isGone: Bool { state.withLock { $0.gone } }

    private func giveUp() {
        let failing = state.withLock { state in
            state.gone = true
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for fail in failing { fail(ConnectionLost()) }
    }

    private func register(_ fail: @escaping @Sendable (any Error) -> Void) -> Int? {
        state.withLock { state in
            guard !state.gone else { return nil }
            state.nextID += 1
            state.pending[state.nextID] = fail
            return state.nextID
        }
    }

    private func unregister(_ id: Int) {
        _ = state.withLock { $0.pending.removeValue(forKey: id) }
    }

    /// Runs `operation` in a task of its own and returns its result, or throws `ConnectionLost` when the
    /// connection is (or becomes) gone first. Cancelling the caller cancels the operation.
    func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        guard !isClosed(), !isGone else { throw ConnectionLost() }
        let handle = TaskHandle()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let once = ResumeOnce(continuation)
                guard let id = register({ once.resume(.failure($0)) }) else {
                    once.resume(.failure(ConnectionLost()))
                    return
                }
                handle.set(Task {
                    let result = await Result(catching: { try await operation() })
                    self.unregister(id)
                    once.resume(result)
                })
            }
        } onCancel: {
            handle.cancel()
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }

    func resume(_ result: Result<T, any Error>) {
        let taken = continuation.withLock { c in
            defer { c = nil }
            return c
        }
        taken?.resume(with: result)
    }
}

/// The operation's task, for cancellation that may arrive before the task exists.
private final class TaskHandle: Sendable {
    private let state = Mutex<(task: Task<Void, Never>?, cancelled: Bool)>((nil, false))

    func set(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state in
            state.task = task
            return state.cancelled
        }
        if cancelNow { task.cancel() }
    }

    func cancel() {
        let task = state.withLock { state in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
