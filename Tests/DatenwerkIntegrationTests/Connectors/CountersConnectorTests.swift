import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import DatenwerkTransforms
import Foundation
import Testing

@Suite struct CountersConnectorTests {
    @Test func springAndAutumnHoursOfHourlyRows() async throws {
        let items = try await run(Self.neutor, layout: "station: neutor")
        let totals = observations(items).filter { $0.stationKey == "counters-csv:neutor" }
        func at(_ start: String) -> [Observation] { totals.filter { TimestampParser.formatISO8601($0.phenomenonStart) == start } }
        // 27 Mar: 1:00 CET, then the placeholder `3:00,0,0,0` (dropped), then 3:00 CEST.
        #expect(at("2016-03-27T00:00:00Z").map(\.result) == [96])
        #expect(at("2016-03-27T01:00:00Z").map(\.result) == [60])
        #expect(at("2016-03-27T01:00:00Z").first?.phenomenonEnd == at("2016-03-27T02:00:00Z").first?.phenomenonStart)
        // 30 Oct: 2:00 is listed once and covers 02:00 CEST–03:00 CET, two hours.
        let repeated = try #require(at("2016-10-30T00:00:00Z").first)
        #expect(repeated.result == 394)
        #expect(TimestampParser.formatISO8601(repeated.phenomenonEnd!) == "2016-10-30T02:00:00Z")
        #expect(at("2016-10-30T02:00:00Z").map(\.result) == [115])   // 3:00 CET
    }

    /// A file that lists the autumn hour twice gets two one-hour intervals; a real zero row at
    /// 03:00 on the spring day (no placeholder before it) is kept.
    @Test func bothAutumnHoursAndARealZeroAfterTheGap() async throws {
        let file = try temporaryFile("counts.csv", """
            Zeit,Zählung
            3/27/2016 1:00,4
            3/27/2016 3:00,0
            3/27/2016 4:00,2
            10/30/2016 1:00,7
            10/30/2016 2:00,5
            10/30/2016 2:00,6
            10/30/2016 3:00,8

            Jahressumme,32
            """)
        let lines = Golden.lines(try await run(file, layout: "station: test"))
        #expect(lines == [
            #"{"station":"counters-csv:test","name":"test","kind":"bicycle_counter","properties":{"counter_id":"test"}}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-03-27T00:00:00Z","end":"2016-03-27T01:00:00Z","value":4}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-03-27T01:00:00Z","end":"2016-03-27T02:00:00Z","value":0}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-03-27T02:00:00Z","end":"2016-03-27T03:00:00Z","value":2}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-10-29T23:00:00Z","end":"2016-10-30T00:00:00Z","value":7}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-10-30T00:00:00Z","end":"2016-10-30T01:00:00Z","value":5}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-10-30T01:00:00Z","end":"2016-10-30T02:00:00Z","value":6}"#,
            #"{"station":"counters-csv:test","property":"bicycle_count","unit":"1","start":"2016-10-30T02:00:00Z","end":"2016-10-30T03:00:00Z","value":8}"#,
        ])
    }

    /// Wide files on DST days: a row of 23 or 25 values holds the real hours in order (here the header lists
    /// 23 or 25 labels too; `CountedConnectorsTests` has the usual 24-label header); a row of 24 values follows
    /// the labels (spring `2:00` has no hour, autumn `2:00` covers both).
    @Test func hourColumnsOnDSTDays() async throws {
        let hours23 = (0..<24).filter { $0 != 2 }.map { "\($0):00" }
        let spring23 = try temporaryFile("2015_03_29_24mq.csv",
            "Name  /  Date: 2015_03_29;" + hours23.joined(separator: ";") + "\nMQ_1 (MQ1);" + (0..<23).map { String($0 + 1) }.joined(separator: ";") + ";\n")
        let starts23 = observations(try await run(spring23, layout: "layout: hour-columns", property: "vehicle_count"))
            .map { (TimestampParser.formatISO8601($0.phenomenonStart), $0.result) }
        #expect(starts23.count == 23)
        #expect(starts23[1] == ("2015-03-29T00:00:00Z", 2))   // 1:00 CET
        #expect(starts23[2] == ("2015-03-29T01:00:00Z", 3))   // 3:00 CEST, right after

        let hours25 = ["0:00", "1:00", "2:00", "2:00"] + (3..<24).map { "\($0):00" }
        let autumn25 = try temporaryFile("2015_10_25_24mq.csv",
            "Name  /  Date: 2015_10_25;" + hours25.joined(separator: ";") + "\nMQ_1 (MQ1);" + (0..<25).map { String($0 + 1) }.joined(separator: ";") + ";\n")
        let starts25 = observations(try await run(autumn25, layout: "layout: hour-columns", property: "vehicle_count"))
            .map { (TimestampParser.formatISO8601($0.phenomenonStart), $0.result) }
        #expect(starts25.count == 25)
        #expect(starts25[2] == ("2015-10-25T00:00:00Z", 3))   // 2:00 CEST
        #expect(starts25[3] == ("2015-10-25T01:00:00Z", 4))   // 2:00 CET
        #expect(starts25[24] == ("2015-10-25T22:00:00Z", 25)) // 23:00 CET

        let labels24 = (0..<24).map { "\($0):00" }.joined(separator: ";")
        let spring24 = try temporaryFile("2015_03_29b_24mq.csv",
            "Name  /  Date: 2015_03_29;" + labels24 + "\nMQ_1 (MQ1);1;2;;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;\nMQ_2 (MQ2);1;2;9;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;;\n")
        let lines = Golden.lines(try await run(spring24, layout: "layout: hour-columns", property: "vehicle_count"))
        #expect(lines.filter { $0.contains(#""station":"counters-csv:MQ_1","property""#) }.count == 23)
        #expect(lines.contains(#"{"quarantined":"count 9 in hour 2:00, which does not exist that day in Europe/Berlin (clocks skip it); are the hour columns shifted?","origin":"2015_03_29b_24mq.csv","line":3,"record":2,"field":"2:00"}"#))

        let autumn24 = try temporaryFile("2015_10_25b_24mq.csv", "Name  /  Date: 2015_10_25;" + labels24 + "\nMQ_1 (MQ1);" + (0..<24).map { String($0 + 1) }.joined(separator: ";") + ";\n")
        let long = observations(try await run(autumn24, layout: "layout: hour-columns", property: "vehicle_count"))[2]
        #expect(TimestampParser.formatISO8601(long.phenomenonStart) == "2015-10-25T00:00:00Z")
        #expect(TimestampParser.formatISO8601(long.phenomenonEnd!) == "2015-10-25T02:00:00Z")
    }

    @Test func throughALoopbackServer() async throws {
        let file = Paths.reference("bicycle-counts/muenster_kfz_2015_01_01_24mq.excerpt.csv")
        let server = try await LoopbackHTTPServer.start { _ in .file(file, contentType: "text/csv") }
        defer { Task { try await server.stop() } }
        let items = try await run("\(server.baseURL)/data/raw/2015_01_01_24mq.csv", layout: "layout: hour-columns", property: "vehicle_count")
        let expected = try String(contentsOfFile: Golden.fixtures + "/counters-csv/kfz-hour-columns/expected.ndjson", encoding: .utf8)
        #expect(Golden.lines(items).joined(separator: "\n") + "\n" == expected.replacingOccurrences(of: "muenster_kfz_2015_01_01_24mq.excerpt.csv", with: "2015_01_01_24mq.csv"))
    }

    @Test func configurationProblems() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: c
                tenant: "05515000"
                source: { kind: counters-csv, url: x.csv, layout: hourly, delimitter: ";" }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("'hourly' is not one of hourly-rows, hour-columns (at 'source.layout')"))
        #expect(messages.contains { $0.hasPrefix("unknown key 'delimitter'") && $0.hasSuffix("did you mean 'delimiter'?") })
        let missing = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: c
                tenant: "05515000"
                source: { kind: counters-csv, url: x.csv, zone: Europe/Berlni }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let problems = missing.diagnostics.map(\.message)
        #expect(problems.contains { $0.contains("hourly-rows needs 'station'") })
        #expect(problems.contains { $0.contains("unknown time zone 'Europe/Berlni'; did you mean 'Europe/Berlin'?") })
    }

    static let neutor = Paths.reference("bicycle-counts/muenster_zaehlstelle_neutor_2016_stundenauswertung.excerpt.csv")

    private func observations(_ items: [StagedItem]) -> [Observation] {
        items.compactMap { if case .observation(let o) = $0 { return o } else { return nil } }
    }

    private func temporaryFile(_ name: String, _ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("counters-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func run(_ url: String, layout: String, property: String = "bicycle_count") async throws -> [StagedItem] {
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: counters-test
            tenant: "05515000"
            source:
              kind: counters-csv
              url: "\(url)"
              property: \(property)
              \(layout)
            """, file: "/tmp/counters.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        return sink.items
    }
}
