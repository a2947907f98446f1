import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /ingest/<pipeline>` for push connectors (TTN webhooks).
///
/// The order of checks: unknown pipeline 404 → token missing or wrong 401 (nothing read, nothing stored) →
/// body too large 413 → the connector's `admit`: ignored message types 200, another application 403,
/// malformed 400 (kept in quarantine) → stored. An answer of 200 "stored" is sent only after the run that
/// holds the body has committed, so a webhook that saw 2xx can forget the message.
///
/// Group commit: bodies that arrive while a run of the same pipeline is committing wait and go into the next
/// run together, so a burst of uplinks costs one transaction, not one each, and nobody waits for a timer.
actor PushIngest {
    private struct Waiting {
        var document: PushedDocument
        var continuation: CheckedContinuation<RunReport, any Error>
    }

    nonisolated let pipelines: [String: PipelineSpec]
    nonisolated let runner: PipelineRunner
    nonisolated let environment: [String: String]
    nonisolated let maxBytes: Int
    nonisolated let logger: Logger
    /// Bodies per run at most.
    nonisolated let maxBatch = 500
    private var queues: [String: [Waiting]] = [:]
    private var draining: Set<String> = []

    init(pipelines: [PipelineSpec], runner: PipelineRunner, environment: [String: String], maxBytes: Int, logger: Logger) {
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
            let push = pipelines.values.filter { $0.connector.flatMap { runner.connectors.connector($0.kind) } is any PushConnector }.map(\.name).sorted()
            return .problem(.notFound, "no push pipeline named '\(name)'" + (push.isEmpty ? "" : "; push pipelines here: \(push.joined(separator: ", "))"))
        }
        let variable = connector.tokenVariable(config)
        guard let expected = environment[variable], !expected.isEmpty else {
            logger.error("push ingest for '\(name)' refused: the environment variable \(variable) is not set")
            return .problem(.serviceUnavailable, "push ingest for '\(name)' is not configured on this server (its token variable \(variable) is not set)")
        }
        let challenge: HTTPFields = [.wwwAuthenticate: #"Bearer realm="datenwerk""#]
        guard let presented = Self.token(request.headers) else {
            return .problem(.unauthorized, "no token: send it as `Authorization: Bearer <token>` or `X-Datenwerk-Token: <token>`", headers: challenge)
        }
        guard Self.constantTimeEqual(presented, expected) else {
            logger.warning("push ingest for '\(name)': wrong token from \(context.remoteAddress?.ipAddress ?? "?")")
            return .problem(.unauthorized, "the token is not valid for '\(name)'", headers: challenge)
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBytes)
        } catch {
            return .problem(.contentTooLarge, "the body is larger than \(maxBytes) bytes")
        }
        let body = Array(buffer.readableBytesView)
        let admission = connector.admit(body, config: config)
        switch admission {
        case .ignore(let reason):
            return .json(.object([.init("status", .string("ignored")), .init("reason", .string(reason))]))
        case .forbidden(let reason):
            return .problem(.forbidden, reason)
        case .accept, .reject:
            break
        }
        let received = TimestampParser.formatISO8601(Int64(Date().timeIntervalSince1970 * 1e6))
        let origin = "POST /ingest/\(name) from \(context.remoteAddress?.ipAddress ?? "?") at \(received)"
        let report: RunReport
        do {
            report = try await submit(spec, PushedDocument(origin: origin, body: body))
        } catch {
            logger.error("push ingest for '\(name)' could not be stored: \(error)")
            return .problem(.serviceUnavailable, "not stored, send it again: \(error)", headers: [.retryAfter: "30"])
        }
        if let failure = report.failure {
            return .problem(.serviceUnavailable, "not stored (run \(report.runID) failed at \(failure.step.rawValue): \(failure.reason)); send it again",
                            headers: [.retryAfter: "30"])
        }
        if case .reject(let reason) = admission {
            return .problem(.badRequest, "\(reason); the body is kept in quarantine (run \(report.runID))")
        }
        return .json(.object([
            .init("status", .string("stored")), .init("run", .number(Double(report.runID))),
            .init("messages_in_run", .number(Double(report.totals.recordsRead))),
            .init("observations_in_run", .number(Double(report.totals.observations))),
            .init("quarantined_in_run", .number(Double(report.totals.quarantined))),
        ]))
    }

    /// Waits until the body is committed (or its run failed).
    private func submit(_ spec: PipelineSpec, _ document: PushedDocument) async throws -> RunReport {
        try await withCheckedThrowingContinuation { continuation in
            queues[spec.name, default: []].append(Waiting(document: document, continuation: continuation))
            if draining.insert(spec.name).inserted {
                Task { await self.drain(spec) }
            }
        }
    }

    private func drain(_ spec: PipelineSpec) async {
        while var waiting = queues.removeValue(forKey: spec.name), !waiting.isEmpty {
            if waiting.count > maxBatch {
                queues[spec.name] = Array(waiting[maxBatch...])
                waiting = Array(waiting[..<maxBatch])
            }
            do {
                let report = try await runner.run(spec, trigger: "push", pushed: waiting.map(\.document))
                for w in waiting { w.continuation.resume(returning: report) }
            } catch {
                for w in waiting { w.continuation.resume(throwing: error) }
            }
        }
        draining.remove(spec.name)
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
