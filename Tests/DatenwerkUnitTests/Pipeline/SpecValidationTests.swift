import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

@Suite struct SpecValidationTests {
    static let threeMistakes = """
        version: 1
        name: parking
        tenant: "05515000"
        source:
          kind: http
          urll: https://example.org/parking.json
          format: { kind: json, records: $.items }
        observations:
          station: { id: id }
          time: { field: ts, format: iso8601 }
          values:
            - { field: free, property: parking_free_space }
        on_bad_record: quarantaine
        """

    @Test func reportsEveryProblemWithItsLocation() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: Self.threeMistakes, file: "Pipelines/parking.yaml")
        }
        let lines = error.diagnostics.map(\.description)
        #expect(lines == [
            "Pipelines/parking.yaml:5:3: error: missing required key 'url' in 'source' (kind: http)",
            "Pipelines/parking.yaml:6:3: error: unknown key 'urll' in 'source' (kind: http); did you mean 'url'?",
            "Pipelines/parking.yaml:12:7: error: unknown observed property 'parking_free_space'; did you mean 'parking_free_spaces'? (at 'observations.values[0]')",
            "Pipelines/parking.yaml:13:16: error: 'quarantaine' is not one of fail, skip, quarantine; did you mean 'quarantine'? (at 'on_bad_record')",
        ])
    }

    @Test func rejectsUnknownKeysEverywhereWithSuggestions() throws {
        let yaml = """
            version: 1
            name: x
            tenant: "05515000"
            shedule: "5 * * * *"
            source:
              kind: file
              path: a.csv
              format: { kind: csv, delimter: ";" }
            observations:
              station: { id: id, coordinats: { x: a, y: b } }
              time: { field: ts, format: iso8601, zone: Europe/Berln }
              values: [{ field: t, property: air_temperature, unit: "°X" }]
            """
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.parse(yaml: yaml, file: "p.yaml") }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unknown key 'shedule' in the pipeline; did you mean 'schedule'?"))
        #expect(messages.contains("unknown key 'delimter' in 'source.format' (kind: csv); did you mean 'delimiter'?"))
        #expect(messages.contains("unknown key 'coordinats' in 'observations.station'; did you mean 'coordinates'?"))
        #expect(messages.contains { $0.hasPrefix("unknown time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?") })
        #expect(messages.contains { $0.contains("unit '°X' cannot be converted to air_temperature's canonical unit 'Cel'") })
        #expect(error.diagnostics.allSatisfy { $0.line != nil && $0.column != nil })
    }

    @Test func yamlSyntaxErrorsAreLocated() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: "version: 1\nname: [unclosed\n", file: "broken.yaml")
        }
        #expect(error.diagnostics.count == 1)
        #expect(error.diagnostics[0].file == "broken.yaml")
        #expect(error.diagnostics[0].line == 3)
        #expect(error.diagnostics[0].message.hasPrefix("YAML syntax:"))
    }

    @Test func checksTenantNameVersionAndPagingRules() throws {
        let yaml = """
            version: 2
            name: Bad Name
            tenant: "5515000"
            source:
              kind: http
              url: ftp://example.org/x
              paging: { kind: offset }
              format: { kind: json }
            observations:
              station: { id: id }
              time: { field: ts, format: "dd.MM.yyyy hh:mm" }
              values: [{ field: v, property: vehicle_count }]
            """
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.parse(yaml: yaml, file: "p.yaml") }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("unsupported pipeline version 2; this Datenwerk reads version 1 (at 'version')"))
        #expect(messages.contains("pipeline name 'Bad Name' must be lowercase letters, digits, '-' or '_' (at 'name')"))
        #expect(messages.contains { $0.hasPrefix("tenant '5515000' must be an 8-digit Amtlicher Gemeindeschlüssel") })
        #expect(messages.contains("'ftp://example.org/x' is not an http(s) URL (at 'source.url')"))
        #expect(messages.contains("paging kind 'offset' needs 'page_size' (at 'source.paging.page_size')"))
        #expect(messages.contains { $0.contains("'hh'") })
        #expect(error.diagnostics.count == 6)
    }

    @Test func examplePipelinesAreValid() throws {
        let directory = Paths.root + "/Pipelines"
        let files = (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("templates/") }
        #expect(files.count >= 2)
        for file in files {
            let spec = try PipelineSpec.load(file: directory + "/" + file, connectors: BuiltinConnectors.registry)
            #expect(!spec.name.isEmpty)
        }
    }

    @Test func parsesADurationInEveryAcceptedSpelling() {
        #expect(parseDuration("PT1H") == 3600)
        #expect(parseDuration("PT15M") == 900)
        #expect(parseDuration("P1DT2H") == 93600)
        #expect(parseDuration("10m") == 600)
        #expect(parseDuration("1d") == 86400)
        #expect(parseDuration("P1M") == nil)
        #expect(parseDuration("soon") == nil)
    }
}
