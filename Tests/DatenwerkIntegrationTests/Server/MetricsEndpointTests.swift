import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import DatenwerkTesting
import Foundation
import Testing

/// `/metrics` after real runs against a test database, parsed by the Prometheus project's own Python parser
/// (`prometheus_client.parser`): the per-pipeline counters from the run history, the HTTP requests this process
/// made to a source (by host and status), the server's requests by route pattern, the job queue.
///
/// Serialized: the in-process metrics live in one registry per process (swift-metrics has one backend), and
/// only this suite scrapes `/metrics`.
@Suite(.serialized) struct MetricsEndpointTests {
    static let energie = """
        observations:
          station: { id: messstelle, coordinates: { lon: position.lon, lat: position.lat } }
          time: { field: zeitpunkt, format: iso8601, interval: PT15M }
          values:
            - { field: energie_kwh, property: electricity_consumption, unit: kWh }
        """

    @Test func scrapeAfterRunsShowsExactCountersAndParses() async throws {
        let source = try await LoopbackHTTPServer.start { request in
            if request.path.hasPrefix("/api/v1/") {
                return .file(Paths.sample("energie-api" + request.path.replacingOccurrences(of: "/api/v1", with: "")))
            }
            return .text("no such thing", status: 404)
        }
        defer { Task { try await source.stop() } }
        let host = source.baseURL.replacingOccurrences(of: "http://", with: "")
        // What `serve` does before anything runs: requests made before it would count nowhere.
        ServerMetrics.install()
        try await TestDatabase.with { db in
            let http = try spec("""
                version: 1
                name: metrics-energie
                tenant: "05515000"
                schedule: "*/15 * * * *"
                source:
                  kind: http
                  url: \(source.baseURL)/api/v1/page-1.json
                  paging: { kind: next_link, next: links.next }
                  format: { kind: json, records: $.items }
                \(Self.energie)
                """)
            let broken = try spec("""
                version: 1
                name: metrics-broken
                tenant: "05515000"
                source:
                  kind: http
                  url: \(source.baseURL)/gone.json
                  format: { kind: json, records: $.items }
                \(Self.energie)
                """)
            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"))
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db))
            let first = try await runner.run(http, trigger: "test")
            let second = try await runner.run(http, trigger: "test")
            let failed = try await runner.run(broken, trigger: "test")
            let klimaRun = try await runner.run(klima, trigger: "test")
            #expect(first.succeeded && second.succeeded && klimaRun.succeeded)
            #expect(!failed.succeeded)

            // The queue: one job running under a lease that has expired, one due, one not due yet.
            let queue = PostgresJobQueue(db)
            try await queue.enqueue(pipeline: "metrics-energie", kind: "manual", due: Date(timeIntervalSinceNow: -60))
            let claimed = try await queue.claim(owner: "gone-worker", lease: .zero, pipelines: ["metrics-energie"])
            #expect(claimed != nil)
            try await queue.enqueue(pipeline: "metrics-energie", kind: "manual", due: Date(timeIntervalSinceNow: -30))
            try await queue.enqueue(pipeline: "metrics-energie", kind: "scheduled", due: Date(timeIntervalSinceNow: 3600))

            let server = try await ServerHarness.start(database: db, pipelines: [http, broken, klima])
            defer { Task { await server.stop() } }
            _ = try await server.request(.GET, "/health")
            _ = try await server.request(.POST, "/ingest/some-pipeline-name", body: Array("{}".utf8))
            let answer = try await server.request(.GET, "/metrics")
            #expect(answer.status == 200)
            #expect(answer.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            let samples = try PrometheusParser.parse(answer.text)

            // Per pipeline, from datenwerk.runs: exact.
            func value(_ name: String, _ labels: [String: String]) -> Double? { samples.value(name, labels) }
            let energie = ["pipeline": "metrics-energie"]
            #expect(value("datenwerk_pipeline_runs_total", ["pipeline": "metrics-energie", "outcome": "succeeded"]) == 2)
            #expect(value("datenwerk_pipeline_runs_total", ["pipeline": "metrics-energie", "outcome": "failed"]) == 0)
            #expect(value("datenwerk_pipeline_runs_total", ["pipeline": "metrics-broken", "outcome": "failed"]) == 1)
            #expect(value("datenwerk_pipeline_runs_total", ["pipeline": "metrics-broken", "outcome": "succeeded"]) == 0)
            #expect(value("datenwerk_pipeline_records_read_total", energie) == 144)
            #expect(value("datenwerk_pipeline_observations_loaded_total", energie) == 142)
            #expect(value("datenwerk_pipeline_observations_inserted_total", energie) == 71)
            #expect(value("datenwerk_pipeline_observations_updated_total", energie) == 0)
            // One bad record per run (counted by each run), kept once in quarantine.
            #expect(value("datenwerk_pipeline_records_quarantined_total", energie) == 2)
            #expect(value("datenwerk_quarantine_records", energie) == 1)
            #expect(value("datenwerk_pipeline_values_skipped_total", energie) == 0)
            #expect(value("datenwerk_pipeline_records_read_total", ["pipeline": "metrics-broken"]) == 0)
            let k = ["pipeline": "musterstadt-klima"]
            #expect(value("datenwerk_pipeline_records_read_total", k) == Double(klimaRun.totals.recordsRead))
            #expect(value("datenwerk_pipeline_observations_inserted_total", k) == 1150)
            #expect(value("datenwerk_pipeline_records_quarantined_total", k) == 2)
            #expect(value("datenwerk_quarantine_records", k) == 2)
            #expect(value("datenwerk_pipeline_values_skipped_total", k) == Double(klimaRun.totals.skipped))
            #expect(value("datenwerk_pipeline_run_duration_seconds_count", energie) == 2)
            #expect(value("datenwerk_pipeline_run_duration_seconds_bucket", ["pipeline": "metrics-energie", "le": "+Inf"]) == 2)
            #expect(value("datenwerk_pipeline_run_duration_seconds_count", ["pipeline": "metrics-broken"]) == 1)
            #expect(value("datenwerk_pipeline_runs_running", energie) == 0)
            #expect((value("datenwerk_pipeline_last_success_timestamp_seconds", energie) ?? 0) > Date(timeIntervalSinceNow: -3600).timeIntervalSince1970)
            #expect(samples.first("datenwerk_pipeline_last_success_timestamp_seconds", ["pipeline": "metrics-broken"]) == nil)
            #expect(value("datenwerk_pipeline_schedule_interval_seconds", energie) == 900)
            // Jobs now.
            #expect(value("datenwerk_jobs", ["pipeline": "metrics-energie", "state": "queued"]) == 2)
            #expect(value("datenwerk_jobs", ["pipeline": "metrics-energie", "state": "ready"]) == 1)
            #expect(value("datenwerk_jobs", ["pipeline": "metrics-energie", "state": "running"]) == 0)
            #expect(value("datenwerk_jobs", ["pipeline": "metrics-energie", "state": "lease_expired"]) == 1)
            #expect((value("datenwerk_jobs_oldest_ready_age_seconds", energie) ?? 0) >= 25)
            #expect(value("datenwerk_jobs_lease_expired_failed_total", energie) == 0)
            #expect(value("datenwerk_database_up", [:]) == 1)
            #expect((value("datenwerk_database_connections", ["application": "datenwerk-serve", "state": "active"]) ?? 0) >= 1)
            #expect((value("datenwerk_database_max_connections", [:]) ?? 0) > 0)

            // Requests this process made to the source: labelled host:port, so no other test's server adds to them.
            // Three pages twice, and one 404 (not retried).
            #expect(value("datenwerk_source_http_requests_total", ["host": host, "status": "200"]) == 6)
            #expect(value("datenwerk_source_http_requests_total", ["host": host, "status": "404"]) == 1)
            #expect(value("datenwerk_source_http_request_duration_seconds_count", ["host": host]) == 7)

            // Server requests by route pattern (the raw pipeline name never becomes a label value). Other tests
            // run servers in this process too, so these are at least, not exactly, ours.
            #expect((value("datenwerk_http_server_requests_total", ["route": "/health", "method": "GET", "status": "200"]) ?? 0) >= 1)
            let ingest = samples.all("datenwerk_http_server_requests_total").filter { $0.labels["route"]?.hasPrefix("/ingest/") == true }
            #expect(!ingest.isEmpty)
            #expect(ingest.allSatisfy { $0.labels["route"] == "/ingest/{pipeline}" })
            #expect(!answer.text.contains("some-pipeline-name"))
        }
    }

    @Test func withoutTheDatabaseTheScrapeStillAnswersWithDatabaseDown() async throws {
        // A server whose database does not exist: every query fails at once.
        let location = try await TestDatabase.serverLocation().with(database: "datenwerk_metrics_no_such_database")
        let text = try await Database.with(location) { missing in
            let server = try await ServerHarness.start(database: missing, pipelines: [])
            defer { Task { await server.stop() } }
            let answer = try await server.request(.GET, "/metrics")
            #expect(answer.status == 200)
            return answer.text
        }
        let samples = try PrometheusParser.parse(text)
        #expect(samples.value("datenwerk_database_up", [:]) == 0)
        #expect(samples.all("datenwerk_pipeline_runs_total").isEmpty)
    }
}

/// The samples of a scrape as the Prometheus project's Python client parses them (`text_string_to_metric_families`).
/// Fails (never skips) when no Python with `prometheus_client` is found: `apt-get install python3-prometheus-client`
/// (scripts/ensure-validators.sh does it as root) or `pip install prometheus_client`.
enum PrometheusParser {
    struct Sample: Decodable {
        var family: String
        var type: String
        var name: String
        var labels: [String: String]
        var value: Double
    }

    struct Samples {
        var all: [Sample]
        func all(_ name: String) -> [Sample] { all.filter { $0.name == name } }
        func first(_ name: String, _ labels: [String: String]) -> Sample? { all.first { $0.name == name && $0.labels == labels } }
        func value(_ name: String, _ labels: [String: String]) -> Double? { first(name, labels)?.value }
    }

    static let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = []
        for family in text_string_to_metric_families(sys.stdin.read()):
            for s in family.samples:
                v = s.value
                out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels,
                            "value": v if v == v and abs(v) != float("inf") else 0.0})
        json.dump(out, sys.stdout)
        """

    /// The first of `/usr/bin/python3` (Debian's, where `python3-prometheus-client` installs) and `python3` on
    /// the PATH that can import `prometheus_client`.
    static func python() throws -> String {
        for candidate in ["/usr/bin/python3", "python3"] {
            if let run = try? runPython(candidate, ["-c", "import prometheus_client"], input: ""), run.status == 0 { return candidate }
        }
        throw TestFailure("no python3 with prometheus_client: install python3-prometheus-client (scripts/ensure-validators.sh) or `pip install prometheus_client`")
    }

    static func parse(_ text: String) throws -> Samples {
        let run = try runPython(try python(), ["-c", script], input: text)
        guard run.status == 0 else { throw TestFailure("prometheus_client could not parse the scrape:\n\(run.stderr)\n--- scrape ---\n\(text)") }
        return Samples(all: try JSONDecoder().decode([Sample].self, from: Data(run.stdout.utf8)))
    }

    static func runPython(_ python: String, _ arguments: [String], input: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let dir = try Paths.temporaryDirectory()
        let (inPath, outPath, errPath) = (dir + "/in", dir + "/out", dir + "/err")
        FileManager.default.createFile(atPath: inPath, contents: Data(input.utf8))
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python.hasPrefix("/") ? python : "/usr/bin/env")
        process.arguments = python.hasPrefix("/") ? arguments : [python] + arguments
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}
