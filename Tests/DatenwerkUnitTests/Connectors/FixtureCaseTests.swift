import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// Every fixture case under `Fixtures/<kind>/<case>/`, found on disk (Telegraf's `testcases/`): adding a case
/// is adding a folder, no code. A case holds
///
/// - `pipeline.yaml` — the pipeline (its `url:` usually names a file in shared/reference-data);
/// - `expected.ndjson` — the WHOLE normalised output, one line per item (`Golden.lines`), checked by hand;
/// - `expected-errors.txt` (optional) — the diagnostics reading the pipeline must give, one per line, as
///   `datenwerk validate` prints them (`pipeline.yaml:4:3: error: …`, warnings too). With an error the case
///   stops there (no `expected.ndjson`); without the file the pipeline must read without any diagnostic;
/// - `expected-report.txt` (optional) — run totals as `records_read: 19` lines (`observations`,
///   `quarantined`, `values_read`, `quarantined_values`, `skipped`, `skipped.<rule>` (e.g. `skipped.missing_value: 3`),
///   `succeeded: true` too; `#` starts a comment).
///
/// Every case that runs must balance its books: values read = loaded + quarantined + skipped (zero silent drops).
///
/// `DATENWERK_UPDATE_GOLDEN=kind/case[,kind/case…]` rewrites those cases' `expected.ndjson`; `=1` rewrites every case
/// (review the diff before committing; with others working in the same tree, name your cases).
struct FixtureCase: CustomTestStringConvertible, Sendable {
    var kind: String
    var name: String
    var directory: String { "\(Golden.fixtures)/\(kind)/\(name)" }
    var testDescription: String { "\(kind)/\(name)" }

    /// The case folders, sorted: a folder of `Fixtures/<kind>/` with a `pipeline.yaml`.
    static let all: [FixtureCase] = {
        let fm = FileManager.default
        var cases: [FixtureCase] = []
        for kind in ((try? fm.contentsOfDirectory(atPath: Golden.fixtures)) ?? []).sorted() {
            for name in ((try? fm.contentsOfDirectory(atPath: "\(Golden.fixtures)/\(kind)")) ?? []).sorted()
            where fm.fileExists(atPath: "\(Golden.fixtures)/\(kind)/\(name)/pipeline.yaml") {
                cases.append(FixtureCase(kind: kind, name: name))
            }
        }
        return cases
    }()

    func file(_ name: String) -> String? {
        try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
    }

    /// The case's pipeline, `$REFERENCE_DATA` replaced by where the shared reference samples are.
    func pipeline(_ registry: ConnectorRegistry) throws -> PipelineSpec {
        let path = directory + "/pipeline.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try PipelineSpec.parse(yaml: text.replacingOccurrences(of: "$REFERENCE_DATA", with: Paths.referenceData), file: path, connectors: registry)
    }

    /// Non-empty lines of an optional file.
    func lines(_ name: String) -> [String]? {
        file(name).map { $0.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    }
}

@Suite struct FixtureCaseTests {
    @Test func casesAreFound() {
        #expect(FixtureCase.all.count >= 35)
    }

    @Test(arguments: FixtureCase.all)
    func fixtureCase(_ fixture: FixtureCase) async throws {
        let registry = BuiltinConnectors.registry
        let expectedDiagnostics = fixture.lines("expected-errors.txt") ?? []
        let spec: PipelineSpec
        do {
            spec = try fixture.pipeline(registry)
        } catch let error as DiagnosticError {
            let printed = Self.printed(error.diagnostics + error.warnings, in: fixture)
            #expect(printed == expectedDiagnostics, "\(fixture.testDescription): diagnostics")
            #expect(expectedDiagnostics.contains { $0.contains(": error: ") }, "\(fixture.testDescription) does not load; add expected-errors.txt")
            return
        }
        #expect(Self.printed(spec.warnings, in: fixture) == expectedDiagnostics, "\(fixture.testDescription): diagnostics")
        #expect(!expectedDiagnostics.contains { $0.contains(": error: ") }, "\(fixture.testDescription) loads, but expected-errors.txt names errors")

        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: registry).run(spec, trigger: "test")
        let actual = Golden.lines(sink.items)
        let expectedPath = fixture.directory + "/expected.ndjson"
        if let update = ProcessInfo.processInfo.environment["DATENWERK_UPDATE_GOLDEN"],
           update == "1" || update.split(separator: ",").contains(where: { $0 == fixture.testDescription }) {
            try Data((actual.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: expectedPath))
        }
        let expected = try #require(fixture.lines("expected.ndjson"), "\(fixture.testDescription) has no expected.ndjson")
        #expect(actual.count == expected.count, "\(fixture.testDescription): \(actual.count) items, expected \(expected.count)")
        for (index, (a, e)) in zip(actual, expected).enumerated() where a != e {
            Issue.record("\(fixture.testDescription) line \(index + 1):\n  actual:   \(a)\n  expected: \(e)")
            break
        }

        let t = report.totals
        if report.succeeded {
            #expect(!t.valuesUncounted, "\(fixture.testDescription): the source does not count the values it reads")
            #expect(t.isBalanced, "\(fixture.testDescription): \(t.valuesRead) values read ≠ \(t.observations) loaded + \(t.quarantinedValues) quarantined + \(t.skipped) skipped (\(t.skips.summary))")
        }

        for line in fixture.lines("expected-report.txt") ?? [] {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard !content.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let parts = content.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            try #require(parts.count == 2, "\(fixture.testDescription)/expected-report.txt: '\(line)' is not 'name: value'")
            let actualValue: String
            switch parts[0] {
            case "records_read": actualValue = String(report.totals.recordsRead)
            case "observations": actualValue = String(report.totals.observations)
            case "quarantined": actualValue = String(report.totals.quarantined)
            case "succeeded": actualValue = String(report.succeeded)
            case "values_read": actualValue = String(t.valuesRead)
            case "quarantined_values": actualValue = String(t.quarantinedValues)
            case "skipped": actualValue = String(t.skipped)
            case let name where name.hasPrefix("skipped."): actualValue = String(t.skips[SkipRule(String(name.dropFirst("skipped.".count)))])
            default:
                Issue.record("\(fixture.testDescription)/expected-report.txt: unknown total '\(parts[0])' (records_read, observations, quarantined, values_read, quarantined_values, skipped, skipped.<rule>, succeeded)")
                continue
            }
            #expect(actualValue == parts[1], "\(fixture.testDescription): \(parts[0])")
        }
    }

    /// Diagnostics as `datenwerk validate` prints them, with the path relative to the case folder.
    static func printed(_ diagnostics: [Diagnostic], in fixture: FixtureCase) -> [String] {
        diagnostics.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }.map { diagnostic in
            var d = diagnostic
            if let file = d.file, file.hasPrefix(fixture.directory + "/") { d.file = String(file.dropFirst(fixture.directory.count + 1)) }
            return d.description
        }
    }
}
