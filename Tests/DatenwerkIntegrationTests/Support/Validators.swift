import Foundation
import DatenwerkTesting

/// The outside validators in `../shared/validators/` (pySHACL with the DCAT-AP.de shapes, Frictionless,
/// GDAL + the GeoJSON schemas), run as real processes on files or URLs.
///
/// A missing script is an error, never a skip: the tests that call these fail. The scripts install
/// their Python packages on first use (`scripts/ensure-validators.sh` does that ahead of `make test`).
enum Validators {
    /// `DATENWERK_VALIDATORS`, or `../shared/validators` next to the repository.
    static let directory = ProcessInfo.processInfo.environment["DATENWERK_VALIDATORS"] ?? Paths.root + "/../shared/validators"

    /// One validator run: exit status (0 pass, 1 problems found, 2 could not run), everything it
    /// printed (stdout then stderr), and the counts of its `== Summary:` line.
    struct Run: CustomStringConvertible {
        var status: Int32
        var output: String
        /// DCAT: violations; CSV and GeoJSON: errors. nil when no summary line was printed.
        var errors: Int?
        /// DCAT and GeoJSON: warnings.
        var warnings: Int?
        /// DCAT: infos.
        var infos: Int?
        /// DCAT: the number of triples the validator parsed.
        var triples: Int?

        var passed: Bool { status == 0 && errors == 0 }
        var description: String { "exit status \(status)\n\(output)" }
    }

    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String { "validator not found: \(path) (the shared validators must be next to the repository)" }
    }

    /// `validate-dcat.sh [--profile P] FILE|URL`; counts come from its `--json` report.
    static func dcat(file: String, profile: String? = nil) async throws -> Run {
        let report = try Paths.temporaryDirectory() + "/dcat-report.json"
        var arguments = ["--json", report]
        if let profile { arguments += ["--profile", profile] }
        var run = try await self.run("validate-dcat.sh", arguments + [file])
        if let data = FileManager.default.contents(atPath: report),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            run.errors = json["violations"] as? Int
            run.warnings = json["warnings"] as? Int
            run.infos = json["infos"] as? Int
        } else {
            (run.errors, run.warnings, run.infos) = summary(run.output, #"(\d+) violation\(s\), (\d+) warning\(s\), (\d+) info\(s\)"#)
        }
        if let match = run.output.firstMatch(of: /parsed as [a-z-]+, (\d+) triples/) { run.triples = Int(match.1) }
        return run
    }

    /// `validate-csv.sh --require-utf8 [--schema S] FILE|URL` (a `datapackage.json` is validated as a package).
    static func csv(file: String, schema: String? = nil) async throws -> Run {
        var arguments = ["--require-utf8"]
        if let schema { arguments += ["--schema", schema] }
        var run = try await self.run("validate-csv.sh", arguments + [file])
        run.errors = summary(run.output, #"(\d+) error\(s\)"#).0
        return run
    }

    /// `validate-geojson.sh [--within W,S,E,N] FILE|URL` (default: Germany and its neighbours, which
    /// catches swapped longitude/latitude).
    static func geojson(file: String, within: String? = "2.5,47.0,15.5,55.5") async throws -> Run {
        var arguments: [String] = []
        if let within { arguments += ["--within", within] }
        var run = try await self.run("validate-geojson.sh", arguments + [file])
        let counts = summary(run.output, #"(\d+) error\(s\), (\d+) warning\(s\)"#)
        run.errors = counts.0
        run.warnings = counts.1
        return run
    }

    /// Runs a validator script to its end (off the cooperative threads: `TestProcess`).
    static func run(_ script: String, _ arguments: [String]) async throws -> Run {
        let path = directory + "/" + script
        guard FileManager.default.isExecutableFile(atPath: path) else { throw Missing(path: path) }
        let output = try await TestProcess.run(path, arguments)
        return Run(status: output.status, output: output.combined)
    }

    /// The numbers of the last `== Summary:` line, matched by `pattern`.
    static func summary(_ output: String, _ pattern: String) -> (Int?, Int?, Int?) {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("== Summary:") }).map(String.init),
              let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line))
        else { return (nil, nil, nil) }
        func group(_ i: Int) -> Int? {
            guard i < match.numberOfRanges, let range = Range(match.range(at: i), in: line) else { return nil }
            return Int(line[range])
        }
        return (group(1), group(2), group(3))
    }
}
