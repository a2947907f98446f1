import DatenwerkCore
import Synchronization

/// Counts of one run, as the runner sees them.
public struct RunTotals: Sendable, Hashable {
    public var recordsRead = 0
    public var observations = 0
    public var quarantined = 0
    public var skipped = 0
    public var bytes = 0
    /// Latest phenomenon start seen (µs UTC), for the checkpoint.
    public var maxPhenomenonStart: Int64?
    public var origins: [String] = []
    /// Retries of HTTP requests during the run (for the run history).
    public var retries: [String] = []
    /// Other things the run history should show (e.g. "304 not modified").
    public var events: [String] = []
    /// What the source wants remembered for the next run (HTTP validators, cursors), merged into the checkpoint.
    public var sourceState: [JSONValue.Member] = []

    public init() {}
}

/// What the sink did with the staged items.
public struct LoadResult: Sendable, Hashable {
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    public var stations = 0
    public init(inserted: Int = 0, updated: Int = 0, unchanged: Int = 0, stations: Int = 0) {
        self.inserted = inserted
        self.updated = updated
        self.unchanged = unchanged
        self.stations = stations
    }
}

/// Why and for what a run happens: passed to the sink so the run row, the job and the checkpoint agree.
public struct RunContext: Sendable {
    /// manual, scheduled, backfill, push, dry-run, test …
    public var trigger: String
    /// The job (datenwerk.jobs) this run executes; the sink finishes it in the run's own transaction.
    public var jobID: Int64?
    /// A backfill chunk, half-open [from, to) in µs UTC: observations outside are dropped, and the run
    /// moves the backfill checkpoint, never the live cursor.
    public var window: Range<Int64>?

    /// A replay of quarantined records (`datenwerk quarantine replay`): the stored records are the input,
    /// the sink removes the ones that load from quarantine, and no checkpoint moves.
    public var replay: QuarantineReplay?

    public init(trigger: String = "manual", jobID: Int64? = nil, window: Range<Int64>? = nil, replay: QuarantineReplay? = nil) {
        self.trigger = trigger
        self.jobID = jobID
        self.window = window
        self.replay = replay
    }

    /// The `checkpoints` row this run writes.
    public func checkpointKey(_ pipeline: String) -> String { window == nil ? pipeline : pipeline + "#backfill" }
    /// A replay reads no source, so it has nothing to remember for the next run.
    public var writesCheckpoint: Bool { replay == nil }
}

/// Where normalised items go. A sink loads one run's items in ONE transaction together with the run's
/// outcome and checkpoint, so a run either lands completely or not at all.
public protocol ObservationSink: Sendable {
    /// Records that a run started; returns its id.
    func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64
    /// Streams every batch from `next` into the store, then commits data, run row and checkpoint together.
    /// `totals` is read after the last batch.
    func load(
        runID: Int64, pipeline: PipelineSpec, context: RunContext,
        next: () async throws -> [StagedItem]?,
        totals: () -> RunTotals
    ) async throws -> LoadResult
    /// The cursor stored by the last successful run under `key` (nil: none yet).
    func checkpoint(_ key: String) async throws -> JSONValue?
    /// Marks a run failed; keeps the checkpoint; stores the quarantined records seen so far (diagnostics).
    func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws
}

extension ObservationSink {
    public func checkpoint(_ key: String) async throws -> JSONValue? { nil }
}

/// Why a run failed: the step, a stable code, the message, and the cause it came from (kept, not flattened to
/// text, so that a caller can decide on the cause — e.g. push ingest on the SQLSTATE — without parsing words).
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    public enum Step: String, Sendable { case configure, extract, transform, load }

    /// What kind of failure, for programs (logs, metrics, retry decisions); the message is for people.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The pipeline names a connector this build does not have.
        public static let connectorMissing = Code(rawValue: "connector-missing")
        /// Neither a connector nor a source with observations.
        public static let noSource = Code(rawValue: "no-source")
        /// The connector or mapping refused its configuration at start.
        public static let configuration = Code(rawValue: "configuration")
        /// The source could not be read (HTTP, file, format).
        public static let source = Code(rawValue: "source")
        /// A bad record with `on_bad_record: fail`.
        public static let badRecord = Code(rawValue: "bad-record")
        /// More than `max_bad_records`.
        public static let tooManyBadRecords = Code(rawValue: "too-many-bad-records")
        /// The database refused or went away (see `sqlState`).
        public static let database = Code(rawValue: "database")
        /// Anything else the sink threw.
        public static let load = Code(rawValue: "load")
    }

    public var step: Step
    public var code: Code
    public var message: String
    /// The error this one was made from, if any.
    public var underlying: (any Error & Sendable)?
    /// The SQLSTATE when the database refused the load (e.g. `23514`, `54000`).
    public var sqlState: String?

    public init(step: Step, code: Code, message: String, underlying: (any Error & Sendable)? = nil, sqlState: String? = nil) {
        self.step = step
        self.code = code
        self.message = message
        self.underlying = underlying
        self.sqlState = sqlState
    }

    /// Wraps `error` (a `PipelineError` stays as it is), its text as the message.
    public static func wrapping(_ error: any Error, step: Step, code: Code) -> PipelineError {
        if let known = error as? PipelineError { return known }
        return PipelineError(step: step, code: code, message: "\(error)", underlying: error)
    }

    public var description: String { "\(step.rawValue): \(message)" }
}

/// Keeps everything in memory: for `--dry-run` and for tests that compare whole normalised output.
public final class RecordingSink: ObservationSink, Sendable {
    private struct Recorded {
        var items: [StagedItem] = []
        var failures: [PipelineError] = []
        var nextRun: Int64 = 1
    }

    private let recorded = Mutex(Recorded())

    public var items: [StagedItem] { recorded.withLock { $0.items } }
    public var failures: [PipelineError] { recorded.withLock { $0.failures } }

    public init() {}

    public func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64 {
        recorded.withLock { r in
            defer { r.nextRun += 1 }
            return r.nextRun
        }
    }

    public func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        var result = LoadResult()
        while let batch = try await next() {
            for item in batch {
                switch item {
                case .observation: result.inserted += 1
                case .station: result.stations += 1
                case .quarantined: break
                }
            }
            recorded.withLock { $0.items.append(contentsOf: batch) }
        }
        return result
    }

    public func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {
        recorded.withLock { $0.failures.append(failure) }
    }

    public var observations: [Observation] { items.compactMap { if case .observation(let o) = $0 { return o } else { return nil } } }
    public var stations: [Station] { items.compactMap { if case .station(let s) = $0 { return s } else { return nil } } }
    public var quarantined: [QuarantinedRecord] { items.compactMap { if case .quarantined(let q) = $0 { return q } else { return nil } } }
}
