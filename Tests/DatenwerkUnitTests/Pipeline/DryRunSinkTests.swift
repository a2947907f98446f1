import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// `datenwerk run --dry-run`: bounded like a real run, and it still finds what a real run would.
@Suite struct DryRunSinkTests {
    static func pipeline(rows: [String]) throws -> PipelineSpec {
        let dir = try Paths.temporaryDirectory()
        try Data((["id;zeit;wert"] + rows).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: dir + "/d.csv"))
        return try spec("""
            version: 1
            name: dry
            tenant: "05515000"
            source: { kind: file, path: d.csv, format: { kind: csv, delimiter: ";" } }
            observations:
              station: { id: id }
              time: { field: zeit, format: iso8601 }
              values: [{ field: wert, property: vehicle_count }]
            """, in: dir)
    }

    @Test func keepsOnlyTheShownItemsAndCountsTheRest() async throws {
        let rows = (0..<500).map { "S\($0 % 5);2024-05-01T\(String(format: "%02d", $0 / 25 % 24)):\(String(format: "%02d", $0 % 25)):00Z;\($0)" }
        let sink = DryRunSink(keep: 3)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink).run(try Self.pipeline(rows: rows), trigger: "dry-run")
        #expect(report.succeeded)
        #expect(sink.shown.count == 3)
        #expect(sink.total == 505)             // 500 observations + 5 stations
        #expect(report.totals.observations == 500)
        #expect(report.totals.isBalanced)
    }

    @Test func findsRepeatedKeysLikeARealRun() async throws {
        let rows = ["A;2024-05-01T01:00:00Z;5", "A;2024-05-01T01:00:00Z;5", "A;2024-05-01T02:00:00Z;7", "A;2024-05-01T02:00:00Z;9"]
        let sink = DryRunSink(keep: 100)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink).run(try Self.pipeline(rows: rows), trigger: "dry-run")
        #expect(report.load.duplicates == 1)
        #expect(report.totals.skips[.duplicate] == 1)
        #expect(sink.conflictingRepeats == 1)
        #expect(!sink.keyCheckIncomplete)
        // Beyond maxKeys the check stops and says so instead of growing.
        let small = DryRunSink(keep: 0, maxKeys: 2)
        _ = try await PipelineRunner(fetcher: testFetcher, sink: small).run(try Self.pipeline(rows: rows + ["B;2024-05-01T03:00:00Z;1"]), trigger: "dry-run")
        #expect(small.keyCheckIncomplete)
    }
}
