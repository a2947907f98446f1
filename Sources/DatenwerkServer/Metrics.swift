import DatenwerkPipeline
import DatenwerkPostgres
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus

/// The process's metrics backend: swift-prometheus behind the swift-metrics API. The first server of a process
/// bootstraps it (once: swift-metrics allows one backend per process); from then on every `Counter`/`Timer` made
/// anywhere in the process — `HTTPFetcher`'s requests to sources, Hummingbird's `MetricsMiddleware` — lands in
/// `registry`, which `/metrics` writes out. The names Hummingbird uses are renamed to Datenwerk's here.
package enum ServerMetrics {
    package static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, labels in
            (renamed[name] ?? name, labels.map { (renamedLabels[$0.0] ?? $0.0, $0.1) })
        }
        // Sources answer slower than the server does: buckets up to a minute (the default head timeout).
        factory.durationHistogramBuckets["datenwerk_source_http_request_duration_seconds"] =
            [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
             .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Hummingbird's `MetricsMiddleware` names → ours.
    static let renamed = [
        "hb.requests": "datenwerk_http_server_requests_total",
        "hb.request.errors": "datenwerk_http_server_request_errors_total",
        "http.server.request.duration": "datenwerk_http_server_request_duration_seconds",
        "http.server.active_requests": "datenwerk_http_server_active_requests",
    ]
    static let renamedLabels = [
        "http.route": "route", "http.request.method": "method", "http.response.status_code": "status", "error.type": "status",
    ]

    /// Upper bounds (seconds) of the run duration histogram.
    package static let runDurationBounds: [Double] = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200]

    /// Makes sure the backend is installed (before the first request is counted: metrics made earlier stay no-ops).
    package static func install() { _ = registry }
}

/// `GET /metrics`: Prometheus text format 0.0.4. What this process counted (requests to sources made here, server
/// requests by route pattern and status), then what the database says at this moment (per-pipeline totals of the
/// run history, the job queue and its leases, quarantine, database connections). When the database does not
/// answer, the answer is still 200, with `datenwerk_database_up 0` and the in-process part only. docs/metrics.md
/// lists every metric.
struct MetricsEndpoint: Sendable {
    let queries: MetricsQueries
    /// Longest gap (s) between two fires of each scheduled pipeline, plus its jitter: what "stale" is measured in.
    let scheduleIntervals: [(pipeline: String, seconds: Double)]
    let logger: Logger

    init(queries: MetricsQueries, pipelines: [PipelineSpec], logger: Logger) {
        self.queries = queries
        self.logger = logger
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        scheduleIntervals = pipelines.compactMap { spec in
            guard let cron = spec.cron, var fire = cron.next(after: now) else { return nil }
            var longest: Int64 = 0
            for _ in 0..<12 {
                guard let next = cron.next(after: fire) else { break }
                longest = max(longest, next - fire)
                fire = next
            }
            guard longest > 0 else { return nil }
            return (spec.name, Double(longest) / 1_000_000 + Double(spec.jitterSeconds))
        }.sorted { $0.pipeline < $1.pipeline }
    }

    func respond() async -> Response {
        var text = PrometheusText()
        text.append(ServerMetrics.registry.emitToString())
        do {
            let snapshot = try await queries.snapshot(bounds: ServerMetrics.runDurationBounds)
            text.gauge("datenwerk_database_up", "1 when the database answered this scrape's queries, else 0", [([], 1)])
            Self.write(snapshot, into: &text)
        } catch {
            logger.warning("/metrics: the database did not answer: \(describeDatabaseError(error))")
            text.gauge("datenwerk_database_up", "1 when the database answered this scrape's queries, else 0", [([], 0)])
        }
        text.gauge("datenwerk_pipeline_schedule_interval_seconds", "longest gap between two scheduled fires of the pipeline, plus its jitter",
                   scheduleIntervals.map { ([("pipeline", $0.pipeline)], $0.seconds) })
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text.text)))
    }

    static func write(_ s: MetricsQueries.Snapshot, into text: inout PrometheusText) {
        func perPipeline(_ value: (MetricsQueries.PipelineRuns) -> Int64) -> [([(String, String)], Double)] {
            s.runs.map { ([("pipeline", $0.pipeline)], Double(value($0))) }
        }
        text.counter("datenwerk_pipeline_runs_total", "finished runs by outcome (from datenwerk.runs)",
                     s.runs.flatMap { [([("pipeline", $0.pipeline), ("outcome", "succeeded")], Double($0.succeeded)),
                                       ([("pipeline", $0.pipeline), ("outcome", "failed")], Double($0.failed))] })
        text.gauge("datenwerk_pipeline_runs_running", "runs started and not finished (a run whose process died stays here until recorded)", perPipeline(\.running))
        text.counter("datenwerk_pipeline_records_read_total", "records read by succeeded runs", perPipeline(\.recordsRead))
        text.counter("datenwerk_pipeline_observations_loaded_total", "observations loaded by succeeded runs (new, changed and unchanged)", perPipeline(\.loaded))
        text.counter("datenwerk_pipeline_observations_inserted_total", "observations new to the database", perPipeline(\.inserted))
        text.counter("datenwerk_pipeline_observations_updated_total", "observations whose stored value changed", perPipeline(\.updated))
        text.counter("datenwerk_pipeline_records_quarantined_total", "records set aside in quarantine by succeeded runs", perPipeline(\.quarantined))
        text.counter("datenwerk_pipeline_values_skipped_total", "values skipped under a named rule by succeeded runs", perPipeline(\.skipped))
        text.counter("datenwerk_pipeline_bytes_read_total", "bytes read from sources by succeeded runs", perPipeline(\.bytes))
        text.gauge("datenwerk_pipeline_last_success_timestamp_seconds", "Unix time the last succeeded run finished",
                   s.runs.compactMap { r in r.lastSuccess.map { ([("pipeline", r.pipeline)], $0) } })
        text.histogram("datenwerk_pipeline_run_duration_seconds", "duration of finished runs (succeeded and failed)",
                       bounds: ServerMetrics.runDurationBounds,
                       s.runs.map { ([("pipeline", $0.pipeline)], $0.durationBuckets, $0.succeeded + $0.failed, $0.durationSum) })
        text.gauge("datenwerk_jobs", "jobs by state: queued (ready: due now), running (live lease), lease_expired (its worker is gone; will be retaken)",
                   s.jobs.flatMap { j in [("queued", j.queued), ("ready", j.ready), ("running", j.running), ("lease_expired", j.leaseExpired)]
                       .map { ([("pipeline", j.pipeline), ("state", $0.0)], Double($0.1)) } })
        text.gauge("datenwerk_jobs_oldest_ready_age_seconds", "how long the oldest due job has waited for a worker (0: none waiting)",
                   s.jobs.map { ([("pipeline", $0.pipeline)], $0.oldestReadySeconds) })
        text.counter("datenwerk_jobs_lease_expired_failed_total", "jobs failed for good because their lease expired after the last attempt",
                     s.jobs.map { ([("pipeline", $0.pipeline)], Double($0.failedLeaseExpired)) })
        text.gauge("datenwerk_quarantine_records", "records held in quarantine now (replay removes those that load)",
                   s.quarantine.map { ([("pipeline", $0.pipeline)], Double($0.records)) })
        text.gauge("datenwerk_database_connections", "backends connected to the database by application (datenwerk-serve: the server's own; other) and state",
                   s.connections.map { ([("application", $0.application), ("state", $0.state)], Double($0.count)) })
        text.gauge("datenwerk_database_max_connections", "the server's max_connections", [([], Double(s.maxConnections))])
    }
}

/// Writes metric families in the Prometheus text format (0.0.4): `# HELP`, `# TYPE`, samples with escaped labels.
struct PrometheusText {
    private(set) var text = ""

    mutating func append(_ raw: String) { text += raw }

    mutating func counter(_ name: String, _ help: String, _ samples: [([(String, String)], Double)]) {
        family(name, help, "counter", samples.map { (name, $0.0, $0.1) })
    }

    mutating func gauge(_ name: String, _ help: String, _ samples: [([(String, String)], Double)]) {
        family(name, help, "gauge", samples.map { (name, $0.0, $0.1) })
    }

    /// `series`: labels, cumulative counts per bound, total count, sum.
    mutating func histogram(_ name: String, _ help: String, bounds: [Double], _ series: [([(String, String)], [Int64], Int64, Double)]) {
        var samples: [(String, [(String, String)], Double)] = []
        for (labels, buckets, count, sum) in series {
            for (bound, n) in zip(bounds, buckets) { samples.append((name + "_bucket", labels + [("le", Self.number(bound))], Double(n))) }
            samples.append((name + "_bucket", labels + [("le", "+Inf")], Double(count)))
            samples.append((name + "_sum", labels, sum))
            samples.append((name + "_count", labels, Double(count)))
        }
        family(name, help, "histogram", samples)
    }

    private mutating func family(_ name: String, _ help: String, _ type: String, _ samples: [(String, [(String, String)], Double)]) {
        text += "# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))\n"
        text += "# TYPE \(name) \(type)\n"
        for (sample, labels, value) in samples {
            text += sample
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " " + Self.number(value) + "\n"
        }
    }

    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integers without a fraction (`12`), others as Swift prints them (`0.25`, `1e-05`); `+Inf`, `-Inf`, `NaN`.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
