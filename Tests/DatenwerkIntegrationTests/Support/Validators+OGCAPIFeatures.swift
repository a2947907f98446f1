import Foundation

extension Validators {
    /// `probe-ogcapi-features.sh [ARGS] URL` against a running server: GDAL's OAPIF driver, OWSLib and the HTTP
    /// checks of OGC 17-069r4. `errors` are its FAILs, `warnings` its WARNs; `skipped` names the SKIP lines
    /// (a missing GDAL or OWSLib is a SKIP there, which the tests turn into a failure under `CI=true`).
    static func ogcapiFeatures(url: String, arguments: [String] = []) async throws -> Run {
        var run = try await self.run("probe-ogcapi-features.sh", arguments + [url])
        let counts = summary(run.output, #"(\d+) passed, (\d+) failed, (\d+) warnings"#)
        run.errors = counts.1
        run.warnings = counts.2
        return run
    }
}

extension Validators.Run {
    /// The probe's `[SKIP]` lines.
    var skipped: [String] { output.split(separator: "\n").filter { $0.hasPrefix("[SKIP]") }.map(String.init) }
    /// The `== Summary:` line.
    var summaryLine: String? { output.split(separator: "\n").last { $0.hasPrefix("== Summary:") }.map(String.init) }
}
