import DatenwerkCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The new hourly and daily dashboard buckets of a first load, COPYed into `observations_hourly` and
/// `observations_daily` on a second connection beside the load's own (docs/dashboards.md, "What keeping them costs"):
/// the hourly ones *while* the observations are still being COPYed, or — when the load's fresh months get all their
/// indexes after the COPY — held back and COPYed from the load's spools while those indexes are built (`Tail`), and
/// the daily ones then too.
///
/// On a first load of 10-minute data there is one hourly bucket for every six rows, and writing them after the
/// observations made the run ~20 % longer. The load keeps one core busy in PostgreSQL and not quite one in the
/// client, so a second backend writing the buckets meanwhile costs little wall-clock time.
///
/// PostgreSQL has no transaction over two connections, so this is the one place where dashboard aggregates
/// commit *right after* the load instead of inside it:
/// 1. this transaction COPYs the buckets as the load closes them (a bounded channel: the load waits when the
///    second backend falls behind, memory stays bounded);
/// 2. the load's transaction marks its run row `aggregates_pending` (the span of its rows) and commits;
/// 3. this transaction clears the mark and commits.
/// If the process dies between 2 and 3, the run row keeps the mark and the next load of the tenant (or
/// `datenwerk db refresh-aggregates`) recomputes that run's hours and days from `observations`: `repairPending`.
/// The buckets only ever go to keys the load's own transaction does not write (fresh hours and days after the
/// series' stored latest, hours only of series that were not stored as hourly; a run that comes back to a bucket it
/// wrote as new sends nothing), so the two transactions never wait for each other.
/// Anything unexpected — a bucket that exists after all (23505), a station id that moved, the fast path giving
/// way — rolls this transaction back and the load writes the buckets itself from its spool, as before.
final class HourlySideLoad: Sendable {
    private let channel = ChunkChannel(capacity: 16)
    /// What the side COPYs from the load's spools once the channel ends: the hourly buckets held back (`hours`)
    /// and the new daily buckets (`days`). Nil: nothing (the load gave way, or writes them itself).
    private let tail = OneShot<Tail?>()
    struct Tail: Sendable {
        var hours: SpoolSegment?
        var days: SpoolSegment?
    }
    private let copied = OneShot<Bool>()
    private let decision = OneShot<Bool>()
    private let committed = OneShot<Bool>()
    private let runID: Int64

    /// Advisory lock key space of the side transactions (`pg_advisory_xact_lock(key, run id)`): held while one is
    /// open, so a repair can tell a side transaction that is still going from one whose process died.
    static let lockSpace: Int32 = 0x6477_6831  // "dwh1"

    init(database: Database, runID: Int64) {
        self.runID = runID
        let logger = database.logger
        let channel = channel, tail = tail, copied = copied, decision = decision, committed = committed
        Task {
            do {
                try await database.withConnection { connection in
                    try await connection.query("BEGIN", logger: logger)
                    do {
                        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockSpace), \(Int32(truncatingIfNeeded: runID)))", logger: logger)
                        // COPY names its table as one identifier.
                        try await connection.query("SET LOCAL search_path TO datenwerk, public", logger: logger)
                        try await connection.copyFrom(table: "observations_hourly", columns: SeriesAggregates.hourColumns, format: .binary, logger: logger) { writer in
                            while let chunk = await channel.next() { try await writer.write(chunk) }
                            if let hours = await tail.value?.hours { try await hours.read { try await writer.write($0) } }
                        }
                        if let days = await tail.value?.days, !days.isEmpty {
                            try await connection.copyFrom(table: "observations_daily", columns: SeriesAggregates.dayColumns, format: .binary, logger: logger) { writer in
                                try await days.read { try await writer.write($0) }
                            }
                        }
                    } catch {
                        channel.abandon()
                        copied.set(false)
                        logger.info("run \(runID): the hourly buckets' second connection gave way (\(describeDatabaseError(error))); the load writes them itself")
                        if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                        committed.set(false)
                        return
                    }
                    copied.set(true)
                    guard await decision.value else {
                        if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                        committed.set(false)
                        return
                    }
                    try await connection.query("UPDATE datenwerk.runs SET aggregates_pending = NULL WHERE id = \(runID)", logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                    committed.set(true)
                }
            } catch {
                channel.abandon()
                copied.set(false)
                logger.warning("run \(runID): the hourly dashboard buckets did not commit (\(describeDatabaseError(error))); the next load recomputes them")
                committed.set(false)
            }
        }
    }

    /// A chunk of binary COPY rows (`SeriesAggregates.hourColumns`); waits while the channel is full. Dropped once the
    /// side transaction gave way.
    func send(_ chunk: ByteBuffer) async { await channel.send(chunk) }

    /// Ends the channel; the side then COPYs `tail` (read from the spools in its own task, while the load's
    /// connection goes on: the fresh tables' index builds) and reports through `copiedAll`.
    func finish(tail: Tail?) {
        self.tail.set(tail)
        channel.finish()
    }

    /// True when everything sent and the tail are in the side transaction.
    func copiedAll() async -> Bool { await copied.value }

    /// The load's transaction committed (with the run's `aggregates_pending` mark): the side commits too.
    /// False when it could not (the mark stays for `repairPending`).
    func commit() async -> Bool {
        decision.set(true)
        return await committed.value
    }

    /// The load did not commit, or wrote the buckets itself after all.
    func rollBack() async {
        tail.set(nil)
        channel.abandon()
        decision.set(false)
        _ = await committed.value
    }
}

/// Where a load keeps its side transaction, once one is open.
final class SideSlot {
    var load: HourlySideLoad?
}

/// A bounded single-producer, single-consumer channel of byte chunks. The producer waits while `capacity`
/// chunks wait; after `abandon` (the consumer failed) it drops them instead.
package final class ChunkChannel: Sendable {
    private struct State {
        var chunks: [ByteBuffer] = []
        var head = 0
        var finished = false
        var abandoned = false
        var consumer: CheckedContinuation<ByteBuffer?, Never>?
        var producer: CheckedContinuation<Void, Never>?
        var waiting: Int { chunks.count - head }
    }

    private let state = Mutex(State())
    private let capacity: Int

    package init(capacity: Int) { self.capacity = capacity }

    package func send(_ chunk: ByteBuffer) async {
        enum Step { case handed(CheckedContinuation<ByteBuffer?, Never>), queued, full, dropped }
        let step: Step = state.withLock { s in
            if s.abandoned || s.finished { return .dropped }
            if let c = s.consumer {
                s.consumer = nil
                return .handed(c)
            }
            s.chunks.append(chunk)
            return s.waiting >= capacity ? .full : .queued
        }
        switch step {
        case .handed(let c): c.resume(returning: chunk)
        case .queued, .dropped: break
        case .full:
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.abandoned || s.waiting < capacity { return true }
                    s.producer = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
    }

    package func finish() {
        let consumer: CheckedContinuation<ByteBuffer?, Never>? = state.withLock { s in
            s.finished = true
            defer { s.consumer = nil }
            return s.consumer
        }
        consumer?.resume(returning: nil)
    }

    package func abandon() {
        let (producer, consumer) = state.withLock { s in
            s.abandoned = true
            s.chunks = []
            s.head = 0
            defer { s.producer = nil; s.consumer = nil }
            return (s.producer, s.consumer)
        }
        producer?.resume()
        consumer?.resume(returning: nil)
    }

    package func next() async -> ByteBuffer? {
        await withCheckedContinuation { (c: CheckedContinuation<ByteBuffer?, Never>) in
            enum Step { case chunk(ByteBuffer, CheckedContinuation<Void, Never>?), end, wait }
            let step: Step = state.withLock { s in
                if s.abandoned { return .end }
                if s.waiting > 0 {
                    let chunk = s.chunks[s.head]
                    s.head += 1
                    if s.head == s.chunks.count {
                        s.chunks.removeAll(keepingCapacity: true)
                        s.head = 0
                    }
                    let producer = s.producer
                    s.producer = nil
                    return .chunk(chunk, producer)
                }
                if s.finished { return .end }
                s.consumer = c
                return .wait
            }
            switch step {
            case .chunk(let chunk, let producer):
                producer?.resume()
                c.resume(returning: chunk)
            case .end: c.resume(returning: nil)
            case .wait: break
            }
        }
    }
}

/// A value set once (later sets are ignored) that any number of tasks can wait for.
final class OneShot<Value: Sendable>: Sendable {
    private let state = Mutex<(Value?, [CheckedContinuation<Value, Never>])>((nil, []))

    func set(_ value: Value) {
        let waiters: [CheckedContinuation<Value, Never>] = state.withLock { s in
            guard s.0 == nil else { return [] }
            s.0 = value
            defer { s.1 = [] }
            return s.1
        }
        for w in waiters { w.resume(returning: value) }
    }

    var value: Value {
        get async {
            await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
                let now: Value? = state.withLock { s in
                    if let v = s.0 { return v }
                    s.1.append(c)
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        }
    }
}
