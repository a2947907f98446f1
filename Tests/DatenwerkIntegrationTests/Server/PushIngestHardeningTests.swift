import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkServer
import DatenwerkTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Hostile pushes (issue 10, item 5 and the push parts of item 8): every message is judged on its own, the
/// answer says what happened to it, and the database shows exactly that.
@Suite(.timeLimit(.minutes(5))) struct PushIngestHardeningTests {
    static var template: String { get throws { try String(contentsOfFile: PushIngestTests.sample, encoding: .utf8) } }
    static let device = "eui-a840416051871229"
    static let uplinkReceived = "2024-06-26T13:24:35.116615676Z"

    static func uplink(device: String) throws -> [UInt8] {
        Array(try template.replacingOccurrences(of: Self.device, with: device).utf8)
    }

    static func post(_ server: ServerHarness, _ body: [UInt8], headers: [(String, String)] = []) async throws -> ServerHarness.Answer {
        try await server.request(.POST, "/ingest/ttn-emden", headers: PushIngestTests.auth + headers, body: body)
    }

    static func quarantine(_ db: Database) async throws -> [(field: String?, reason: String, raw: String)] {
        try await db.client.query("SELECT field, reason, raw FROM datenwerk.quarantine ORDER BY id", logger: db.logger)
            .decode((String?, String, String).self).collect().map { (field: $0.0, reason: $0.1, raw: $0.2) }
    }

    static func partitions(_ db: Database) async throws -> [String] {
        try await db.client.query("""
            SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'datenwerk.observations'::regclass ORDER BY 1
            """, logger: db.logger).decode(String.self).collect()
    }

    // MARK: 1. A poison message in a group commit

    /// Twenty uplinks at once, one of them with a 10,000-character device id (its station key could not be
    /// indexed): that one is rejected and kept in quarantine, the others are stored.
    @Test func oversizedDeviceIDIsRejectedAloneAndTheOthersAreStored() async throws {
        try await PushIngestTests.withServer { server, db in
            let long = "eui-" + String(repeating: "x", count: 10_000)
            let results = try await withThrowingTaskGroup(of: (Int, ServerHarness.Answer).self) { group in
                for i in 0..<20 {
                    let body = try Self.uplink(device: i == 7 ? long : "eui-device-\(i)")
                    group.addTask { (i, try await Self.post(server, body)) }
                }
                return try await group.reduce(into: [Int: ServerHarness.Answer]()) { $0[$1.0] = $1.1 }
            }
            for (i, answer) in results where i != 7 {
                #expect(answer.status == 200, "\(i): \(answer.text)")
                #expect(answer.text.contains(#""status":"stored""#))
            }
            let poison = try #require(results[7])
            #expect(poison.status == 400, "\(poison.text)")
            let keyBytes = "ttn-emden:ht-sensor-project-br:".utf8.count + long.utf8.count
            #expect(poison.text.contains("end_device_ids.device_id: the station key is \(keyBytes) bytes long; at most 256 are accepted"))
            #expect(poison.text.contains("nothing of it was stored; the body is kept in quarantine (run "))
            #expect(try await counts(db) == Counts(observations: 57, stations: 19, quarantine: 1))
            let kept = try await Self.quarantine(db)
            #expect(kept.first?.field == "end_device_ids.device_id")
            #expect(kept.first?.raw.contains(long) == true)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE status = 'failed'") == 0)
        }
    }

    /// A message that passes every check but that the database still refuses (simulated here by a sink that fails
    /// any load holding one station, as PostgreSQL does with SQLSTATE 54000) fails its group's run; the messages
    /// are then run one by one, so only the poison is rejected (and kept in quarantine), the rest are stored.
    @Test func aGroupThatTheDatabaseRefusesIsRetriedOneByOne() async throws {
        try await TestDatabase.with { db in
            let sink = RefusingSink(inner: PostgresObservationSink(database: db), poison: "ttn-emden:ht-sensor-project-br:eui-poison")
            let runner = PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry)
            var logger = Logger(label: "test.server")
            logger.logLevel = .critical
            let server = try await ServerHarness.start(DatenwerkServer(
                configuration: .init(host: "127.0.0.1", port: 0), pipelines: [try PushIngestTests.pipeline()], database: db,
                runner: runner, environment: ["TTN_TEST_TOKEN": PushIngestTests.token], logger: logger))
            do {
                let results = try await withThrowingTaskGroup(of: (Int, ServerHarness.Answer).self) { group in
                    for i in 0..<12 {
                        let body = try Self.uplink(device: i == 5 ? "eui-poison" : "eui-device-\(i)")
                        group.addTask { (i, try await Self.post(server, body)) }
                    }
                    return try await group.reduce(into: [Int: ServerHarness.Answer]()) { $0[$1.0] = $1.1 }
                }
                for (i, answer) in results where i != 5 {
                    #expect(answer.status == 200, "\(i): \(answer.text)")
                }
                let poison = try #require(results[5])
                #expect(poison.status == 400, "\(poison.text)")
                #expect(poison.text.contains("the message could not be stored: run "))
                #expect(poison.text.contains("failed at load for this message alone (details in the server log)"))
                #expect(poison.text.contains("the body is kept in quarantine"))
                #expect(!poison.text.contains("SQLSTATE") && !poison.text.contains("PostgreSQL"))
                #expect(try await counts(db) == Counts(observations: 33, stations: 11, quarantine: 1))
                let kept = try await Self.quarantine(db)
                #expect(kept.first?.reason.contains("the database refused this message alone") == true)
                #expect(kept.first?.raw.contains("eui-poison") == true)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
        }
    }

    // MARK: 2. An array body

    @Test func arrayBodyIsRejectedAndNothingOfItIsLoaded() async throws {
        try await PushIngestTests.withServer { server, db in
            let body = Array("[\(try Self.template)]".utf8)
            let answer = try await Self.post(server, body)
            #expect(answer.status == 400, "\(answer.text)")
            #expect(answer.text.contains("the body is not a JSON object but an array: send one message per request"))
            #expect(answer.text.contains("nothing of it was stored; the body is kept in quarantine (run "))
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 1))
            #expect(try await Self.quarantine(db).first?.raw == String(decoding: body, as: UTF8.self))
        }
    }

    // MARK: 3. A string uplink_message

    @Test func stringUplinkMessageIsRejectedNotReportedStored() async throws {
        try await PushIngestTests.withServer { server, db in
            let body = Array(#"""
                {"end_device_ids":{"device_id":"eui-1","application_ids":{"application_id":"ht-sensor-project-br"}},
                 "received_at":"2024-06-26T13:24:35Z","uplink_message":"27.9"}
                """#.utf8)
            let answer = try await Self.post(server, body)
            #expect(answer.status == 400, "\(answer.text)")
            #expect(answer.text.contains("uplink_message: is a string, not an object: not an uplink message"))
            #expect(!answer.text.contains("stored\""))
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 1))
            let kept = try await Self.quarantine(db)
            #expect(kept.first?.field == "uplink_message")
            #expect(kept.first?.raw == String(decoding: body, as: UTF8.self))
        }
    }

    // MARK: 4. Implausible coordinates and times

    @Test func implausibleCoordinatesAndTimesAreQuarantinedAndCreateNoPartition() async throws {
        try await PushIngestTests.withServer { server, db in
            let template = try Self.template
            func located(_ latitude: String, _ longitude: String) -> [UInt8] {
                Array(template.replacingOccurrences(of: #""uplink_message":{"#, with: #""uplink_message":{"locations":{"user":{"latitude":\#(latitude),"longitude":\#(longitude),"source":"SOURCE_REGISTRY"}},"#).utf8)
            }
            func at(_ time: String) -> [UInt8] {
                Array(template.replacingOccurrences(of: Self.uplinkReceived, with: time).utf8)
            }
            let before = try await Self.partitions(db)
            let cases: [([UInt8], String)] = [
                (located("1e308", "8.2"), "uplink_message.locations.user.latitude: latitude 1e+308 is outside WGS84 (−90…90)"),
                (located("53.4", "-1e308"), "uplink_message.locations.user.longitude: longitude -1e+308 is outside WGS84 (−180…180)"),
                (located("91", "8.2"), "uplink_message.locations.user.latitude: latitude 91 is outside WGS84 (−90…90)"),
                (at("0001-06-26T13:24:35Z"), "uplink_message.received_at: time 0001-06-26T13:24:35Z is before 1900, not plausible for this source"),
                (at("9999-12-31T23:59:59Z"), "uplink_message.received_at: time 9999-12-31T23:59:59Z is more than a day in the future"),
            ]
            for (body, reason) in cases {
                let answer = try await Self.post(server, body)
                #expect(answer.status == 400, "\(answer.text)")
                #expect(answer.text.contains(reason), "\(answer.text)")
                #expect(answer.text.contains("the body is kept in quarantine"))
            }
            // 24 far-future months at once: none creates a partition.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for month in 0..<24 {
                    let body = at(String(format: "%04d-%02d-15T12:00:00Z", 2100 + month / 12, month % 12 + 1))
                    group.addTask { try await Self.post(server, body).status }
                }
                for try await status in group { #expect(status == 400) }
            }
            #expect(try await Self.partitions(db) == before)
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 29))
            let fields = Set(try await Self.quarantine(db).compactMap(\.field))
            #expect(fields == ["uplink_message.locations.user.latitude", "uplink_message.locations.user.longitude", "uplink_message.received_at"])
            // The plausible message next to them is stored, in its own month's partition.
            let good = try await Self.post(server, Array(template.utf8))
            #expect(good.status == 200)
            #expect(try await Self.partitions(db) == Array(Set(before + ["observations_y2024m06"])).sorted())
        }
    }

    // MARK: 5. gzip and deflate bodies, the 404

    @Test func gzipAndDeflateBodiesAreStored() async throws {
        try await PushIngestTests.withServer { server, db in
            let gzip = try Self.gzip(Self.uplink(device: "eui-gzip"))
            #expect(gzip.starts(with: [0x1F, 0x8B]))
            let zipped = try await Self.post(server, gzip, headers: [("Content-Encoding", "gzip")])
            #expect(zipped.status == 200, "\(zipped.text)")
            #expect(zipped.text.contains(#""status":"stored""#))
            let deflate = Self.zlibStored(try Self.uplink(device: "eui-deflate"))
            let deflated = try await Self.post(server, deflate, headers: [("Content-Encoding", "deflate")])
            #expect(deflated.status == 200, "\(deflated.text)")
            let keys = try await db.client.query("SELECT key FROM datenwerk.stations ORDER BY key", logger: db.logger).decode(String.self).collect()
            #expect(keys == ["ttn-emden:ht-sensor-project-br:eui-deflate", "ttn-emden:ht-sensor-project-br:eui-gzip"])
            #expect(try await counts(db) == Counts(observations: 6, stations: 2, quarantine: 0))

            let brotli = try await Self.post(server, try Self.uplink(device: "eui-br"), headers: [("Content-Encoding", "br")])
            #expect(brotli.status == 415)
            #expect(brotli.text.contains("Content-Encoding 'br' is not supported"))
            let corrupt = try await Self.post(server, Array("not gzip at all".utf8), headers: [("Content-Encoding", "gzip")])
            #expect(corrupt.status == 400)
            #expect(corrupt.text.contains("the body is not valid gzip data"))
            #expect(try await counts(db) == Counts(observations: 6, stations: 2, quarantine: 0))

            let unknown = try await server.request(.POST, "/ingest/nope", headers: PushIngestTests.auth, body: gzip)
            #expect(unknown.status == 404)
            #expect(unknown.text.contains(#""detail":"no push pipeline named 'nope'""#))
            #expect(!unknown.text.contains("ttn-emden"))
        }
    }

    /// 64 MiB of zeros gzip to about 64 kB, well under the 1 MiB limit; decoded they are far over it: 413, and the
    /// server stops inflating at the limit.
    @Test func gzipBombGets413() async throws {
        try await PushIngestTests.withServer { server, db in
            let bomb = try Self.run("/bin/sh", ["-c", "head -c 67108864 /dev/zero | gzip -c -9"], input: [])
            #expect(bomb.count < 1 << 20)
            let answer = try await Self.post(server, bomb, headers: [("Content-Encoding", "gzip")])
            #expect(answer.status == 413, "\(answer.text)")
            #expect(answer.text.contains("the body is larger than 1048576 bytes once decoded (Content-Encoding: gzip); nothing was stored"))
            #expect(try await counts(db) == Counts(observations: 0, stations: 0, quarantine: 0))
            // The server is fine afterwards.
            let next = try await Self.post(server, try Self.gzip(Self.uplink(device: "eui-after")), headers: [("Content-Encoding", "gzip")])
            #expect(next.status == 200, "\(next.text)")
        }
    }

    // MARK: helpers

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        try run("/bin/sh", ["-c", "gzip -c"], input: bytes)
    }

    static func run(_ executable: String, _ arguments: [String], input: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("\(arguments) exited with \(process.terminationStatus)") }
        return Array(data)
    }

    /// RFC 1950 zlib with stored (uncompressed) deflate blocks: what HTTP calls `deflate`.
    static func zlibStored(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65_535, bytes.count - offset)
            let final: UInt8 = offset + count == bytes.count ? 1 : 0
            out.append(final)
            out += [UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)]
            out += bytes[offset..<offset + count]
            offset += count
        } while offset < bytes.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        let adler = b << 16 | a
        out += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        return out
    }
}

/// Fails every load that stages `poison`'s station the way PostgreSQL refuses an index row that is too large.
struct RefusingSink: ObservationSink {
    let inner: PostgresObservationSink
    let poison: String

    func beginRun(pipeline: PipelineSpec, context: RunContext) async throws -> Int64 {
        try await inner.beginRun(pipeline: pipeline, context: context)
    }

    func load(runID: Int64, pipeline: PipelineSpec, context: RunContext, next: () async throws -> [StagedItem]?, totals: () -> RunTotals) async throws -> LoadResult {
        try await inner.load(runID: runID, pipeline: pipeline, context: context, next: {
            guard let batch = try await next() else { return nil }
            if batch.contains(where: { if case .station(let s) = $0 { s.key == poison } else { false } }) {
                throw PipelineError(step: .load, code: .database, message: "PostgreSQL: index row size 10040 exceeds btree version 4 maximum 2704 [SQLSTATE 54000]",
                                    sqlState: "54000")
            }
            return batch
        }, totals: totals)
    }

    func checkpoint(_ key: String) async throws -> JSONValue? { try await inner.checkpoint(key) }

    func failRun(runID: Int64, pipeline: PipelineSpec, context: RunContext, failure: PipelineError, totals: RunTotals, quarantined: [QuarantinedRecord]) async throws {
        try await inner.failRun(runID: runID, pipeline: pipeline, context: context, failure: failure, totals: totals, quarantined: quarantined)
    }
}
