import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// Issue 12 for the SensorThings, NGSI, DATEX II and parking connectors: every value is accounted for, and
/// station keys of per-server ids do not collide across servers.
@Suite struct StationPrefixAndBooksTests {
    static let kinds = ["sensorthings", "ngsi-ld", "datex2", "parking"]

    /// The fixture cases of these kinds, as (case folder, parsed pipeline).
    static func cases() throws -> [(String, PipelineSpec)] {
        let fm = FileManager.default
        var out: [(String, PipelineSpec)] = []
        for kind in kinds {
            for name in try fm.contentsOfDirectory(atPath: "\(Golden.fixtures)/\(kind)").sorted() {
                let path = "\(Golden.fixtures)/\(kind)/\(name)/pipeline.yaml"
                guard fm.fileExists(atPath: path), !fm.fileExists(atPath: "\(Golden.fixtures)/\(kind)/\(name)/expected-errors.txt") else { continue }
                let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "$REFERENCE_DATA", with: Paths.referenceData)
                out.append(("\(kind)/\(name)", try PipelineSpec.parse(yaml: text, file: path, connectors: BuiltinConnectors.registry)))
            }
        }
        return out
    }

    /// values read = loaded + quarantined + skipped, for every fixture case of these kinds (zero silent drops).
    @Test func everyCaseBalances() async throws {
        let all = try Self.cases()
        #expect(all.count >= 20)
        for (name, spec) in all {
            let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(spec, trigger: "test")
            let t = report.totals
            #expect(!t.valuesUncounted, "\(name) does not count its values")
            #expect(t.isBalanced, "\(name): \(t.valuesRead) read ≠ \(t.observations) loaded + \(t.quarantinedValues) quarantined + \(t.skipped) skipped (\(t.skips.summary))")
        }
    }

    /// Two FROST servers that both have a Thing 1, loaded into one installation: two stations, not one.
    @Test func twoServersWithTheSameThingIdKeepTheirStationsApart() async throws {
        var keys: [String: Set<String>] = [:]
        for (name, spec) in try Self.cases() where name == "sensorthings/unit-by-name-definition" || name == "sensorthings/two-servers" {
            let sink = RecordingSink()
            _ = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec, trigger: "test")
            keys[name] = Set(sink.items.compactMap { if case .station(let s) = $0 { return s.key } else { return nil } })
        }
        let city = try #require(keys["sensorthings/unit-by-name-definition"]), district = try #require(keys["sensorthings/two-servers"])
        #expect(city.contains("sensorthings-stadt:1") && district.contains("sensorthings-kreis:1"))
        #expect(city.isDisjoint(with: district))
    }

    /// A refused Datastream names itself, its unit fields and one suggestion, the same in every run.
    @Test func aRefusedDatastreamSaysWhyTheSameWayEveryTime() async throws {
        let spec = try #require(try Self.cases().first { $0.0 == "sensorthings/unit-by-name-definition" }?.1)
        var reasons: Set<String> = []
        for _ in 0..<3 {
            let sink = RecordingSink()
            _ = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec, trigger: "test")
            for case .quarantined(let q) in sink.items { reasons.insert(q.error.reason) }
        }
        #expect(reasons.count == 1)
        let reason = try #require(reasons.first)
        #expect(reason.contains("Datastream 4 'Zählstelle Ring Nord: Lkw'"))
        #expect(reason.contains("symbol 'Kfx', name 'Lastwagen', definition ''"))
        #expect(reason.contains("did you mean"))
    }

    @Test func stationPrefixIsChecked() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: p
                tenant: "00000000"
                source: { kind: sensorthings, url: x.json, properties: { T: air_temperature }, station_prefix: "Stadt A", units: { T: "Kfx" } }
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("'Stadt A' must be letters, digits, '.', '_' or '-'") })
        #expect(messages.contains { $0.contains("'T' has unit 'Kfx': unknown unit 'Kfx'") })
    }
}
