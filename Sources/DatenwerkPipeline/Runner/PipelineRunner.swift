import DatenwerkCore
import DatenwerkTransforms
import DatenwerkFormats
import DatenwerkHTTP
import Foundation
import Logging

/// The outcome of one run, for people (the CLI table) and tests.
package struct RunReport: Sendable {
    package var pipeline: String
    package var runID: Int64
    package var totals: RunTotals
    package var load: LoadResult
    package var seconds: Double
    package var failure: PipelineError?
    /// The first problems with records (for warnings), at most `warningLimit`.
    package var recordProblems: [RecordError]

    package var succeeded: Bool { failure == nil }
}

/// Live figures while a run goes on (records/s on a terminal).
package struct RunProgress: Sendable {
    package var pipeline: String
    package var totals: RunTotals
    package var seconds: Double
}

/// Runs a pipeline: extract (source) → decode → transform → map/normalise → sink, pulled end to end
/// batch by batch, so memory stays bounded by one batch whatever the input size.
package struct PipelineRunner: Sendable {
    package let fetcher: HTTPFetcher
    package let sink: any ObservationSink
    package let connectors: ConnectorRegistry
    package var logger: Logger
    package static let warningLimit = 20

    package init(fetcher: HTTPFetcher, sink: any ObservationSink, connectors: ConnectorRegistry = .none, logger: Logger = Logger(label: "datenwerk.runner")) {
        self.fetcher = fetcher
        self.sink = sink
        self.connectors = connectors
        self.logger = logger
    }

    /// `session`: what the run fetches with (retries, validators, the `request:` block); nil: the fetcher alone.
    /// `files`: what a file source remembers of the last successful run's files (see `FileMemory`).
    package func makeSource(_ spec: SourceSpec, session: FetchSession? = nil, files: FileMemory? = nil) throws -> any RecordSource {
        switch spec.kind {
        case .file: return try FileRecordSource(path: spec.path ?? "", format: spec.format, memory: files)
        case .http: return HTTPRecordSource(spec: spec, session: session ?? FetchSession(fetcher: fetcher))
        }
    }

    /// Runs `spec` once. `pushed` hands a push connector the bodies it received (see `PushConnector`).
    package func run(_ spec: PipelineSpec, trigger: String = "manual", pushed: [PushedDocument]? = nil, progress: (@Sendable (RunProgress) -> Void)? = nil) async throws -> RunReport {
        try await run(spec, context: RunContext(trigger: trigger), pushed: pushed, progress: progress)
    }

    package func run(_ spec: PipelineSpec, context: RunContext, pushed: [PushedDocument]? = nil, progress: (@Sendable (RunProgress) -> Void)? = nil) async throws -> RunReport {
        let retries = RetryLog()
        // Incremental: the last successful run's cursor gives `{since}` and the HTTP validators to send.
        var cursor: JSONValue?
        if context.window == nil, context.replay == nil {
            do { cursor = try await sink.checkpoint(spec.name) } catch {
                logger.warning("\(spec.name): could not read the checkpoint (\(error)); reading everything")
            }
        }
        let placeholders = Self.placeholders(cursor: cursor, window: context.window)
        let resolved = spec.substituting(placeholders)
        // `--full` reads everything: no conditional requests, no skipped files (what it reads is remembered).
        let conditional = ConditionalRequests(known: context.window == nil && !context.full ? Self.validators(cursor) : [:])
        let session = FetchSession(fetcher: fetcher, retries: retries, conditional: conditional)
        return try await run(resolved, context: context, pushed: pushed, progress: progress, session: session, checkpoint: cursor)
    }

    /// `{since}`: the high-water mark of the last successful run (the epoch before the first);
    /// `{from}`/`{to}`: the backfill window, or `{since}` … now for a live run. All ISO 8601 UTC.
    static func placeholders(cursor: JSONValue?, window: Range<Int64>?) -> [String: String] {
        let since = cursor?["max_phenomenon_start_us"]?.numberValue.map { Int64($0) } ?? 0
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        return [
            "since": TimestampParser.formatISO8601(since),
            "from": TimestampParser.formatISO8601(window?.lowerBound ?? since),
            "to": TimestampParser.formatISO8601(window?.upperBound ?? now),
        ]
    }

    static func validators(_ cursor: JSONValue?) -> [String: HTTPValidators] {
        guard case .object(let members) = cursor?["http"] ?? .null else { return [:] }
        var known: [String: HTTPValidators] = [:]
        for member in members {
            let etag = member.value["etag"].flatMap { $0.isNull ? nil : $0.text }
            let modified = member.value["last_modified"].flatMap { $0.isNull ? nil : $0.text }
            known[member.key] = HTTPValidators(etag: etag, lastModified: modified)
        }
        return known
    }

    /// What a live run's file source remembers (`FileMemory`): nil for a backfill window, a replay, or a spec not
    /// read from YAML; empty under `--full` (every file is read, and remembered for the next run).
    static func fileMemory(_ spec: PipelineSpec, cursor: JSONValue?, context: RunContext) -> FileMemory? {
        guard context.window == nil, context.replay == nil, let reading = spec.readingDigest else { return nil }
        if context.full { return FileMemory(reading: reading) }
        return FileMemory(cursor: cursor, reading: reading) ?? FileMemory(reading: reading)
    }

    private func run(_ spec: PipelineSpec, context: RunContext, pushed: [PushedDocument]?, progress: (@Sendable (RunProgress) -> Void)?, session: FetchSession,
                     checkpoint: JSONValue?) async throws -> RunReport {
        let clock = ContinuousClock.now
        let runID = try await sink.beginRun(pipeline: spec, context: context)
        FailPoint.hit("run-started", pipeline: spec.name)
        // Every log line of the run carries its pipeline and run (JSON logs: `DATENWERK_LOG_FORMAT=json`).
        var logContext = LogContext.current
        logContext.pipeline = spec.name
        logContext.run = runID
        return try await LogContext.$current.withValue(logContext) {
            try await runBody(spec, context: context, pushed: pushed, progress: progress, session: session, checkpoint: checkpoint,
                              runID: runID, clock: clock)
        }
    }

    private func runBody(_ spec: PipelineSpec, context: RunContext, pushed: [PushedDocument]?, progress: (@Sendable (RunProgress) -> Void)?,
                         session: FetchSession, checkpoint: JSONValue?, runID: Int64, clock: ContinuousClock.Instant) async throws -> RunReport {
        let state = RunState(spec: spec)
        var load = LoadResult()
        var failure: PipelineError?
        do {
            var extract = try context.replay.map { try makeReplay(spec, $0) }
                ?? makeExtractor(spec, pushed: pushed, session: session, checkpoint: context.full ? nil : checkpoint,   // `--full`: a connector's memory too
                                 files: Self.fileMemory(spec, cursor: checkpoint, context: context))
            // (A connector whose records the pipeline's own observations block maps is checked there, with its `range:`.)
            let checkRanges = spec.connector != nil && spec.observations == nil
            // Push connectors (webhooks) carry live data: nothing before 1900; pulled sources keep historic series.
            let isPush = spec.connector.flatMap { connectors.connector($0.kind) } is any PushConnector
            var lastProgress = ContinuousClock.now
            load = try await sink.load(runID: runID, pipeline: spec, context: context, next: {
                while true {
                    let batch: ConnectorBatch?
                    FailPoint.hit("extract", pipeline: spec.name)
                    do {
                        batch = try await extract.next()
                    } catch {
                        throw PipelineError.wrapping(error, step: .extract, code: .source)
                    }
                    state.totals.bytes = extract.bytesRead
                    guard let batch else {
                        state.totals.origins = extract.origins
                        if let conditional = session.conditional {
                            let remembered = conditional.remembered
                            if !remembered.isEmpty {
                                state.totals.sourceState = [.init("http", .object(remembered.sorted { $0.key < $1.key }.map { url, v in
                                    .init(url, .object([.init("etag", v.etag.map(JSONValue.string) ?? .null), .init("last_modified", v.lastModified.map(JSONValue.string) ?? .null)]))
                                }))]
                            }
                            state.totals.events = conditional.notModifiedURLs.map { "GET \(HTTPFetcher.redacted($0)): 304 not modified, nothing new" }
                        }
                        // What the connector itself wants shown and remembered (e.g. a CKAN resource's version).
                        state.totals.events += extract.events
                        state.totals.sourceState += extract.sourceState
                        if let replay = context.replay {
                            state.totals.quarantined = replay.stillBadRecords.count
                            state.totals.events.append(replay.summary)
                        }
                        return nil
                    }
                    state.totals.recordsRead += batch.recordsRead
                    if let values = batch.valuesRead { state.totals.valuesRead += values } else { state.totals.valuesUncounted = true }
                    state.totals.skips.merge(batch.skipped)
                    // The batch goes on as it came unless an item is left out or replaced: only then is a new list
                    // built (the items before the first such one copied into it), not a copy of every batch.
                    let batchItems = batch.items
                    var items: [StagedItem] = []
                    var rebuilt = false
                    func rebuild(before index: Int) {
                        guard !rebuilt else { return }
                        rebuilt = true
                        items.reserveCapacity(batchItems.count)
                        items.append(contentsOf: batchItems[..<index])
                    }
                    // Every item meets the same plausibility rules, whatever made it (the generic mapper and the
                    // ttn connector check them per record already, naming the source field; this is the net for
                    // all connectors): nothing implausible reaches the sink, so it can neither fail the load
                    // nor create a partition.
                    let plausibility = isPush ? Plausibility.live() : Plausibility.historic()
                    /// Where a rejected observation came from (built only for one).
                    func origin() -> SourceLocation { SourceLocation(origin: extract.origins.last ?? spec.name) }
                    for index in batchItems.indices {
                        switch batchItems[index] {
                        case .quarantined(let bad):
                            rebuild(before: index)
                            try state.reject(bad, into: &items)
                        case .observation(let o):
                            if let window = context.window, !window.contains(o.phenomenonStart) {
                                rebuild(before: index)
                                state.totals.skips.add(.outsideWindow)
                                continue
                            }
                            if !state.rejectedStations.isEmpty, let rejected = state.rejectedStations[o.stationKey] {
                                rebuild(before: index)
                                let error = RecordError(origin(), field: "station", "its station was rejected: \(rejected)")
                                try state.reject(QuarantinedRecord(error: error, raw: Self.describe(o)), into: &items)
                                continue
                            }
                            // Connector output meets the vocabulary's ranges (the generic mapper checks them itself,
                            // with a pipeline's own `range:`).
                            let range = checkRanges ? Vocabulary.property(o.property)?.range : nil
                            if let problem = plausibility.check(o, range: range) {
                                rebuild(before: index)
                                let field = problem.part == .result ? o.property : problem.part.rawValue
                                let error = RecordError(origin(), field: field, "\(problem.reason) (station \(o.stationKey))")
                                try state.reject(QuarantinedRecord(error: error, raw: Self.describe(o)), into: &items)
                                continue
                            }
                            state.totals.observations += 1
                            if o.phenomenonStart > state.totals.maxPhenomenonStart ?? .min { state.totals.maxPhenomenonStart = o.phenomenonStart }
                            if rebuilt { items.append(batchItems[index]) }
                        case .station(let s):
                            if let problem = plausibility.check(s) {
                                rebuild(before: index)
                                state.rejectedStations[s.key] = problem.reason
                                let error = RecordError(SourceLocation(origin: extract.origins.last ?? spec.name), field: "station \(problem.part.rawValue)", problem.reason)
                                // A station is not a value: its observations are quarantined one by one below.
                                try state.reject(QuarantinedRecord(error: error, raw: Self.describe(s), values: 0), into: &items)
                                continue
                            }
                            if rebuilt { items.append(batchItems[index]) }
                        }
                    }
                    if !rebuilt { items = batchItems }
                    if let progress, ContinuousClock.now - lastProgress > .milliseconds(250) {
                        lastProgress = .now
                        progress(RunProgress(pipeline: spec.name, totals: state.totals, seconds: (ContinuousClock.now - clock).seconds))
                    }
                    if !items.isEmpty { return items }
                }
            }, totals: {
                state.totals.retries = session.retries?.all ?? []
                return state.totals
            })
            state.totals.settle(load)
        } catch {
            failure = PipelineError.wrapping(error, step: .load, code: .load)
        }
        state.totals.retries = session.retries?.all ?? []
        if let failure {
            do {
                try await sink.failRun(runID: runID, pipeline: spec, context: context, failure: failure, totals: state.totals, quarantined: state.kept)
            } catch {
                logger.error("could not record the failure of run \(runID): \(error)")
            }
        }
        return RunReport(pipeline: spec.name, runID: runID, totals: state.totals, load: load,
                         seconds: (ContinuousClock.now - clock).seconds, failure: failure, recordProblems: state.problems)
    }

    /// An observation as JSON, the raw payload when a connector's value is quarantined.
    static func describe(_ o: Observation) -> String {
        var members: [JSONValue.Member] = [
            .init("station", .string(o.stationKey)), .init("property", .string(o.property)),
            .init("phenomenon_start_us", .number(Double(o.phenomenonStart))), .init("result", .number(o.result)),
        ]
        if let end = o.phenomenonEnd { members.append(.init("phenomenon_end_us", .number(Double(end)))) }
        return JSONValue.object(members).serialized
    }

    /// A station as JSON, the raw payload when a connector's station is quarantined.
    static func describe(_ s: Station) -> String {
        var members: [JSONValue.Member] = [.init("station", .string(s.key))]
        if let name = s.name { members.append(.init("name", .string(name))) }
        if let kind = s.kind { members.append(.init("kind", .string(kind))) }
        if let p = s.location {
            members.append(.init("longitude", .number(p.longitude)))
            members.append(.init("latitude", .number(p.latitude)))
            if let a = p.altitude { members.append(.init("altitude", .number(a))) }
        }
        if let c = s.sourceCoordinates {
            members.append(.init("x", .number(c.x)))
            members.append(.init("y", .number(c.y)))
            members.append(.init("epsg", .number(Double(c.epsg))))
        }
        return JSONValue.object(members).serialized
    }

    /// The extractor of a quarantine replay (see `QuarantineReplay`).
    func makeReplay(_ spec: PipelineSpec, _ replay: QuarantineReplay) throws -> any ConnectorRun {
        if let config = spec.connector {
            guard let connector = connectors.connector(config.kind) else {
                throw PipelineError(step: .configure, code: .connectorMissing, message: "no connector of kind '\(config.kind)' in this build")
            }
            if connector is any RecordSourceConnector, let format = config.format, let mapping = spec.observations {
                // Its records went through the pipeline's own mapping: replayed exactly like a generic source's.
                do {
                    return ReplayRun(replay: replay, mode: .mapped(RecordTransformer(spec.transform), try ObservationMapper(mapping), jsonRecords: format.readsJSONRecords))
                } catch {
                    throw PipelineError.wrapping(error, step: .configure, code: .configuration)
                }
            }
            guard let push = connector as? any PushConnector else {
                return ReplayRun(replay: replay, mode: .none("""
                    the \(config.kind) connector quarantines parts of its documents, which a replay cannot rebuild; \
                    run the pipeline again (or backfill the affected window) to read them from the source
                    """))
            }
            return ReplayRun(replay: replay, mode: .pushed(push, config, ConnectorContext(pipeline: spec.name, tenant: spec.tenant, fetcher: fetcher, logger: logger)))
        }
        guard let sourceSpec = spec.source, let mapping = spec.observations else {
            throw PipelineError(step: .configure, code: .noSource, message: "the pipeline has neither a connector nor a source with observations")
        }
        do {
            let jsonRecords: Bool
            switch sourceSpec.format {
            case .csv: jsonRecords = false
            case .json, .ndjson: jsonRecords = true
            }
            return ReplayRun(replay: replay, mode: .mapped(RecordTransformer(spec.transform), try ObservationMapper(mapping), jsonRecords: jsonRecords))
        } catch {
            throw PipelineError.wrapping(error, step: .configure, code: .configuration)
        }
    }

    /// A connector run, or a generic source + transform + mapper behind the same interface.
    func makeExtractor(_ spec: PipelineSpec, pushed: [PushedDocument]? = nil, session: FetchSession? = nil, checkpoint: JSONValue? = nil,
                       files: FileMemory? = nil) throws -> any ConnectorRun {
        var session = session ?? FetchSession(fetcher: fetcher)
        do {
            session = try session.with(spec.request)
        } catch {
            throw PipelineError.wrapping(error, step: .extract, code: .source)
        }
        if let config = spec.connector {
            guard let connector = connectors.connector(config.kind) else {
                throw PipelineError(step: .configure, code: .connectorMissing, message: "no connector of kind '\(config.kind)' in this build")
            }
            do {
                var context = ConnectorContext(pipeline: spec.name, tenant: spec.tenant, fetcher: fetcher, session: session, logger: logger, pushed: pushed)
                context.checkpoint = checkpoint
                if connector is any RecordSourceConnector, let format = config.format, let observations = spec.observations {
                    context.records = PipelineRecords(format: format, transform: spec.transform, observations: observations)
                }
                return try connector.start(config, context: context)
            } catch {
                throw PipelineError.wrapping(error, step: .configure, code: .configuration)
            }
        }
        guard let sourceSpec = spec.source, let mapping = spec.observations else {
            throw PipelineError(step: .configure, code: .noSource, message: "the pipeline has neither a connector nor a source with observations")
        }
        let mapper: ObservationMapper
        do {
            mapper = try ObservationMapper(mapping)
        } catch {
            throw PipelineError.wrapping(error, step: .configure, code: .configuration)
        }
        let source: any RecordSource
        do {
            source = try makeSource(sourceSpec, session: session, files: files)
        } catch {
            throw PipelineError.wrapping(error, step: .extract, code: .source)
        }
        // Decoding and mapping run one batch ahead of the sink, on the other core.
        return ReadAheadRun(MappedSource(source: source, transformer: RecordTransformer(spec.transform), mapper: mapper))
    }
}

/// The pipeline's own record blocks, handed to a `RecordSourceConnector` (`ConnectorContext.records`): how the
/// documents it fetches are decoded and how their records become observations, as for a generic source.
package struct PipelineRecords: Sendable {
    package var format: FormatSpec
    package var transform: [TransformStep]
    package var observations: ObservationMapping

    package init(format: FormatSpec, transform: [TransformStep], observations: ObservationMapping) {
        self.format = format
        self.transform = transform
        self.observations = observations
    }

    /// `source`'s records through the transform steps and the observation mapping (what a generic source's run does).
    package func run(_ source: any RecordSource) throws -> any ConnectorRun {
        MappedSource(source: source, transformer: RecordTransformer(transform), mapper: try ObservationMapper(observations))
    }
}

extension FormatSpec {
    /// Whether its records are JSON objects (not CSV rows), as a quarantine replay needs to know.
    package var readsJSONRecords: Bool {
        switch self {
        case .csv: false
        case .json, .ndjson: true
        }
    }
}

/// A generic source whose records go through the transform steps and the observation mapping.
struct MappedSource: ConnectorRun {
    var source: any RecordSource
    var transformer: RecordTransformer
    var mapper: ObservationMapper
    var bytesRead: Int { source.bytesRead }
    var origins: [String] { source.origins }
    var events: [String] { source.events }
    var sourceState: [JSONValue.Member] { source.sourceState }

    mutating func next() async throws -> ConnectorBatch? {
        guard let decoded = try await source.next() else { return nil }
        var items: [StagedItem] = []
        // One item per value and record (the usual case: a station item now and then grows it once). Reserved too
        // small, the array was grown, copied and freed once per batch.
        items.reserveCapacity(decoded.count * max(1, mapper.valuesPerRecord) + 16)
        var records: [Record] = []
        var unreadable = 0
        for entry in decoded {
            switch entry {
            case .rejected(let bad):
                unreadable += 1
                items.append(.quarantined(bad))
            case .record(let record):
                if let (error, values) = Self.map(record, transformer: &transformer, mapper: &mapper, scratch: &records, into: &items) {
                    items.append(.quarantined(QuarantinedRecord(error: error, raw: record.raw, fields: record.asJSON, values: values)))
                }
            }
        }
        // A line the decoder could not read offers one value as far as anyone can tell.
        let tally = mapper.takeTally()
        return ConnectorBatch(items: items, recordsRead: decoded.count, valuesRead: tally.valuesRead + unreadable, skipped: tally.skips)
    }

    /// One record through the transform steps and the mapping (also used by a quarantine replay): appends its
    /// stations and observations and returns its first problem, naming how many more it had, with the number
    /// of values the problems cost; nil when it mapped completely.
    static func map(_ record: Record, transformer: inout RecordTransformer, mapper: inout ObservationMapper,
                    scratch records: inout [Record], into items: inout [StagedItem]) -> (RecordError, Int)? {
        var bad: [RecordError] = []
        var values = 0
        if transformer.isEmpty {
            // No transform steps: the record itself (no copy into the scratch list).
            let problems = mapper.map(record, into: &items)
            bad = problems.errors
            values = problems.values
        } else {
            records.removeAll(keepingCapacity: true)
            let filtered = transformer.filteredOut
            transformer.apply(record, into: &records)
            mapper.countFiltered(records: transformer.filteredOut - filtered)
            for r in records {
                let problems = mapper.map(r, into: &items)
                bad += problems.errors
                values += problems.values
            }
        }
        guard var error = bad.first else { return nil }
        if bad.count > 1 { error.reason += " (and \(bad.count - 1) more problem\(bad.count > 2 ? "s" : "") in this record)" }
        return (error, values)
    }
}

/// Mutable state of one run.
///
/// `@unchecked Sendable`, justified: only the run's own task touches it (the extract closures that capture it
/// are called one at a time by `PipelineRunner.run`, never concurrently), and a lock on every record would
/// cost more than the checks it replaces.
final class RunState: @unchecked Sendable {
    let spec: PipelineSpec
    var totals = RunTotals()
    var problems: [RecordError] = []
    /// Quarantined records kept in memory for a failed run's diagnostics (bounded).
    var kept: [QuarantinedRecord] = []
    /// Stations that failed the plausibility checks (key → reason): their observations are quarantined too.
    var rejectedStations: [String: String] = [:]
    /// Bad records skipped under `on_bad_record: skip` (for `max_bad_records`).
    var badSkipped = 0

    init(spec: PipelineSpec) { self.spec = spec }

    func reject(_ bad: QuarantinedRecord, into items: inout [StagedItem]) throws {
        if problems.count < PipelineRunner.warningLimit { problems.append(bad.error) }
        switch spec.onBadRecord {
        case .fail:
            totals.quarantined += 1
            totals.quarantinedValues += bad.values
            throw PipelineError(step: .transform, code: .badRecord, message: "bad record (on_bad_record: fail): \(bad.error)", underlying: bad.error)
        case .skip:
            totals.skips.add(.badRecord, bad.values)
            badSkipped += 1
        case .quarantine:
            totals.quarantined += 1
            totals.quarantinedValues += bad.values
            var storable = bad
            if let fields = bad.fields { storable.fields = Plausibility.withoutNUL(fields) }   // jsonb refuses \u0000
            items.append(.quarantined(storable))
            if kept.count < 1000 { kept.append(storable) }
        }
        let bad = totals.quarantined + badSkipped
        if let limit = spec.maxBadRecords, bad > limit {
            throw PipelineError(step: .transform, code: .tooManyBadRecords, message: "more than max_bad_records = \(limit) bad records (\(bad) so far); first: \(problems.first.map(String.init(describing:)) ?? "")")
        }
    }
}

