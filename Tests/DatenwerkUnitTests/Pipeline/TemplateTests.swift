import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// Pipeline templates (`Pipelines/templates/`, docs/templates.md): instantiation, and every problem located in the
/// pipeline, the template, or both.
@Suite struct TemplateTests {
    static let templates = Paths.root + "/Pipelines/templates"
    static let germanCSV = templates + "/german-csv.yaml"
    /// A pipeline file beside `Pipelines/templates` (it is only parsed, never written).
    static let pipelineFile = Paths.root + "/Pipelines/examples/stadt-test.yaml"

    /// The 1-based line of the first line of `file` that starts with `prefix`.
    static func line(of prefix: String, in file: String) throws -> Int {
        let lines = try String(contentsOfFile: file, encoding: .utf8).components(separatedBy: "\n")
        return try #require(lines.firstIndex { $0.hasPrefix(prefix) }) + 1
    }

    static func pipeline(_ with: String) -> String {
        """
        version: 1
        name: klima-neustadt
        tenant: "05515000"
        uses: templates/german-csv
        with:
          url: https://opendata.neustadt.example/klima.csv
          title: Klimamessnetz Neustadt
          publisher: Stadt Neustadt
          columns: { "Lufttemperatur [°C]": air_temperature }
        \(with)
        """
    }

    @Test func aTemplateInstantiatesIntoAPipeline() throws {
        let spec = try PipelineSpec.parse(yaml: Self.pipeline("  skip_rows: 2\n  missing: [\"-999\"]"), file: Self.pipelineFile,
                                          connectors: BuiltinConnectors.registry)
        #expect(spec.name == "klima-neustadt")
        #expect(spec.tenant == "05515000")
        #expect(spec.source?.url == "https://opendata.neustadt.example/klima.csv")
        guard case .csv(let csv)? = spec.source?.format else {
            Issue.record("not a CSV source")
            return
        }
        #expect(csv.skipRows == 2)
        #expect(spec.observations?.missing == ["-999"])
        #expect(spec.observations?.station.prefix == "klima-neustadt")
        #expect(spec.observations?.values.first?.lookup["Lufttemperatur [°C]"]?.property == "air_temperature")
        #expect(spec.datasetMetadata?.title == "Klimamessnetz Neustadt")
        #expect(spec.datasetMetadata?.publisher?.name == "Stadt Neustadt")
        #expect(spec.schedule == "5 * * * *")
        #expect(spec.warnings.isEmpty, "\(spec.warnings)")
    }

    @Test func aWrongParameterTypeIsReportedInBothFiles() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: Self.pipeline("  skip_rows: zwei"), file: Self.pipelineFile, connectors: BuiltinConnectors.registry)
        }
        let declared = try Self.line(of: "  skip_rows:", in: Self.germanCSV)
        #expect(error.diagnostics.map(\.description) == [
            "\(Self.pipelineFile):10:14: error: parameter 'skip_rows' of template 'german-csv' (declared at \(Self.germanCSV):\(declared):3) expects whole number, found 'zwei' (at 'with.skip_rows')",
        ])
    }

    /// Lines broken by CR alone are lines too: a problem of the pipeline stays in the pipeline.
    @Test func carriageReturnLinesStayInThePipeline() throws {
        let yaml = Self.pipeline("  skip_rows: zwei").replacingOccurrences(of: "\n", with: "\r")
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: yaml, file: Self.pipelineFile, connectors: BuiltinConnectors.registry)
        }
        #expect(error.diagnostics.map { "\($0.file ?? ""):\($0.line ?? 0)" } == ["\(Self.pipelineFile):10"])
    }

    @Test func parentFoldersNeverTrap() {
        #expect(parentFolder("") == "")
        #expect(parentFolder(".") == "")
        #expect(parentFolder("x.yaml") == "")
        #expect(parentFolder("a/b/x.yaml") == "a/b")
        #expect(parentFolder("/x.yaml") == "/")
        #expect(parentFolder("/") == "/")
        #expect(parentFolder("a/b/") == "a")
    }

    @Test func unknownAndMissingParametersNameTheTemplate() throws {
        let yaml = """
            version: 1
            name: klima-neustadt
            tenant: "05515000"
            uses: templates/german-csv
            with:
              url: https://opendata.neustadt.example/klima.csv
              titel: Klimamessnetz Neustadt
              publisher: Stadt Neustadt
              columns: { "Lufttemperatur [°C]": air_temperature }
            """
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: yaml, file: Self.pipelineFile, connectors: BuiltinConnectors.registry)
        }
        let parameters = try Self.line(of: "parameters:", in: Self.germanCSV)
        let title = try Self.line(of: "  title:", in: Self.germanCSV)
        #expect(error.diagnostics.map(\.description) == [
            "\(Self.pipelineFile):6:3: error: missing required parameter 'title' (text) of template 'german-csv', declared at \(Self.germanCSV):\(title):3: the dataset's title in the catalog (at 'with')",
            "\(Self.pipelineFile):7:3: error: unknown parameter 'titel' in 'with': template 'german-csv' (\(Self.germanCSV):\(parameters):1) has no such parameter; did you mean 'title'?",
        ])
    }

    @Test func aProblemInTheBodyPointsAtTheTemplateAndNamesThePipeline() throws {
        let dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/templates", withIntermediateDirectories: true)
        let template = dir + "/templates/zaehler.yaml"
        try """
            version: 1
            template: zaehler
            description: a counter CSV
            parameters:
              url: { type: url, description: the file, example: "https://example.org/z.csv" }
            pipeline:
              version: 1
              source:
                kind: http
                url: ${{ params.url }}
                format: { kind: csv }
              observations:
                station: { id: Station, prefix: "${{ pipeline.name }}-${{ params.nope }}" }
                time: { field: Zeit, format: iso8601, timezone: Europe/Nirgendwo }
                values: [{ field: n, property: bicycle_count }]
            """.write(toFile: template, atomically: false, encoding: .utf8)
        let file = dir + "/zaehler-a.yaml"
        let yaml = """
            version: 1
            name: zaehler-a
            tenant: "05515000"
            uses: templates/zaehler
            with: { url: "https://example.org/a.csv" }
            """
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.parse(yaml: yaml, file: file) }
        let lines = error.diagnostics.map(\.description)
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.first?.hasPrefix("\(template):13:37: error: '${{ params.nope }}' names no parameter of template 'zaehler'; declared: url (at 'observations.station.prefix')") == true, "\(lines)")
        #expect(lines.first?.hasSuffix("(in template 'zaehler', used by pipeline 'zaehler-a' at \(file):4:7)") == true, "\(lines)")
        #expect(lines.last?.hasPrefix("\(template):14:53: error: unknown time zone 'Europe/Nirgendwo'") == true, "\(lines)")
        #expect(lines.last?.hasSuffix("(in template 'zaehler', used by pipeline 'zaehler-a' at \(file):4:7)") == true, "\(lines)")
    }

    @Test func aPipelineCannotReplaceTheTemplatesSource() throws {
        let yaml = Self.pipeline("source: { kind: http }")
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: yaml, file: Self.pipelineFile, connectors: BuiltinConnectors.registry)
        }
        #expect(error.diagnostics.map(\.description).contains {
            $0.hasPrefix("\(Self.pipelineFile):10:1: error: 'source' comes from template 'german-csv'")
        })
    }

    @Test func aTemplateFileIsNotAPipeline() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.load(file: Self.germanCSV, connectors: BuiltinConnectors.registry)
        }
        #expect(error.diagnostics.first?.message.hasPrefix("this is a pipeline template, not a pipeline") == true)
    }

    @Test func anUnknownTemplateIsSuggested() throws {
        let yaml = Self.pipeline("").replacingOccurrences(of: "templates/german-csv", with: "templates/german-cvs")
        let error = try #require(throws: DiagnosticError.self) { try PipelineSpec.parse(yaml: yaml, file: Self.pipelineFile) }
        #expect(error.diagnostics.map(\.description) == [
            "\(Self.pipelineFile):4:7: error: no template 'german-cvs': there is no templates/german-cvs.yaml beside the pipeline or in a folder above it; did you mean 'templates/german-csv'? (at 'uses')",
        ])
    }

    @Test func aRemoteTemplateNeedsAPinAndTheCache() throws {
        let base = """
            version: 1
            name: klima-neustadt
            tenant: "05515000"
            uses: https://daten.nachbarstadt.example/templates/german-csv.yaml

            """
        let unpinned = try #require(throws: DiagnosticError.self) { try PipelineSpec.parse(yaml: base, file: Self.pipelineFile) }
        #expect(unpinned.diagnostics.map(\.message) == ["a template from another installation must be pinned: add 'sha256: <hex>' (from its /templates/ index) (at 'uses')"])
        let cache = try Paths.temporaryDirectory()
        let hash = String(repeating: "ab", count: 32)
        let notFetched = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: base + "sha256: \(hash)\n", file: Self.pipelineFile, templates: TemplateLibrary(cacheDirectory: cache))
        }
        #expect(notFetched.diagnostics.first?.message.hasPrefix("template https://daten.nachbarstadt.example/templates/german-csv.yaml has not been fetched yet") == true)
    }

    /// Every shipped template instantiates with its examples into a pipeline without a problem or warning.
    @Test func everyShippedTemplateChecksClean() throws {
        let files = TemplateLibrary.files(in: Self.templates)
        #expect(files.count >= 13, "\(files)")
        for file in files {
            #expect(PipelineTemplate.check(file: file, connectors: BuiltinConnectors.registry).isEmpty, "\(PipelineTemplate.check(file: file, connectors: BuiltinConnectors.registry))")
        }
    }

    /// A template for each connector kind and the generic German CSV.
    @Test func everyConnectorKindHasATemplate() throws {
        let kinds = try TemplateLibrary.files(in: Self.templates).map { file -> String in
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let kind = text.components(separatedBy: "\n").first { $0.hasPrefix("    kind: ") }
            return String(try #require(kind).dropFirst("    kind: ".count))
        }
        for connector in BuiltinConnectors.registry.kinds {
            #expect(kinds.contains(connector), "no template uses source kind '\(connector)'")
        }
        #expect(FileManager.default.fileExists(atPath: Self.germanCSV))
    }
    /// Mutated templates (the YAML fuzzer's mutations) end in a clean check or in diagnostics located in the template,
    /// never a trap; a pipeline using the mutated template gets them located in one of the two files.
    @Test func mutatedTemplatesEndInLocatedDiagnostics() throws {
        let dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/templates", withIntermediateDirectories: true)
        var random = PipelineYAMLFuzzTests.Random(state: 16)
        var clean = 0
        for name in ["german-csv", "sensor-community", "sensorthings"] {
            let text = try String(contentsOfFile: Self.templates + "/\(name).yaml", encoding: .utf8)
            let file = dir + "/templates/\(name).yaml"
            let pipelineFile = dir + "/stadt.yaml"
            for _ in 0..<100 {
                let mutated = PipelineYAMLFuzzTests.mutate(text, &random)
                try mutated.write(toFile: file, atomically: false, encoding: .utf8)
                let lineCount = mutated.components(separatedBy: "\n").count
                let problems = PipelineTemplate.check(file: file, connectors: BuiltinConnectors.registry).filter { $0.severity == .error }
                if problems.isEmpty { clean += 1 }
                for d in problems {
                    #expect(d.file == file || d.file?.hasSuffix("template-check.yaml") == true, "\(d)\n--- template:\n\(mutated)")
                    if d.file == file, let line = d.line {
                        #expect(line >= 1 && line <= lineCount + 1, "line \(line) outside 1…\(lineCount): \(d)\n--- template:\n\(mutated)")
                    }
                }
                let yaml = "version: 1\nname: stadt\ntenant: \"05515000\"\nuses: templates/\(name)\nwith: { url: \"https://example.org/x\" }\n"
                do {
                    _ = try PipelineSpec.parse(yaml: yaml, file: pipelineFile, connectors: BuiltinConnectors.registry)
                } catch let error as DiagnosticError {
                    for d in error.diagnostics {
                        #expect(d.file == file || d.file == pipelineFile, "\(d)")
                    }
                }
            }
        }
        #expect(clean > 0)
    }
}
