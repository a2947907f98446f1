import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// A real `datenwerk serve` process under database faults and hostile clients: it must stay up, answer 503
/// quickly while the database is away, come back by itself, and never be held by a slow client.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ServerFaultTests {
    /// A published dataset of `rows` × 3 observations (BigLoad's CSV with a `dataset:` block).
    static func dataset(_ dir: String, rows: Int) throws -> PipelineSpec {
        try BigLoad.write(dir, name: "gross", rows: rows)
        let yaml = try String(contentsOfFile: "\(dir)/gross.yaml", encoding: .utf8)
            .replacingOccurrences(of: "source:", with: """
                dataset:
                  title: Großer Datensatz
                  description: Viele Messwerte für Fehlertests.
                  theme: ENVI
                source:
                """)
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: "\(dir)/gross.yaml"))
        return try PipelineSpec.load(file: "\(dir)/gross.yaml", connectors: BuiltinConnectors.registry)
    }

    static func load(_ spec: PipelineSpec, into db: Database) async throws {
        let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
        #expect(try await runner.run(spec, trigger: "test").succeeded)
    }

    /// `datenwerk serve` on a free port; returns the process and its port once it listens.
    static func serve(_ dir: String, databaseURL: String, extra: [String] = [], environment: [String: String] = [:]) async throws -> (ChildProcess, Int) {
        let server = try ChildProcess(["serve", "--port", "0", "--workers", "0", "--no-scheduler", "--pipelines", dir,
                                       "--catalog", Paths.root + "/catalog.yaml"] + extra,
                                      environment: environment.merging(["DATABASE_URL": databaseURL]) { _, url in url })
        for _ in 0..<600 {
            if let match = server.text.firstMatch(of: /listening on http:\/\/127\.0\.0\.1:([0-9]+)/), let port = Int(match.1) { return (server, port) }
            guard server.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        server.kill9()
        throw TestFailure("serve did not start: \(server.text)")
    }

    /// Ends every backend of the server's own connections to this test's database (not the test's pool, and not
    /// the servers of tests running at the same time on other databases of the shared cluster).
    static func terminateServerBackends(_ db: Database) async throws -> Int64 {
        try await scalar(db, """
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name = '\(ServerConnections.applicationName)' AND datname = current_database()
            """)
    }

    /// A download read by a slow client: the backend is terminated while the server waits for the client, twice.
    /// The server stays up; the body completes or breaks off; the next request is answered in full.
    @Test func downloadSurvivesTerminatedBackends() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let spec = try Self.dataset(dir, rows: 20_000)
            try await Self.load(spec, into: db)
            let (server, port) = try await Self.serve(dir, databaseURL: db.location.url)
            defer { server.kill9() }
            let clean = try await RawHTTP.get(port: port, "/datasets/gross/observations.csv")
            #expect(clean.status == 200)
            #expect(clean.body.split(separator: UInt8(ascii: "\n")).count == 60_001)
            for trial in 0..<2 {
                let slow = try RawHTTP(port: port)
                try slow.send("GET /datasets/gross/observations.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                let head = try await slow.read(atLeast: 20_000)
                #expect(head.starts(with: Array("HTTP/1.1 200".utf8)), "trial \(trial)")
                // Let the server fill the socket and wait for the client; then kill its backends.
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await Self.terminateServerBackends(db) >= 0)
                let rest = try await slow.readToEnd()
                #expect(head.count + rest.count > 20_000)
                #expect(server.process.isRunning, "trial \(trial): serve died: \(server.text.suffix(2000))")
            }
            let health = try await RawHTTP.get(port: port, "/health")
            #expect(health.status == 200, "\(health.text)")
            // The same bytes as before the faults, not only as many lines.
            let full = try await RawHTTP.get(port: port, "/datasets/gross/observations.csv")
            #expect(full.status == 200)
            #expect(full.body == clean.body)
            #expect(server.process.isRunning)
        }
    }

    /// PostgreSQL stopped under a running server: /health and data requests answer 503 with Retry-After within
    /// the database timeout; once it is back the server serves again by itself, within seconds.
    @Test func outageAnswers503QuicklyAndServiceReturns() async throws {
        let scratch = try await ScratchCluster("outage")
        defer { scratch.remove() }
        let (cluster, location, logger) = (scratch.cluster, scratch.location, scratch.logger)
        let dir = try Paths.temporaryDirectory()
        let spec = try Self.dataset(dir, rows: 2_000)
        try await Database.with(location, logger: logger) { db in
            try await Migrator(db).migrate()
            try await Self.load(spec, into: db)
        }
        try Data("""
            version: 1
            name: push
            tenant: "03402000"
            source:
              kind: ttn
              token_env: PUSH_TOKEN
              fields: { TempC_SHT: air_temperature }
            """.utf8).write(to: URL(fileURLWithPath: "\(dir)/push.yaml"))
        let uplink = try String(contentsOfFile: Paths.reference("ttn-uplink/tts_v3_uplink_dragino_lsn50v2-s31_2024-06-26.json"), encoding: .utf8)
        // A load in flight when PostgreSQL stops: a worker inside serve runs a 45,000-observation job.
        let load = try PipelineSpec.load(file: try BigLoad.write(dir, name: "last", rows: 15_000))
        let (server, http) = try await Self.serve(dir, databaseURL: location.url, extra: ["--workers", "1"], environment: ["PUSH_TOKEN": "t0ken"])
        defer { server.kill9() }
        let job: Int64 = try await Database.with(location, logger: logger) { db in
            let job = try #require(try await PostgresJobQueue(db).enqueue(pipeline: load.name, kind: "manual", due: Date()))
            for _ in 0..<400 where try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE job_id = \(job)") == 0 {
                try await Task.sleep(for: .milliseconds(25))
            }
            return job
        }
        #expect(try await RawHTTP.get(port: http, "/health").status == 200)
        let stored = try await RawHTTP.post(port: http, "/ingest/push", token: "t0ken", body: uplink)
        #expect(stored.status == 200, "\(stored.text)")

        let before = try await RawHTTP.get(port: http, "/datasets/gross/observations.csv")
        #expect(before.body.split(separator: UInt8(ascii: "\n")).count == 6_001)
        // A download in flight when PostgreSQL restarts: the server survives it.
        let slow = try RawHTTP(port: http)
        try slow.send("GET /datasets/gross/observations.csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _ = try await slow.read(atLeast: 1)
        try cluster.shutdown()
        for path in ["/health", "/datasets/gross/observations.csv", "/catalog.ttl", "/"] {
            let started = ContinuousClock.now
            let answer = try await RawHTTP.get(port: http, path)
            let seconds = (ContinuousClock.now - started).seconds
            #expect(answer.status == 503, "\(path): \(answer.status) \(answer.text)")
            #expect(answer.header("Retry-After") == "5", "\(path)")
            #expect(seconds < 8, "\(path) took \(seconds) s")
            #expect(!answer.text.contains("socket") && !answer.text.contains("PSQL"), "\(answer.text)")
        }
        _ = try? await slow.readToEnd()
        // A push while the database is away: 503 at once, nothing claimed to be stored.
        let pushStarted = ContinuousClock.now
        let refused = try await RawHTTP.post(port: http, "/ingest/push", token: "t0ken", body: uplink)
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.header("Retry-After") == "5")
        #expect((ContinuousClock.now - pushStarted).seconds < 8)
        #expect(server.process.isRunning, "serve died: \(server.text.suffix(2000))")

        try cluster.start()
        let back = ContinuousClock.now
        var status = 0
        while status != 200, ContinuousClock.now - back < .seconds(30) {
            status = try await RawHTTP.get(port: http, "/health").status
            if status != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        let recovery = (ContinuousClock.now - back).seconds
        #expect(status == 200)
        #expect(recovery < 10, "service returned only after \(recovery) s")
        let full = try await RawHTTP.get(port: http, "/datasets/gross/observations.csv")
        #expect(full.status == 200)
        #expect(full.body == before.body)
        // The job interrupted by the outage is retried (its backoff skipped here) and loads exactly once.
        try await Database.with(location, logger: logger) { db in
            try await db.client.query("UPDATE datenwerk.jobs SET not_before = now() WHERE id = \(job) AND status = 'queued'", logger: db.logger)
            var status = ""
            for _ in 0..<240 where status != "succeeded" && status != "failed" {
                status = try await db.client.query("SELECT status FROM datenwerk.jobs WHERE id = \(job)", logger: db.logger).decode(String.self).collect().first ?? "?"
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(status == "succeeded", "job \(job): \(status); \(server.text.suffix(2000))")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id WHERE s.key LIKE 'last:%'") == 45_000)
        }
        // Pushes are stored again (the load pool was renewed when the database came back).
        let again = try await RawHTTP.post(port: http, "/ingest/push", token: "t0ken", body: uplink)
        #expect(again.status == 200, "\(again.text)")
        #expect(server.process.isRunning)
    }

    /// A wrong role in DATABASE_URL: `serve` stops within seconds and says what PostgreSQL said.
    @Test func badDatabaseURLFailsFastNamingTheCause() async throws {
        try await TestDatabase.with { db in
            var location = db.location
            location.username = "nobody_here"
            let started = ContinuousClock.now
            let server = try ChildProcess(["serve", "--port", "0", "--workers", "0", "--no-scheduler", "--pipelines", Paths.root + "/Pipelines/examples"],
                                          environment: ["DATABASE_URL": location.url])
            let status = await server.wait()
            let seconds = (ContinuousClock.now - started).seconds
            #expect(status != 0)
            #expect(seconds < 10, "took \(seconds) s")
            #expect(server.text.contains(#"role "nobody_here" does not exist"#), "\(server.text)")
        }
    }

    /// A client that trickles its request head is cut off after the idle timeout; SIGTERM with a client that
    /// stopped reading a download ends the process after the shutdown deadline.
    @Test func slowClientsHoldNothing() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let spec = try Self.dataset(dir, rows: 20_000)
            try await Self.load(spec, into: db)
            let (server, port) = try await Self.serve(dir, databaseURL: db.location.url, extra: ["--idle-timeout", "1", "--shutdown-timeout", "2"])
            defer { server.kill9() }
            let trickle = try RawHTTP(port: port)
            try trickle.send("GET / HTTP/1.1\r\nHo")
            let cut = try await trickle.readToEnd(timeout: 15)
            #expect(cut.closed, "the server still holds a connection that never sent its headers")
            let stalled = try RawHTTP(port: port)
            try stalled.send("GET /datasets/gross/observations.csv HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await stalled.read(atLeast: 1)
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            kill(server.process.processIdentifier, SIGTERM)
            let status = await server.wait()
            let seconds = (ContinuousClock.now - started).seconds
            #expect(seconds < 15, "SIGTERM took \(seconds) s")
            #expect(status != 137, "\(server.text.suffix(1000))")
        }
    }
}

/// A blocking loopback HTTP/1.1 client on a POSIX socket, run off the cooperative pool: it can stop reading,
/// trickle bytes and see the server close.
final class RawHTTP: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // A small receive buffer, so a client that stops reading soon holds the server's writes.
        var size: Int32 = 16 * 1024
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw TestFailure("connect to \(port) failed") }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw TestFailure("send failed") }
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// Reads until at least `count` bytes came (or the peer closed).
    func read(atLeast count: Int) async throws -> [UInt8] {
        let fd = self.fd
        return await blocking {
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 8192)
            while out.count < count {
                let n = recv(fd, &buffer, min(buffer.count, count - out.count), 0)
                if n <= 0 { break }
                out += buffer[0..<n]
            }
            return out
        }
    }

    struct Rest: Sendable {
        var bytes: [UInt8]
        var closed: Bool
        var count: Int { bytes.count }
    }

    /// Reads until the peer closes (or `timeout` seconds pass without it).
    func readToEnd(timeout: Int = 60) async throws -> Rest {
        let fd = self.fd
        return await blocking {
            var wait = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n == 0 { return Rest(bytes: out, closed: true) }
                if n < 0 { return Rest(bytes: out, closed: errno == ECONNRESET) }
                out += buffer[0..<n]
            }
        }
    }

    struct Answer: Sendable {
        var status: Int
        var head: String
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return nil
        }
    }

    /// `POST path` with a bearer token and a JSON body.
    static func post(port: Int, _ path: String, token: String, body: String) async throws -> Answer {
        try await get(port: port, path, method: "POST", headers: "Authorization: Bearer \(token)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n", body: body)
    }

    /// One request with `Connection: close`; the body de-chunked.
    static func get(port: Int, _ path: String, method: String = "GET", headers: String = "", body: String = "") async throws -> Answer {
        let client = try RawHTTP(port: port)
        try client.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\(headers)\r\n\(body)")
        let all = try await client.readToEnd().bytes
        guard let split = all.indices.first(where: { all[$0...].starts(with: [13, 10, 13, 10]) }) else { throw TestFailure("no answer for \(path)") }
        let head = String(decoding: all[..<split], as: UTF8.self)
        var body = Array(all[(split + 4)...])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return Answer(status: status, head: head, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let end = bytes[i...].indices.first(where: { bytes[$0...].starts(with: [13, 10]) }),
                  let size = Int(String(decoding: bytes[i..<end], as: UTF8.self), radix: 16), size > 0 else { break }
            let start = end + 2
            out += bytes[start..<min(start + size, bytes.count)]
            i = start + size + 2
        }
        return out
    }
}
