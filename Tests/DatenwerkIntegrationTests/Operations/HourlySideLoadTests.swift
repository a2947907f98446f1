import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Logging
import NIOCore
import Testing

/// A first load's new hourly dashboard buckets go in on a second connection beside the load, committed right
/// after it (`HourlySideLoad`). These tests prove that path is taken, that a process dying between the two
/// commits loses nothing for good (the next load recomputes), and the channel between the two.
@Suite(.serialized) struct HourlySideLoadTests {
    /// The process dies at `after-commit` — reached only when the side transaction holds the buckets: the load is
    /// committed, the buckets are not, the run row says so; the next load of the tenant repairs them first.
    @Test(.timeLimit(.minutes(3))) func aLoadKilledBetweenItsCommitAndItsHourlyBucketsIsRepairedByTheNextLoad() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            // 10-minute steps: 10 stations × 600 times × 3 values; 100 hours per station and value.
            let file = try BigLoad.write(dir, name: "side-load", rows: 6_000, stations: 10, step: 600)
            let child = try ChildProcess(["run", file], environment: ["DATABASE_URL": db.location.url, "DATENWERK_FAILPOINT": "after-commit:side-load"])
            #expect(await child.wait() == 128 + SIGKILL, "the run was not killed at after-commit: \(child.text)")

            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 18_000)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE status = 'succeeded' AND aggregates_pending IS NOT NULL") == 1)
            // The series came with the load, and the first hour of each of the 30 series (a new series starts on
            // the full hour, so its first hour is computed from `observations` by the load when its second row is
            // off the hour); the 99 hours after it and the new days (5 days a series, all new), beside the load,
            // died with the process.
            let broken = try await DashboardAggregatesTests.differences(db)
            #expect(broken["series"] == 0, "\(broken)")
            #expect(broken["hourly"] == 2_970, "\(broken)")
            #expect(broken["daily"] == 150, "\(broken)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 30)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_daily") == 0)

            // The same input again: nothing new to write, but the run first repairs the aggregates.
            let spec = try PipelineSpec.load(file: file)
            let runner = PipelineRunner(fetcher: testFetcher, sink: PostgresObservationSink(database: db), connectors: BuiltinConnectors.registry)
            let again = try await runner.run(spec, trigger: "test")
            #expect(again.succeeded)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE aggregates_pending IS NOT NULL") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "after the repair")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 3_000)
        }
    }

    /// Without a crash: the buckets are all there when the run returns, and no mark is left; a second first load
    /// continuing the same series (its first hour continues a stored one) stays consistent too.
    /// `groupBytes`: the default, and groups of a few rows on both connections (the side's buckets then go in many
    /// key-ordered groups, and its connection opens in the middle of the load).
    @Test(.timeLimit(.minutes(3)), arguments: [4 << 20, 2048])
    func firstLoadsOfTenMinuteDataCommitTheirHourlyBucketsBesideTheLoad(groupBytes: Int) async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            // 298 times: hours 0–48 whole, hour 49 four rows (its last two come with the next load).
            let file = try BigLoad.write(dir, name: "side-ok", rows: 2_980, stations: 10, step: 600)
            var sink = PostgresObservationSink(database: db)
            sink.groupBytes = groupBytes
            let runner = PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry)
            #expect(try await runner.run(try PipelineSpec.load(file: file), trigger: "test").succeeded)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 1_500)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE aggregates_pending IS NOT NULL") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "first load")

            // The next 300 times: the rest of hour 49 (added to its stored bucket), then hours 50–99 (new).
            var csv = "station,time,t,h,p\n"
            for i in 0..<3_000 {
                let t = 1_704_067_200 + (298 + i / 10) * 600
                csv += "s\(i % 10),\(Date(timeIntervalSince1970: TimeInterval(t)).formatted(.iso8601)),\(Double(i % 70) / 10),\(i % 100),\(990 + i % 20)\n"
            }
            try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/side-ok.csv"))
            let second = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(second.succeeded && second.load.inserted == 9_000, "\(second.load)")
            try await DashboardAggregatesTests.expectConsistent(db, "second first load")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 3_000)
        }
    }

    /// A file station by station across two months: every fresh month gets its indexes after the COPY, so the
    /// side holds its hourly buckets back and COPYs them, with the new days, beside those index builds. The log
    /// says which way each load went; the aggregates equal a GROUP BY from scratch either way, and no mark is left.
    /// A second file continuing the series (days and hours after the stored ones) goes the same way.
    @Test(.timeLimit(.minutes(3))) func bucketsOfAFileStationByStationGoInBesideTheIndexBuilds() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let file = try BigLoad.write(dir, name: "side-held", rows: 1, stations: 1, step: 600)
            /// Station by station, 10-minute steps: `count` times from `first` (steps after 2024-01-25T00:00Z).
            func write(first: Int, count: Int) throws {
                var csv = "station,time,t,h,p\n"
                for station in 0..<4 {
                    for step in first..<(first + count) {
                        let t = 1_706_140_800 + step * 600
                        csv += "s\(station),\(Date(timeIntervalSince1970: TimeInterval(t)).formatted(.iso8601)),\(Double((step * 7 + station) % 300) / 10 - 5),\((step + station) % 100),\(960 + step % 60)\n"
                    }
                }
                try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/side-held.csv"))
            }
            let log = AccessControlTests.LogCapture()
            var sink = PostgresObservationSink(database: db.logging(to: Logger(label: "side-held") { _ in log }))
            sink.groupBytes = 4096
            let runner = PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry)

            // 12 days from 25 January: two months, 288 hours and 13 Berlin days a series.
            try write(first: 0, count: 12 * 144)
            let first = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(first.succeeded && first.load.inserted == 4 * 3 * 12 * 144, "\(first.load) \(first.failure.map { "\($0)" } ?? "")")
            #expect(log.text.contains("new hours and days beside the load, after the rows"), "\(log.text)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 12 * 288)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE aggregates_pending IS NOT NULL") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "first load, station by station")

            // The next 10 days (February only, its partition exists): no fresh table, so the buckets go as they close.
            try write(first: 12 * 144, count: 10 * 144)
            let lines = log.lines.withLock { $0.count }
            let second = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(second.succeeded && second.load.inserted == 4 * 3 * 10 * 144, "\(second.load)")
            let secondLog = log.lines.withLock { $0[lines...].joined(separator: "\n") }
            #expect(secondLog.contains("new hours and days beside the load") && !secondLog.contains("after the rows"), "\(secondLog)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 12 * 22 * 24)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE aggregates_pending IS NOT NULL") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "second load")
        }
    }

    /// The same file with one line twice in a row (its hour still open, so no bucket is revisited): the buckets are
    /// held back and handed to the side, which COPYs them while the fresh months' primary keys are built — and that
    /// build fails on the repeated key. The fast path gives way (back to its savepoint, the rows merged from
    /// staging), the side is rolled back, the aggregates are recomputed: they equal a GROUP BY, no mark is left,
    /// the repeat is counted once as a duplicate.
    @Test(.timeLimit(.minutes(3))) func aFastPathThatGivesWayAtItsIndexBuildsRollsTheHeldBackSideBack() async throws {
        try await TestDatabase.with { db in
            let dir = try Paths.temporaryDirectory()
            let file = try BigLoad.write(dir, name: "side-repeat", rows: 1, stations: 1, step: 600)
            var csv = "station,time,t,h,p\n"
            for station in 0..<4 {
                for step in 0..<(12 * 144) {
                    let t = 1_706_140_800 + step * 600
                    let line = "s\(station),\(Date(timeIntervalSince1970: TimeInterval(t)).formatted(.iso8601)),\(Double((step * 7 + station) % 300) / 10 - 5),\((step + station) % 100),\(960 + step % 60)\n"
                    csv += line
                    if station == 2, step == 1000 { csv += line }
                }
            }
            try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/side-repeat.csv"))
            let log = AccessControlTests.LogCapture()
            var sink = PostgresObservationSink(database: db.logging(to: Logger(label: "side-repeat") { _ in log }))
            sink.groupBytes = 4096
            let runner = PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry)
            let report = try await runner.run(try PipelineSpec.load(file: file), trigger: "test")
            #expect(report.succeeded && report.load.inserted == 4 * 3 * 12 * 144 && report.load.duplicates == 3,
                    "\(report.load) \(report.failure.map { "\($0)" } ?? "")")
            #expect(log.text.contains("first-load fast path gave way"), "\(log.text)")
            #expect(!log.text.contains("beside the load"), "\(log.text)")
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations") == 4 * 3 * 12 * 144)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.observations_hourly") == 12 * 288)
            #expect(try await scalar(db, "SELECT count(*) FROM datenwerk.runs WHERE aggregates_pending IS NOT NULL") == 0)
            try await DashboardAggregatesTests.expectConsistent(db, "after the fast path gave way")
        }
    }

    @Test func theChunkChannelKeepsTheOrderAndLetsItsProducerGoWhenAbandoned() async {
        let channel = ChunkChannel(capacity: 2)
        let consumer = Task {
            var got: [UInt32] = []
            while let chunk = await channel.next() { got.append(chunk.getInteger(at: 0, as: UInt32.self) ?? .max) }
            return got
        }
        for i: UInt32 in 0..<500 {
            var b = ByteBuffer()
            b.writeInteger(i)
            await channel.send(b)
        }
        channel.finish()
        #expect(await consumer.value == Array(0..<500))

        // No consumer: the producer waits once two chunks wait, until the consumer gives up.
        let abandoned = ChunkChannel(capacity: 2)
        let producer = Task {
            for i: UInt32 in 0..<10 {
                var b = ByteBuffer()
                b.writeInteger(i)
                await abandoned.send(b)
            }
        }
        abandoned.abandon()
        await producer.value
        #expect(await abandoned.next() == nil)
    }
}
