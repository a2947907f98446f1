import DatenwerkCore

/// Runs a connector run one batch ahead on another task: while the caller (the sink: COPY encoding, the database)
/// works on batch N, batch N + 1 is read, decoded and mapped on the other core. Never more than one batch waits, so
/// memory stays bounded by two batches; batches, errors and the run's figures come out in the same order as without it.
final class ReadAheadRun: ConnectorRun {
    /// The wrapped run, handed to one task at a time.
    ///
    /// `@unchecked Sendable`, justified: only the one task computing the next batch touches `run`; `next()` starts
    /// a task only after it has awaited the previous one, so two never overlap.
    private final class Box: @unchecked Sendable {
        var run: any ConnectorRun
        init(_ run: any ConnectorRun) { self.run = run }
    }

    /// One batch with the run's figures as they were right after it (what the caller would have read then).
    private struct Step: Sendable {
        var batch: ConnectorBatch?
        var bytesRead: Int
        var origins: [String]
        var events: [String]
        var sourceState: [JSONValue.Member]
    }

    private let box: Box
    private var pending: Task<Step, any Error>?
    private var finished = false
    private(set) var bytesRead: Int
    private(set) var origins: [String]
    private(set) var events: [String] = []
    private(set) var sourceState: [JSONValue.Member] = []

    init(_ run: any ConnectorRun) {
        box = Box(run)
        bytesRead = run.bytesRead
        origins = run.origins
        // The first batch is read and mapped while the sink gets ready (its transaction, the tenant's stations,
        // partitions and series: ~20 ms of round trips before it asks for the first batch).
        pending = Self.start(box)
    }

    deinit { pending?.cancel() }

    func next() async throws -> ConnectorBatch? {
        if finished { return nil }
        let task = pending ?? Self.start(box)
        pending = nil
        let step: Step
        do {
            step = try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch {
            finished = true
            throw error
        }
        bytesRead = step.bytesRead
        origins = step.origins
        events = step.events
        sourceState = step.sourceState
        if step.batch == nil { finished = true } else { pending = Self.start(box) }
        return step.batch
    }

    private static func start(_ box: Box) -> Task<Step, any Error> {
        Task {
            let batch = try await box.run.next()
            let run = box.run
            // `sourceState` is read after the last batch only (it may be built on each call: a file source's
            // memory of every file in its folder).
            return Step(batch: batch, bytesRead: run.bytesRead, origins: run.origins, events: run.events, sourceState: batch == nil ? run.sourceState : [])
        }
    }
}
