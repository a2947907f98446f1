import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// One spelling of the time zone key everywhere: `timezone` (top level, `observations.time`, connectors).
/// `zone` and `time_zone` are still read, each with a warning at the key that names `timezone`.
@Suite struct TimeZoneSpellingTests {
    static func parse(_ yaml: String) throws -> PipelineSpec {
        try PipelineSpec.parse(yaml: yaml, file: "p.yaml", connectors: BuiltinConnectors.registry)
    }

    static let generic = """
        version: 1
        name: t
        tenant: "05515000"
        schedule: "5 3 * * *"
        TOP
        source: { kind: file, path: a.csv, format: { kind: csv } }
        observations:
          station: { id: id }
          time: { field: ts, format: "dd.MM.yyyy HH:mm", TIME }
          values: [{ field: t, property: air_temperature }]
        """

    static func generic(top: String, time: String) -> String {
        generic.replacingOccurrences(of: "TOP", with: top).replacingOccurrences(of: "TIME", with: time)
    }

    @Test func thePreferredSpellingGivesNoWarning() throws {
        let spec = try Self.parse(Self.generic(top: "timezone: Europe/Berlin", time: "timezone: Europe/Berlin"))
        #expect(spec.warnings.isEmpty)
        #expect(spec.observations?.time.zone == "Europe/Berlin")
    }

    @Test func oldSpellingsAreReadWithAWarningAtTheKey() throws {
        let spec = try Self.parse(Self.generic(top: "time_zone: Europe/Helsinki", time: "zone: Europe/Berlin"))
        #expect(spec.observations?.time.zone == "Europe/Berlin")
        #expect(spec.warnings.map(\.description) == [
            "p.yaml:5:1: warning: key 'time_zone' is deprecated; write 'timezone' instead (at 'time_zone')",
            "p.yaml:9:50: warning: key 'zone' is deprecated; write 'timezone' instead (at 'observations.time.zone')",
        ])
        #expect(spec.warnings.allSatisfy { $0.severity == .warning })
        // The schedule is read in the zone given under the old key: 03:05 in Helsinki is 01:05 UTC in winter.
        let cron = try #require(spec.cron)
        let next = cron.next(after: 1_704_067_200_000_000)   // 2024-01-01T00:00:00Z
        #expect(next == 1_704_071_100_000_000)                // 2024-01-01T01:05:00Z (03:05 EET)
    }

    @Test func aMistakeUnderAnOldSpellingIsReportedThere() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try Self.parse(Self.generic(top: "", time: "zone: Europe/Berln"))
        }
        #expect(error.diagnostics.count == 1)
        #expect(error.diagnostics[0].description.hasPrefix("p.yaml:9:56: error: unknown time zone 'Europe/Berln'"))
        #expect(error.diagnostics[0].description.hasSuffix("(at 'observations.time.zone')"))
        #expect(error.warnings.map(\.description) == ["p.yaml:9:50: warning: key 'zone' is deprecated; write 'timezone' instead (at 'observations.time.zone')"])
    }

    @Test func twoSpellingsAtOnceAreAnError() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try Self.parse(Self.generic(top: "", time: "zone: UTC, timezone: UTC"))
        }
        #expect(error.diagnostics.map(\.description) == [
            "p.yaml:9:50: error: 'zone' and 'timezone' are the same key in 'observations.time'; keep only 'timezone'",
        ])
    }

    @Test(arguments: [("uba-air", "zone"), ("counters-csv", "zone"), ("parking", "time_zone"), ("ngsi-ld", "time_zone")])
    func connectorsReadTheOldSpellings(_ kind: String, _ old: String) throws {
        let extra: String
        switch kind {
        case "counters-csv", "uba-air": extra = "station: s"
        case "parking": extra = "format: csv"
        default: extra = "type: T"
        }
        let yaml = """
            version: 1
            name: t
            tenant: "05515000"
            source:
              kind: \(kind)
              url: a.csv
              \(extra)
              \(old): Europe/Helsinki
            """
        let spec = try Self.parse(yaml)
        #expect(spec.connector?.values[TimeZoneKey.name] == .string("Europe/Helsinki"))
        #expect(spec.connector?.values[old] == nil)
        #expect(spec.warnings.map(\.description) == ["p.yaml:8:3: warning: key '\(old)' is deprecated; write 'timezone' instead (at 'source.\(old)')"])
        let renamed = try Self.parse(yaml.replacingOccurrences(of: "\(old):", with: "timezone:"))
        #expect(renamed.warnings.isEmpty)
        #expect(renamed.connector?.values == spec.connector?.values)
    }

    @Test func anUnknownKeyIsNotSuggestedAnOldSpelling() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try Self.parse("""
                version: 1
                name: t
                tenant: "05515000"
                source: { kind: uba-air, url: a.csv, zon: UTC }
                """)
        }
        #expect(error.diagnostics.map(\.message) == ["unknown key 'zon' in 'source' (kind: uba-air); allowed: kind, request, url, station, station_name, components, timezone"])
    }
}
