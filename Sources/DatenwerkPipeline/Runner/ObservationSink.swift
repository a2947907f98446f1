import DatenwerkCore
import DatenwerkTransforms
import Synchronization

/// Counts of one run, as the runner sees them.
package struct RunTotals: Sendable, Hashable {
    package var recordsRead = 0
    /// Observations handed to the sink (after the load: the ones that loaded, duplicates and conflicts taken out).
    package var observations = 0
    /// Quarantined records (rows in `datenwerk.quarantine`).
    package var quarantined = 0
    /// The values those records stand for (`QuarantinedRecord.values`).
    package var quarantinedValues = 0
    /// Values left out on purpose, by rule.
    package var skips = SkipCounts()
    /// Values the source offered (see `ConnectorBatch.valuesRead`).
    package var valuesRead = 0
    /// Some batch did not count its values: the balance cannot be checked for this run.
    package var valuesUncounted = false
    package var bytes = 0
    /// Latest phenomenon start seen (µs UTC), for the checkpoint.
    package var maxPhenomenonStart: Int64?
    package var origins: [String] = []
    /// Retries of HTTP requests during the run (for the run history).
    package var retries: [String] = []
    /// Other things the run history should show (e.g. "304 not modified").
    package var events: [String] = []
    /// What the source wants remembered for the next run (HTTP validators, cursors), merged into the checkpoint.
    package var sourceState: [JSONValue.Member] = []

    package init() {}

    /// All skipped values.
    package var skipped: Int { skips.total }

    /// Zero silent drops: every value read is loaded, quarantined or skipped under a named rule.
    package var isBalanced: Bool { !valuesUncounted && valuesRead == observations + quarantinedValues + skipped }

    /// The books after the load: equal duplicates are skips, conflicting ones moved to quarantine.
    package mutating func settle(_ load: LoadResult) {
        observations -= load.duplicates + load.conflicting + load.conflictingSkipped
        quarantined += load.conflicting
        quarantinedValues += load.conflicting
        skips.add(.duplicate, load.duplicates)
        skips.add(.conflictingDuplicate, load.conflictingSkipped)
    }
}

/// What the sink did with the staged items.
package struct LoadResult: Sendable, Hashable {
    package var inserted = 0
    package var updated = 0
    package var unchanged = 0
    package var stations = 0
    /// Staged observations that repeated an earlier one of the run (same station, property, start) with the same
    /// values: loaded once, the repeats counted as `duplicate`.
    package var duplicates = 0
    /// Staged observations that share a natural key with another of the run but differ in value: none of them
    /// loaded, each quarantined as `conflicting_duplicate` with its source record.
    package var conflicting = 0
    /// The same, under `on_bad_record: skip`: counted, not stored.
    package var conflictingSkipped = 0
    package init(inserted: Int = 0, updated: Int = 0, unchanged: Int = 0, stations: Int = 0, duplicates: Int = 0, conflicting: Int = 0, conflictingSkipped: Int = 0) {
        self.inserted = inserted
        self.updated = updated
        self.unchanged = unchanged
        self.stations = stations
        self.duplicates = duplicates
        self.conflicting = conflicting
        self.conflictingSkipped = conflictingSkipped
    }
}

/// Why and for what a run happens: passed to the sink so the run row, the job and the checkpoint agree.
package struct RunContext: Sendable {
    /// manual, scheduled, backfill, push, dry-run, test …
    package var trigger: String
    /// The job (datenwerk.jobs) this run executes; the sink finishes it in the run's own transaction.
    package var jobID: Int64?
    /// A backfill chunk, half-open [from, to) in µs UTC: observations outside are dropped, and the run
    /// moves the backfill checkpoint, never the live cursor.
    package var window: Range<Int64>?

    /// A replay of quarantined records (`datenwerk quarantine replay`): the stored records are the input,
    /// the sink removes the ones that load from quarantine, and no checkpoint moves.
    package var replay: QuarantineReplay?

    /// Read every source in full (`datenwerk run --full`): no conditional HTTP requests, no file skipped as
    /// unchanged (`FileMemory`). The load still compares rows, so nothing is written twice.
    package var full: Bool

    package init(trigger: String = "manual", jobID: Int64? = nil, window: Range<Int64>? = nil, replay: QuarantineReplay? = nil, full: Bool = false) {
        self.trigger = trigger
        self.jobID = jobID
        self.window = window
        self.replay = replay
        self.full = full
    }

    /// The `checkpoints` row this run writes.
    package func checkpointKey(_ pipeline: String) -> String { window == nil ? pipeline : pipeline + "#backfill" }
    /// A replay reads no source, so it has nothing to remember for the next run.
    package var writesCheckpoint: Bool { replay == nil }
}

/// Where normalised items go. A sink loads one run's items in ONE transaction together with the run's
/// outcome and checkpoint, so a run either lands completely or not at all.
package protocol ObservationSink: Sendable {
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
    package func checkpoint(_ key: String) async throws -> JSONValue? { nil }
}

/// Why a run failed: the step, a stable code, the message, and the cause it came from (kept, not flattened to
/// text, so that a caller can decide on the cause — e.g. push ingest on the SQLSTATE — without parsing words).
package struct PipelineError: Error, Sendable, CustomStringConvertible {
    package enum Step: String, Sendable { case configure, extract, transform, load }

    /// What kind of failure, for programs (logs, metrics, retry decisions); the message is for people.
    package struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        package var rawValue: String
        package init(rawValue: String) { self.rawValue = rawValue }
        package var description: String { rawValue }

        /// The pipeline names a connector this build does not have.
        package static let connectorMissing = Code(rawValue: "connector-missing")
        /// Neither a connector nor a source with observations.
        package static let noSource = Code(rawValue: "no-source")
        /// The connector or mapping refused its configuration at start.
        package static let configuration = Code(rawValue: "configuration")
        /// The source could not be read (HTTP, file, format).
        package static let source = Code(rawValue: "source")
        /// A bad record with `on_bad_record: fail`.
        package static let badRecord = Code(rawValue: "bad-record")
        /// More than `max_bad_records`.
        package static let tooManyBadRecords = Code(rawValue: "too-many-bad-records")
        /// The database refused or went away (see `sqlState`).
        package static let database = Code(rawValue: "database")
        /// Anything else the sink threw.
        package static let load = Code(rawValue: "load")
    }

    package var step: Step
    package var code: Code
    package var message: String
    /// The error this one was made from, if any.
    package var underlying: (any Error & Sendable)?
    /// The SQLSTATE when the database refused the load (e.g. `23514`, `54000`).
    package var sqlState: String?

    package init(step: Step, code: Code, message: String, underlying: (any Error & Sendable)? = nil, sqlState: String? = nil) {
        self.step = step
        self.code = code
        self.message = message
        self.underlying = underlying
        self.sqlState = sqlState
    }

    /// Wraps `error` (a `PipelineError` stays as it is), its text as the message.
    package static func wrapping(_ error: any Error, step: Step, code: Code) -> PipelineError {
        if let known = error as? PipelineError { return known }
        return PipelineError(step: step, code: code, message: "\(error)", underlying: error)
    }

    package var description: String { "\(step.rawValue): \(message)" }
}

/// Keeps everything in memory: for `--dry-run` and for tests that compare whole normalised output.
package final class RecordingSink: ObservationSink, Sendable {
    private struct Recorded {
        var items: [StagedItem] = []
        var failures: [PipelineError] = []
        var nextRun: Int64 = 1
    }

    private let recorded = Mutex(Recorded())

    package var items: [StagedItem] { recorded.withLock { $0.items } }
    package var failures: [PipelineError] { recorded.withLock { $0.failures } }

    package init() {}

    package func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64 {
        recorded.withLock { r in
            defer { r.nextRun += 1 }
            return r.nextRun
        }
    }

    package func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        var result = LoadResult()
        var run: [StagedItem] = []
        while let batch = try await next() {
            for item in batch {
                switch item {
                case .observation: result.inserted += 1
                case .station: result.stations += 1
                case .quarantined: break
                }
            }
            run.append(contentsOf: batch)
        }
        // Repeated natural keys, as the database sink settles them: equal repeats kept once, conflicting ones
        // replaced by their quarantine records.
        let repeats = RepeatedKeys.settle(&run, pipeline: pipeline)
        result.inserted -= repeats.duplicates + repeats.conflicting + repeats.conflictingSkipped
        result.duplicates = repeats.duplicates
        result.conflicting = repeats.conflicting
        result.conflictingSkipped = repeats.conflictingSkipped
        if let failure = repeats.failure { throw failure }
        recorded.withLock { $0.items.append(contentsOf: run) }
        return result
    }

    package func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {
        recorded.withLock { $0.failures.append(failure) }
    }

    package var observations: [Observation] { items.compactMap { if case .observation(let o) = $0 { return o } else { return nil } } }
    package var stations: [Station] { items.compactMap { if case .station(let s) = $0 { return s } else { return nil } } }
    package var quarantined: [QuarantinedRecord] { items.compactMap { if case .quarantined(let q) = $0 { return q } else { return nil } } }
}

/// The in-memory form of the database sink's rule for observations of one run that share a natural key
/// (station, property, start): equal repeats load once (`duplicate`); repeats that differ in end, value or
/// quality load not at all — each becomes a `conflicting_duplicate` quarantine record with its source record
/// (`on_bad_record: skip` counts them instead; `fail` fails the run).
package enum RepeatedKeys {
    package struct Outcome {
        package var duplicates = 0
        package var conflicting = 0
        package var conflictingSkipped = 0
        package var failure: PipelineError?
    }

    struct Key: Hashable {
        var station: String
        var property: String
        var start: Int64
    }

    package static func settle(_ items: inout [StagedItem], pipeline: PipelineSpec) -> Outcome {
        var groups: [Key: [Int]] = [:]
        for (index, item) in items.enumerated() {
            if case .observation(let o) = item {
                groups[Key(station: o.stationKey, property: o.property, start: o.phenomenonStart), default: []].append(index)
            }
        }
        var outcome = Outcome()
        var drop = Set<Int>()
        var replaced: [Int: StagedItem] = [:]
        for (key, indexes) in groups where indexes.count > 1 {
            let observations = indexes.map { i -> Observation in
                if case .observation(let o) = items[i] { return o }
                preconditionFailure("grouped only observations")
            }
            let first = observations[0]
            let equal = observations.allSatisfy { $0.result == first.result && $0.phenomenonEnd == first.phenomenonEnd && $0.quality == first.quality }
            if equal {
                outcome.duplicates += indexes.count - 1
                drop.formUnion(indexes.dropFirst())
                continue
            }
            let seen = observations.map { o in
                JSONValue.format(o.result) + (o.provenance.map { " (\(locationText($0.location)))" } ?? "")
            }.joined(separator: ", ")
            let reason = "conflicting_duplicate: station \(key.station), \(key.property) at \(TimestampParser.formatISO8601(key.start)) came \(indexes.count) times in this run with different values (\(seen)); none loaded"
            switch pipeline.onBadRecord {
            case .fail:
                outcome.failure = outcome.failure ?? PipelineError(step: .transform, code: .badRecord, message: "bad record (on_bad_record: fail): \(reason)")
                drop.formUnion(indexes)
            case .skip:
                outcome.conflictingSkipped += indexes.count
                drop.formUnion(indexes)
            case .quarantine:
                outcome.conflicting += indexes.count
                for (i, o) in zip(indexes, observations) {
                    let location = o.provenance?.location ?? SourceLocation(origin: pipeline.name)
                    let error = RecordError(location, field: o.property, reason)
                    replaced[i] = .quarantined(QuarantinedRecord(error: error, raw: o.provenance?.raw ?? PipelineRunner.describe(o)))
                }
            }
        }
        guard !drop.isEmpty || !replaced.isEmpty else { return outcome }
        var settled: [StagedItem] = []
        settled.reserveCapacity(items.count - drop.count)
        for (index, item) in items.enumerated() where !drop.contains(index) {
            settled.append(replaced[index] ?? item)
        }
        items = settled
        return outcome
    }

    /// `data.csv:17`: the origin's last path part and the line, as the database sink writes it (the quarantine
    /// row has the whole origin).
    static func locationText(_ l: SourceLocation) -> String {
        let name = l.origin.split(separator: "/").last.map(String.init) ?? l.origin
        if let line = l.line { return "\(name):\(line)" }
        return name
    }
}

/// The sink of `datenwerk run --dry-run`: keeps the first `keep` items to print and counts the rest, so a dry run of
/// any size holds about as much memory as a real one. Repeated keys are found by 64-bit fingerprints of the first
/// `maxKeys` observations (about 40 MB at the default); beyond that the check stops and says so.
package final class DryRunSink: ObservationSink, Sendable {
    private struct State {
        var shown: [StagedItem] = []
        var total = 0
        var keys: [Int: Int] = [:]
        var keysFull = false
        var duplicates = 0
        var conflicting = 0
    }

    private let state = Mutex(State())
    package let keep: Int
    package let maxKeys: Int

    package init(keep: Int, maxKeys: Int = 1_000_000) {
        self.keep = keep
        self.maxKeys = maxKeys
    }

    package var shown: [StagedItem] { state.withLock { $0.shown } }
    package var total: Int { state.withLock { $0.total } }
    /// True when more observations came than `maxKeys`: repeats among the later ones were not looked for.
    package var keyCheckIncomplete: Bool { state.withLock { $0.keysFull } }

    package func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64 { 0 }

    package func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        var result = LoadResult()
        while let batch = try await next() {
            state.withLock { s in
                for item in batch {
                    s.total += 1
                    if s.shown.count < keep { s.shown.append(item) }
                    switch item {
                    case .station: result.stations += 1
                    case .quarantined: break
                    case .observation(let o):
                        result.inserted += 1
                        var k = Hasher()
                        k.combine(o.stationKey); k.combine(o.property); k.combine(o.phenomenonStart)
                        var v = Hasher()
                        v.combine(o.result); v.combine(o.phenomenonEnd); v.combine(o.quality)
                        let key = k.finalize(), value = v.finalize()
                        if let seen = s.keys[key] {
                            if seen == value { s.duplicates += 1 } else { s.conflicting += 1 }
                        } else if s.keys.count < maxKeys {
                            s.keys[key] = value
                        } else {
                            s.keysFull = true
                        }
                    }
                }
            }
        }
        // Counted, not settled: a dry run shows what a real run would find (the real run quarantines every
        // observation of a conflicting key, the first one too).
        state.withLock { s in
            result.duplicates = s.duplicates
            s.keys = [:]
        }
        result.inserted -= result.duplicates
        return result
    }

    /// Observations that repeat a key with a different value (the real run quarantines them and the first one).
    package var conflictingRepeats: Int { state.withLock { $0.conflicting } }

    package func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {}
}
