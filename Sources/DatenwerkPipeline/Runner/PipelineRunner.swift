import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import Foundation
import Logging

/// The outcome of one run, for people (the CLI table) and tests.
public struct RunReport: Sendable {
    public var pipeline: String
    public var runID: Int64
    public var totals: RunTotals
    public var load: LoadResult
    public var seconds: Double
    public var failure: RunFailure?
    /// The first problems with records (for warnings), at most `warningLimit`.
    public var recordProblems: [RecordError]

    public var succeeded: Bool { failure == nil }
}

/// Live figures while a run goes on (records/s on a terminal).
public struct RunProgress: Sendable {
    public var pipeline: String
    public var totals: RunTotals
    public var seconds: Double
}

/// Runs a pipeline: extract (source) → decode → transform → map/normalise → sink, pulled end to end
/// batch by batch, so memory stays bounded by one batch whatever the input size.
public struct PipelineRunner: Sendable {
    public let fetcher: HTTPFetcher
    public let sink: any ObservationSink
    public var logger: Logger
    public static let warningLimit = 20

    public init(fetcher: HTTPFetcher, sink: any ObservationSink, logger: Logger = Logger(label: "datenwerk.runner")) {
        self.fetcher = fetcher
        self.sink = sink
        self.logger = logger
    }

    public func makeSource(_ spec: SourceSpec) throws -> any RecordSource {
        switch spec.kind {
        case .file: return try FileRecordSource(path: spec.path ?? "", format: spec.format)
        case .http: return HTTPRecordSource(spec: spec, fetcher: fetcher)
        }
    }

    public func run(_ spec: PipelineSpec, trigger: String = "manual", progress: (@Sendable (RunProgress) -> Void)? = nil) async throws -> RunReport {
        let clock = ContinuousClock.now
        let runID = try await sink.beginRun(pipeline: spec, trigger: trigger)
        let state = RunState(spec: spec)
        var load = LoadResult()
        var failure: RunFailure?
        do {
            var mapper: ObservationMapper
            do {
                mapper = try ObservationMapper(spec.observations)
            } catch {
                throw RunFailure(step: .configure, reason: "\(error)")
            }
            var source: any RecordSource
            do {
                source = try makeSource(spec.source)
            } catch {
                throw RunFailure(step: .extract, reason: "\(error)")
            }
            var transformer = RecordTransformer(spec.transform)
            var lastProgress = ContinuousClock.now
            load = try await sink.load(runID: runID, pipeline: spec, next: {
                while true {
                    let decoded: [DecodedRecord]?
                    do {
                        decoded = try await source.next()
                    } catch let error as RunFailure {
                        throw error
                    } catch {
                        throw RunFailure(step: .extract, reason: "\(error)")
                    }
                    state.totals.bytes = source.bytesRead
                    guard let decoded else {
                        state.totals.origins = source.origins
                        return nil
                    }
                    var items: [StagedItem] = []
                    items.reserveCapacity(decoded.count * 2)
                    var records: [Record] = []
                    for entry in decoded {
                        state.totals.recordsRead += 1
                        switch entry {
                        case .rejected(let bad):
                            try state.reject(bad, into: &items)
                        case .record(let record):
                            records.removeAll(keepingCapacity: true)
                            if transformer.isEmpty { records.append(record) } else { transformer.apply(record, into: &records) }
                            if records.isEmpty { state.totals.filtered += 1 }
                            var bad: [RecordError] = []
                            for r in records {
                                let before = items.count
                                bad += mapper.map(r, into: &items)
                                for item in items[before...] {
                                    if case .observation(let o) = item {
                                        state.totals.observations += 1
                                        if o.phenomenonStart > state.totals.maxPhenomenonStart ?? .min { state.totals.maxPhenomenonStart = o.phenomenonStart }
                                    }
                                }
                            }
                            if let first = bad.first {
                                var error = first
                                if bad.count > 1 { error.reason += " (and \(bad.count - 1) more problem\(bad.count > 2 ? "s" : "") in this record)" }
                                try state.reject(QuarantinedRecord(error: error, raw: record.raw), into: &items)
                            }
                        }
                    }
                    if let progress, ContinuousClock.now - lastProgress > .milliseconds(250) {
                        lastProgress = .now
                        progress(RunProgress(pipeline: spec.name, totals: state.totals, seconds: (ContinuousClock.now - clock).seconds))
                    }
                    if !items.isEmpty { return items }
                }
            }, totals: { state.totals })
        } catch let error as RunFailure {
            failure = error
        } catch {
            failure = RunFailure(step: .load, reason: "\(error)")
        }
        if let failure {
            do {
                try await sink.failRun(runID: runID, pipeline: spec, failure: failure, totals: state.totals, quarantined: state.kept)
            } catch {
                logger.error("could not record the failure of run \(runID): \(error)")
            }
        }
        return RunReport(pipeline: spec.name, runID: runID, totals: state.totals, load: load,
                         seconds: (ContinuousClock.now - clock).seconds, failure: failure, recordProblems: state.problems)
    }
}

/// Mutable state of one run (only touched by the run's own task).
final class RunState: @unchecked Sendable {
    let spec: PipelineSpec
    var totals = RunTotals()
    var problems: [RecordError] = []
    /// Quarantined records kept in memory for a failed run's diagnostics (bounded).
    var kept: [QuarantinedRecord] = []

    init(spec: PipelineSpec) { self.spec = spec }

    func reject(_ bad: QuarantinedRecord, into items: inout [StagedItem]) throws {
        if problems.count < PipelineRunner.warningLimit { problems.append(bad.error) }
        switch spec.onBadRecord {
        case .fail:
            totals.quarantined += 1
            throw RunFailure(step: .transform, reason: "bad record (on_bad_record: fail): \(bad.error)")
        case .skip:
            totals.skipped += 1
        case .quarantine:
            totals.quarantined += 1
            items.append(.quarantined(bad))
            if kept.count < 1000 { kept.append(bad) }
        }
        let bad = totals.quarantined + totals.skipped
        if let limit = spec.maxBadRecords, bad > limit {
            throw RunFailure(step: .transform, reason: "more than max_bad_records = \(limit) bad records (\(bad) so far); first: \(problems.first.map(String.init(describing:)) ?? "")")
        }
    }
}

extension Duration {
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
