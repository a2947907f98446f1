import DatenwerkTesting
import Foundation
import Testing

/// `Deploy/prometheus/alerts.yaml`: valid for Prometheus (`promtool check rules`), and only about metrics Datenwerk exports.
@Suite struct AlertRulesTests {
    static let file = Paths.root + "/Deploy/prometheus/alerts.yaml"

    /// promtool from the Debian package `prometheus` (scripts/ensure-validators.sh installs it as root).
    static var promtool: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin"]).map { $0 + "/promtool" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Under CI (`CI=true`) a missing promtool fails the test; elsewhere the check is skipped.
    static var runsPromtool: Bool { promtool != nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    @Test(.enabled(if: runsPromtool, "promtool is not installed (apt-get install prometheus); CI=true makes this a failure"))
    func promtoolAcceptsTheRules() throws {
        let promtool = try #require(Self.promtool, "promtool is missing: scripts/ensure-validators.sh installs the Debian package prometheus")
        let dir = try Paths.temporaryDirectory()
        FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool)
        process.arguments = ["check", "rules", Self.file]
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        process.standardOutput = out
        process.standardError = out
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("SUCCESS: 6 rules found"), "\(output)")
    }

    /// Every metric an alert uses is written by the code and listed in docs/metrics.md.
    @Test func alertsUseOnlyExportedAndDocumentedMetrics() throws {
        let rules = try String(contentsOfFile: Self.file, encoding: .utf8)
        let used = Set(rules.matches(of: /datenwerk_[a-z_]+/).map { String($0.output) })
        #expect(used.count >= 6)
        let code = try ["Sources/DatenwerkServer/Metrics.swift", "Sources/DatenwerkHTTP/HTTPFetcher.swift"]
            .map { try String(contentsOfFile: Paths.root + "/" + $0, encoding: .utf8) }.joined()
        let docs = try String(contentsOfFile: Paths.root + "/docs/metrics.md", encoding: .utf8)
        for name in used.sorted() {
            #expect(code.contains("\"\(name)\""), "\(name) is not exported")
            #expect(docs.contains("`\(name)`"), "\(name) is not in docs/metrics.md")
        }
    }
}
