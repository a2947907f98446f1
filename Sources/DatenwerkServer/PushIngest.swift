import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /ingest/<pipeline>` for push connectors (TTN webhooks).
///
/// The order of checks: unknown pipeline 404 (the names of push pipelines are not told) → too many wrong tokens
/// from this address 429 → token missing or wrong 401, valid but without `ingest:<pipeline>`, `tenant:<ags>` or
/// `admin` 403 (nothing read, nothing stored; `AccessControl`: the pipeline's own `token_env` token is accepted
/// as well, for TTN and ChirpStack webhooks) → `Content-Encoding` other than gzip/deflate/identity 415 → body
/// too large 413, compressed or decoded → the connector's `admit`, which checks and maps this one message
/// exactly as a run will: ignored message types 200, another application 403, anything wrong with it 400 (the
/// body is kept in quarantine with the reason, nothing of it is stored) → stored.
///
/// Every answer says what happened to the body: `stored` (200, only after the run holding it committed, so a
/// webhook that saw 2xx can forget the message), `ignored` (200), rejected with the reason and whether it is kept
/// in quarantine (4xx), or not stored, send it again (503 with `Retry-After`). Database error texts go to the
/// log, never into an answer.
///
/// Group commit: bodies that arrive while a run of the same pipeline is committing wait and go into the next
/// run together, so a burst of uplinks costs one transaction, not one each, and nobody waits for a timer.
/// Accepted and rejected bodies go into separate runs (a pipeline's `on_bad_record` can never fail good
/// messages). When a group's run still fails, each of its messages is run alone: a message the database refuses
/// while the others store (or with a data error) is rejected and kept in quarantine, so a poison message cannot
/// come back forever and take its neighbours with it.
actor PushIngest {
    enum Lane: Sendable { case accepted, rejected }

    /// What happened to one body.
    enum Outcome: Sendable {
        case stored(RunReport)
        /// Rejected with the reason; kept in quarantine by run `runID`.
        case quarantined(reason: String, runID: Int64)
        /// Rejected with the reason and not kept (why).
        case notKept(reason: String, why: String)
        /// Nothing stored; the sender should send it again.
        case notStored(String)
    }

    private struct QueueKey: Hashable {
        var pipeline: String
        var lane: Lane
    }

    private struct Waiting {
        var document: PushedDocument
        var continuation: CheckedContinuation<Outcome, Never>
    }

    nonisolated let pipelines: [String: PipelineSpec]
    nonisolated let runner: PipelineRunner
    nonisolated let environment: [String: String]
    nonisolated let maxBytes: Int
    nonisolated let logger: Logger
    /// Bodies per run at most.
    nonisolated let maxBatch = 500
    private var queues: [QueueKey: [Waiting]] = [:]
    private var draining: Set<String> = []

    /// Whether the database is known to be away (then a push is answered 503 at once instead of waiting for the pool).
    nonisolated let databaseIsAway: @Sendable () -> Bool
    /// The pipeline's `token_env` token, API tokens, OIDC and the wrong-token limit.
    nonisolated let access: AccessControl

    init(pipelines: [PipelineSpec], runner: PipelineRunner, environment: [String: String], maxBytes: Int, logger: Logger,
         databaseIsAway: @escaping @Sendable () -> Bool = { false }, access: AccessControl) {
        self.databaseIsAway = databaseIsAway
        self.access = access
        self.pipelines = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.runner = runner
        self.environment = environment
        self.maxBytes = maxBytes
        self.logger = logger
    }

    nonisolated func receive(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let name = try context.parameters.require("pipeline")
        guard let spec = pipelines[name], let config = spec.connector,
              let connector = runner.connectors.connector(config.kind) as? any PushConnector else {
            let shown = name.count > 100 ? String(name.prefix(100)) + "…" : name
            return .problem(.notFound, "no push pipeline named '\(shown)'")
        }
        let variable = connector.tokenVariable(config)
        let expected = environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        // The pipeline's own token (TTN/ChirpStack webhooks), an API token or an OIDC token with the scope.
        let own = expected.map { [AccessControl.Alternative(label: variable, secret: $0)] } ?? []
        switch try await access.check(request, context: context, need: AccessNeed(.ingest, name, tenant: spec.tenant), alternatives: own) {
        case .success: break
        case .failure(let answer): return answer.response
        }
        let coding: BodyCoding
        switch BodyCoding.parse(request.headers[.contentEncoding]) {
        case .success(let c): coding = c
        case .failure(let problem): return .problem(.unsupportedMediaType, problem.message, parameter: "Content-Encoding")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch {
            return .problem(.contentTooLarge, "the body is larger than \(maxBytes) bytes; nothing was stored")
        }
        let body: [UInt8]
        do {
            body = try coding.decode(buffer, limit: maxBytes)
        } catch .tooLarge {
            return .problem(.contentTooLarge, "the body is larger than \(maxBytes) bytes once decoded (Content-Encoding: \(coding.name)); nothing was stored")
        } catch .corrupt(let detail) {
            return .problem(.badRequest, "the body is not valid \(coding.name) data (\(detail)); nothing was stored", parameter: "Content-Encoding")
        }
        if databaseIsAway() {
            return .problem(.serviceUnavailable, "the database is not available at the moment; nothing was stored, send it again",
                            headers: [.retryAfter: String(ServerConnections.retryAfterSeconds)])
        }
        let received = TimestampParser.formatISO8601(Int64(Date().timeIntervalSince1970 * 1e6))
        let origin = "POST /ingest/\(name) from \(context.remoteAddress?.ipAddress ?? "?") at \(received)"
        let outcome: Outcome
        switch connector.admit(body, config: config, pipeline: name) {
        case .ignore(let reason):
            return .json(.object([.init("status", .string("ignored")), .init("reason", .string(reason))]))
        case .forbidden(let reason):
            return .problem(.forbidden, "\(reason); nothing was stored")
        case .accept:
            outcome = await submit(spec, PushedDocument(origin: origin, body: body), lane: .accepted)
        case .reject(let reason):
            outcome = await submit(spec, PushedDocument(origin: origin, body: body, rejection: reason), lane: .rejected)
        }
        return Self.answer(outcome)
    }

    static func answer(_ outcome: Outcome) -> Response {
        switch outcome {
        case .stored(let report):
            return .json(.object([
                .init("status", .string("stored")), .init("run", .number(Double(report.runID))),
                .init("messages_in_run", .number(Double(report.totals.recordsRead))),
                .init("observations_in_run", .number(Double(report.totals.observations))),
                .init("quarantined_in_run", .number(Double(report.totals.quarantined))),
            ]))
        case .quarantined(let reason, let runID):
            return .problem(.badRequest, "\(reason); nothing of it was stored; the body is kept in quarantine (run \(runID))")
        case .notKept(let reason, let why):
            return .problem(.badRequest, "\(reason); nothing of it was stored, and the body was not kept: \(why)")
        case .notStored(let text):
            return .problem(.serviceUnavailable, text, headers: [.retryAfter: "30"])
        }
    }

    /// Waits until the body's run has committed (or failed).
    private func submit(_ spec: PipelineSpec, _ document: PushedDocument, lane: Lane) async -> Outcome {
        await withCheckedContinuation { continuation in
            queues[QueueKey(pipeline: spec.name, lane: lane), default: []].append(Waiting(document: document, continuation: continuation))
            if draining.insert(spec.name).inserted {
                Task { await self.drain(spec) }
            }
        }
    }

    /// One run of a pipeline at a time (accepted and rejected bodies take turns): two concurrent loads that both
    /// need a new monthly partition can make one of them fail (see the report of issue 10).
    private func drain(_ spec: PipelineSpec) async {
        while true {
            guard let (key, waiting) = nextGroup(spec.name) else { break }
            let outcomes = await process(spec, lane: key.lane, waiting.map(\.document))
            for (w, outcome) in zip(waiting, outcomes) { w.continuation.resume(returning: outcome) }
        }
        draining.remove(spec.name)
    }

    private func nextGroup(_ pipeline: String) -> (QueueKey, [Waiting])? {
        for lane in [Lane.accepted, .rejected] {
            let key = QueueKey(pipeline: pipeline, lane: lane)
            guard var waiting = queues.removeValue(forKey: key), !waiting.isEmpty else { continue }
            if waiting.count > maxBatch {
                queues[key] = Array(waiting[maxBatch...])
                waiting = Array(waiting[..<maxBatch])
            }
            return (key, waiting)
        }
        return nil
    }

    private enum Attempt {
        case succeeded(RunReport)
        case failed(RunReport, PipelineError)
        /// The run could not even start (the database is unreachable).
        case thrown(any Error)
    }

    private nonisolated func attempt(_ spec: PipelineSpec, _ documents: [PushedDocument]) async -> Attempt {
        do {
            let report = try await runner.run(spec, trigger: "push", pushed: documents)
            if let failure = report.failure { return .failed(report, failure) }
            return .succeeded(report)
        } catch {
            return .thrown(error)
        }
    }

    /// One outcome per document, in order.
    private nonisolated func process(_ spec: PipelineSpec, lane: Lane, _ documents: [PushedDocument]) async -> [Outcome] {
        let first = await attempt(spec, documents)
        switch first {
        case .succeeded(let report):
            return documents.map { settled(spec, lane: lane, $0, report) }
        case .thrown(let error):
            logger.error("push ingest for '\(spec.name)': \(documents.count) message(s) not stored: \(error)")
            return documents.map { .notStored(Self.sendAgain(lane, reason: $0.rejection)) }
        case .failed(let report, let failure) where documents.count == 1:
            return [await failedAlone(spec, lane: lane, documents[0], report, failure, othersStored: false)]
        case .failed(let report, let failure):
            logger.warning("push ingest for '\(spec.name)': run \(report.runID) with \(documents.count) messages failed at \(failure.step.rawValue) (\(failure.message)); running each message alone")
            var alone: [Attempt] = []
            for document in documents { alone.append(await attempt(spec, [document])) }
            let othersStored = alone.contains { if case .succeeded = $0 { true } else { false } }
            var outcomes: [Outcome] = []
            for (document, result) in zip(documents, alone) {
                switch result {
                case .succeeded(let report): outcomes.append(settled(spec, lane: lane, document, report))
                case .thrown(let error):
                    logger.error("push ingest for '\(spec.name)': a message not stored: \(error)")
                    outcomes.append(.notStored(Self.sendAgain(lane, reason: document.rejection)))
                case .failed(let report, let failure):
                    outcomes.append(await failedAlone(spec, lane: lane, document, report, failure, othersStored: othersStored))
                }
            }
            return outcomes
        }
    }

    /// A run that succeeded: an accepted body is stored; a rejected one is in quarantine unless the pipeline skips bad records.
    private nonisolated func settled(_ spec: PipelineSpec, lane: Lane, _ document: PushedDocument, _ report: RunReport) -> Outcome {
        switch lane {
        case .accepted: return .stored(report)
        case .rejected:
            let reason = document.rejection ?? "rejected"
            return spec.onBadRecord == .skip ? .notKept(reason: reason, why: "the pipeline skips bad records (on_bad_record: skip)")
                                             : .quarantined(reason: reason, runID: report.runID)
        }
    }

    /// The run of this one message failed.
    private nonisolated func failedAlone(_ spec: PipelineSpec, lane: Lane, _ document: PushedDocument, _ report: RunReport,
                                         _ failure: PipelineError, othersStored: Bool) async -> Outcome {
        logger.error("push ingest for '\(spec.name)': run \(report.runID) of one message failed at \(failure.step.rawValue): \(failure.message)")
        switch lane {
        case .rejected:
            if failure.step == .transform {
                // on_bad_record: fail, or max_bad_records: the reason is about records, not the database.
                return .notKept(reason: document.rejection ?? "rejected", why: "run \(report.runID) failed: \(failure.message)")
            }
            return .notStored(Self.sendAgain(lane, reason: document.rejection) + " (run \(report.runID) failed at \(failure.step.rawValue))")
        case .accepted:
            // A message the database refuses while its neighbours store, or with a data error, is poison: sent again
            // it would fail again. It is rejected and kept in quarantine (with the database's reason) instead.
            guard othersStored || Self.isDataError(failure) else {
                return .notStored("not stored (run \(report.runID) failed at \(failure.step.rawValue)); send it again")
            }
            let reason = "the message could not be stored: run \(report.runID) failed at \(failure.step.rawValue) for this message alone (details in the server log)"
            var poison = document
            poison.rejection = "the database refused this message alone (run \(report.runID) failed at \(failure.step.rawValue): \(failure.message))"
            switch await attempt(spec, [poison]) {
            case .succeeded(let kept):
                return spec.onBadRecord == .skip ? .notKept(reason: reason, why: "the pipeline skips bad records (on_bad_record: skip)")
                                                 : .quarantined(reason: reason, runID: kept.runID)
            case .failed(let again, let why):
                logger.error("push ingest for '\(spec.name)': run \(again.runID) could not keep a refused message in quarantine: \(why)")
                return .notStored("not stored, and it could not be kept in quarantine (runs \(report.runID), \(again.runID)); send it again")
            case .thrown(let error):
                logger.error("push ingest for '\(spec.name)': a refused message could not be kept in quarantine: \(error)")
                return .notStored("not stored (run \(report.runID) failed); send it again")
            }
        }
    }

    private static func sendAgain(_ lane: Lane, reason: String?) -> String {
        switch lane {
        case .accepted: "not stored (its run could not start; details in the server log); send it again"
        case .rejected: "\(reason ?? "rejected"); it could not be kept in quarantine now: send it again"
        }
    }

    /// Data exceptions, integrity violations and program limits (e.g. "index row size exceeds maximum"):
    /// the same message would fail the same way again.
    static func isDataError(_ failure: PipelineError) -> Bool {
        guard failure.step == .load, let state = failure.sqlState else { return failure.step == .transform }
        return ["22", "23", "54"].contains(String(state.prefix(2)))
    }

    static func token(_ headers: HTTPFields) -> String? {
        if let authorization = headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        return headers[HTTPField.Name("X-Datenwerk-Token")!]
    }

    /// Compares without an early exit, so the answer time does not tell how much of a guess was right.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}

/// The `Content-Encoding` of a pushed body. Decoding is bounded: the limit applies to the decoded size, so a
/// small compressed body that inflates without end (a zip bomb) is stopped at the limit and answered 413.
enum BodyCoding: Sendable {
    case identity, gzip, deflate

    struct Unsupported: Error { var message: String }
    enum DecodingError: Error { case tooLarge, corrupt(String) }

    var name: String {
        switch self {
        case .identity: "identity"
        case .gzip: "gzip"
        case .deflate: "deflate"
        }
    }

    static func parse(_ header: String?) -> Result<BodyCoding, Unsupported> {
        let codings = (header ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty && $0 != "identity" }
        guard !codings.isEmpty else { return .success(.identity) }
        guard codings.count == 1 else {
            return .failure(Unsupported(message: "Content-Encoding '\(header ?? "")': one coding at most (gzip or deflate)"))
        }
        switch codings[0] {
        case "gzip", "x-gzip": return .success(.gzip)
        case "deflate": return .success(.deflate)
        default:
            let shown = codings[0].count > 40 ? String(codings[0].prefix(40)) + "…" : codings[0]
            return .failure(Unsupported(message: "Content-Encoding '\(shown)' is not supported: send the body as is, gzip or deflate"))
        }
    }

    func decode(_ buffer: ByteBuffer, limit: Int) throws(DecodingError) -> [UInt8] {
        switch self {
        case .identity:
            return Array(buffer.readableBytesView)
        case .gzip:
            return try Self.inflate(buffer, .gzip(), limit: limit)
        case .deflate:
            // HTTP's deflate is the zlib format (RFC 1950); some clients send raw deflate (RFC 1951).
            do { return try Self.inflate(buffer, .zlib(), limit: limit) } catch .corrupt {
                return try Self.inflate(buffer, .deflate(), limit: limit)
            }
        }
    }

    static func inflate(_ buffer: ByteBuffer, _ algorithm: CompressionAlgorithm, limit: Int) throws(DecodingError) -> [UInt8] {
        guard buffer.readableBytes > 0 else { throw .corrupt("the body is empty") }
        let decompressor = algorithm.decompressor
        var input = buffer
        var output = ByteBufferAllocator().buffer(capacity: max(4096, min(limit + 1, buffer.readableBytes * 4)))
        do {
            try decompressor.startStream()
            defer { try? decompressor.finishStream() }
            while true {
                do {
                    // Returns at the end of the stream, or when all input is used with room left in the output.
                    try decompressor.streamInflate(from: &input, to: &output)
                    break
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    if output.readableBytes > limit { throw DecodingError.tooLarge }
                    output.reserveCapacity(min(limit + 1, output.capacity * 2) + 1)
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    break
                }
            }
        } catch let error as DecodingError {
            throw error
        } catch let error as CompressNIOError where error == .corruptData {
            throw .corrupt("corrupt data")
        } catch {
            throw .corrupt("\(error)")
        }
        if output.readableBytes > limit { throw .tooLarge }
        guard output.readableBytes > 0 else { throw .corrupt("it decodes to nothing") }
        return Array(output.readableBytesView)
    }
}
