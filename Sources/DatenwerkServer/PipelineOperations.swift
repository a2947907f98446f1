import DatenwerkCore
import DatenwerkOperations
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTransforms
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Operating pipelines over HTTP (docs/access.md); every route needs `run:<pipeline>`, `tenant:<ags>` or `admin`:
///
/// | route | answer |
/// |---|---|
/// | `POST /pipelines/{name}/runs` | 202: a manual job queued for the workers (like `datenwerk enqueue`); `Location` is its status |
/// | `GET /pipelines/{name}/runs/{job}` | the job's status, attempts and run |
/// | `POST /pipelines/{name}/quarantine/replay` (`?id=N`, repeatable) | 200: what `datenwerk quarantine replay` does, as one run here |
///
/// An unknown pipeline is answered 404 only to a client that could operate it (an admin): anyone else gets the
/// same 401/403 as for a known one, so the route does not tell which pipelines exist.
struct PipelineOperations: Sendable {
    let pipelines: [String: PipelineSpec]
    let database: Database
    let runner: PipelineRunner
    let connections: ServerConnections
    let access: AccessControl
    let logger: Logger

    func register(on router: Router<ServerRequestContext>) {
        router.post("/pipelines/:name/runs") { request, context in
            try await self.trigger(request, context: context, name: try context.parameters.require("name"))
        }
        router.get("/pipelines/:name/runs/:job") { request, context in
            try await self.job(request, context: context, name: try context.parameters.require("name"), job: try context.parameters.require("job"))
        }
        router.post("/pipelines/:name/quarantine/replay") { request, context in
            try await self.replay(request, context: context, name: try context.parameters.require("name"))
        }
    }

    /// The pipeline when the request may operate it; otherwise the answer (401/403/429, or 404 for an admin).
    private func authorize(_ request: Request, context: ServerRequestContext, name: String) async throws -> Result<PipelineSpec, ResponseError> {
        let spec = pipelines[name]
        // An unknown name (any length, from the URL) is shortened before it reaches a message or the log.
        let need = AccessNeed(.run, spec != nil || name.count <= 100 ? name : String(name.prefix(100)) + "…", tenant: spec?.tenant)
        switch try await access.check(request, context: context, need: need) {
        case .failure(let answer): return .failure(answer)
        case .success(let who):
            guard let spec else {
                let shown = name.count > 100 ? String(name.prefix(100)) + "…" : name
                let hint = closestMatch(to: name, in: Array(pipelines.keys)).map { "; did you mean '\($0)'?" } ?? ""
                return .failure(ResponseError(.problem(.notFound, "no pipeline named '\(shown)' on this server\(hint)")))
            }
            logger.info("\(request.method) \(request.uri.path) by \(who)")
            return .success(spec)
        }
    }

    func trigger(_ request: Request, context: ServerRequestContext, name: String) async throws -> Response {
        let spec: PipelineSpec
        switch try await authorize(request, context: context, name: name) {
        case .success(let s): spec = s
        case .failure(let answer): return answer.response
        }
        if let config = spec.connector, runner.connectors.connector(config.kind) is any PushConnector {
            return .problem(.conflict, "'\(name)' is a push pipeline: it runs when data is pushed to /ingest/\(name), not on request")
        }
        guard let id = try await PostgresJobQueue(database).enqueue(pipeline: name, kind: "manual", due: Date()) else {
            return .problem(.conflict, "a manual run of '\(name)' was queued at this very instant already; ask again")
        }
        let location = "/pipelines/\(name)/runs/\(id)"
        return .json(.object([
            .init("job", .number(Double(id))), .init("pipeline", .string(name)), .init("kind", .string("manual")),
            .init("status", .string("queued")), .init("href", .string(location)),
        ]), status: .accepted, headers: [.location: location])
    }

    func job(_ request: Request, context: ServerRequestContext, name: String, job: String) async throws -> Response {
        switch try await authorize(request, context: context, name: name) {
        case .success: break
        case .failure(let answer): return answer.response
        }
        guard let id = Int64(job), id > 0 else {
            return .problem(.notFound, "no job '\(job.count > 40 ? String(job.prefix(40)) + "…" : job)' of '\(name)' (job ids are whole numbers)")
        }
        guard let summary = try await JobSummary.find(id: id, pipeline: name, connections: connections) else {
            return .problem(.notFound, "no job \(id) of '\(name)'")
        }
        func time(_ date: Date?) -> JSONValue {
            date.map { .string(TimestampParser.formatISO8601(Int64(($0.timeIntervalSince1970 * 1e6).rounded()))) } ?? .null
        }
        return .json(.object([
            .init("job", .number(Double(summary.id))), .init("pipeline", .string(summary.pipeline)), .init("kind", .string(summary.kind)),
            .init("status", .string(summary.status)), .init("attempts", .number(Double(summary.attempts))),
            .init("run", summary.runID.map { .number(Double($0)) } ?? .null),
            .init("created", time(summary.createdAt)), .init("started", time(summary.startedAt)), .init("finished", time(summary.finishedAt)),
        ]), headers: [.cacheControl: "private, no-store"])
    }

    func replay(_ request: Request, context: ServerRequestContext, name: String) async throws -> Response {
        let spec: PipelineSpec
        switch try await authorize(request, context: context, name: name) {
        case .success(let s): spec = s
        case .failure(let answer): return answer.response
        }
        var ids: [Int64] = []
        for value in request.uri.queryParameters.getAll("id") {
            guard let id = Int64(value), id > 0 else {
                return .problem(.badRequest, "id must be the number of a quarantined record (datenwerk quarantine list), found '\(value.count > 40 ? String(value.prefix(40)) + "…" : String(value))'",
                                parameter: "id")
            }
            ids.append(id)
        }
        let replay = QuarantineStore(database).replay(pipeline: spec.name, ids: ids)
        let runner = self.runner
        // Like any run of the pipeline (and like the CLI): never at the same time as another.
        let report = try await PipelineLock.withLock(spec.name, database: database) {
            try await runner.run(spec, context: RunContext(trigger: "replay", replay: replay))
        }
        guard let report else {
            return .problem(.conflict, "a run of '\(name)' is in progress; replay when it has ended", headers: [.retryAfter: "30"])
        }
        if let failure = report.failure {
            logger.error("replay run \(report.runID) of \(name) failed at \(failure.step.rawValue): \(failure.message)")
            return .problem(.internalServerError, "replay run \(report.runID) of '\(name)' failed at \(failure.step.rawValue); the quarantine is unchanged (details in the server log and `datenwerk runs`)")
        }
        return .json(.object([
            .init("pipeline", .string(name)), .init("run", .number(Double(report.runID))), .init("summary", .string(replay.summary)),
            .init("loaded", .number(Double(replay.loadedCount))), .init("filtered", .number(Double(replay.filteredCount))),
            .init("still_quarantined", .number(Double(replay.stillBadRecords.count))),
            .init("not_replayable", .number(Double(replay.notReplayableRecords.count))),
            .init("inserted", .number(Double(report.load.inserted))), .init("updated", .number(Double(report.load.updated))),
        ]))
    }
}
