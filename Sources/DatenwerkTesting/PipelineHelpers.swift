import DatenwerkCore
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTransforms
import Foundation

/// Shared HTTP fetcher for tests (one client for the process).
/// Its read timeout is generous: at the start of the full suite 2 cores are so loaded that a loopback answer
/// once took over 10 s, and the retry broke a test that counts requests (tests of timeouts set their own).
package let testFetcher = HTTPFetcher(userAgent: "Datenwerk-Tests", readTimeout: .seconds(60))

/// Parses pipeline YAML written by a test; relative paths resolve against `directory`.
package func spec(_ yaml: String, in directory: String = Paths.root + "/Pipelines/examples") throws -> PipelineSpec {
    try PipelineSpec.parse(yaml: yaml, file: directory + "/test.yaml")
}

/// Runs a pipeline into memory and returns what would be loaded.
package func dryRun(_ spec: PipelineSpec) async throws -> (RecordingSink, RunReport) {
    let sink = RecordingSink()
    let report = try await PipelineRunner(fetcher: testFetcher, sink: sink).run(spec, trigger: "test")
    return (sink, report)
}

/// `2024-03-31T01:00:00Z` → µs since the epoch.
package func utc(_ text: String) -> Int64 {
    try! TimestampParser(format: "iso8601", zone: nil).parse(text)
}

extension RecordingSink {
    package func values(_ stationKey: String, _ property: String) -> [(String, Double)] {
        observations.filter { $0.stationKey == stationKey && $0.property == property }
            .map { (TimestampParser.formatISO8601($0.phenomenonStart), $0.result) }
    }
}
