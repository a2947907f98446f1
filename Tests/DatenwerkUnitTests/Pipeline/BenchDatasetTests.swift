import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// The data of `datenwerk bench`: German bytes, both DST days, and normalised rows that are what the pipeline
/// makes of the CSV (the bench checks its loads against them).
@Suite struct BenchDatasetTests {
    /// One station, hourly, over the whole span (both DST changes).
    static let dataset = BenchDataset(rows: 4 * BenchDataset.spanHours)

    static func csv(_ d: BenchDataset) -> [UInt8] {
        var bytes = d.csvHeader
        for station in 0..<d.stations { d.appendCSV(station: station, to: &bytes) }
        return bytes
    }

    /// ISO-8859-1 → String (every byte is its code point).
    static func latin1Text(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    @Test func sizesFollowRows() {
        let d = Self.dataset
        #expect(d.stations == 1 && d.stepMinutes == 60 && d.steps(of: 0) == BenchDataset.spanHours)
        let many = BenchDataset(rows: 1_000_002)
        #expect(many.rows == 1_000_000)
        #expect((0..<many.stations).map { many.steps(of: $0) }.reduce(0, +) == 250_000)
        #expect(many.stations >= 50 && many.stations <= 200)
        #expect(BenchDataset(rows: 10_000_000).stepMinutes == 10)
    }

    @Test func csvIsLatin1WithCRLFAndDecimalCommas() {
        let two = BenchDataset(rows: 8 * BenchDataset.spanHours)
        let bytes = Self.csv(two)
        #expect(!bytes.contains(0xC3) && !bytes.contains(0xC2), "no UTF-8 sequences")
        #expect(bytes.contains(0xB0))  // ° in "Lufttemperatur [°C]"
        #expect(bytes.contains(0xDF))  // ß in "Hauptstraße"
        #expect(bytes.contains(0xFC))  // ü in "Südpark"
        let text = Self.latin1Text(bytes)
        let lines = text.components(separatedBy: "\r\n").dropLast()
        #expect(lines.count == 1 + two.lines)
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(lines[0] == "Messstelle;Name;Rechtswert;Hochwert;Datum/Zeit;Lufttemperatur [°C];Rel. Luftfeuchte [%];Luftdruck [hPa];Windgeschwindigkeit [km/h]")
        #expect(lines[1].hasPrefix("S001;Hauptstraße 1;360000,00;5700000,00;25.10.2024 00:00;"))
        #expect(lines[1].split(separator: ";").count == 9)
        #expect(lines[1 + two.steps(of: 0)].hasPrefix("S002;Südpark 1;361523,37;"))
    }

    @Test func dstDaysHaveTheirLocalHours() {
        let text = Self.latin1Text(Self.csv(Self.dataset))
        func hours(_ day: String) -> [String] {
            text.components(separatedBy: "\r\n").compactMap { line in
                line.split(separator: ";").dropFirst(4).first.flatMap { $0.hasPrefix(day) ? String($0.dropFirst(day.count + 1)) : nil }
            }
        }
        let autumn = hours("27.10.2024"), spring = hours("30.03.2025"), plain = hours("15.01.2025")
        #expect(autumn.count == 25 && autumn.filter { $0 == "02:00" }.count == 2)
        #expect(spring.count == 23 && !spring.contains("02:00"))
        #expect(plain.count == 24)
        #expect(BenchDataset.berlin(1_729_987_200) == .init(year: 2024, month: 10, day: 27, hour: 2, minute: 0))  // 00:00Z, CEST
        #expect(BenchDataset.berlin(1_729_990_800) == .init(year: 2024, month: 10, day: 27, hour: 2, minute: 0))  // 01:00Z, CET
        #expect(BenchDataset.berlin(1_743_296_400) == .init(year: 2025, month: 3, day: 30, hour: 3, minute: 0))   // 01:00Z, CEST
    }

    /// The pipeline the bench writes reads the CSV into exactly the normalised rows (wind converted to m/s,
    /// local time to UTC across both DST changes).
    @Test func pipelineReadsTheCSVAsTheNormalisedRows() async throws {
        let d = Self.dataset
        let directory = NSTemporaryDirectory() + "datenwerk-bench-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csvPath = directory + "/observations.csv"
        try Data(Self.csv(d)).write(to: URL(fileURLWithPath: csvPath))
        let pipeline = try PipelineSpec.parse(yaml: d.pipelineYAML(csvPath: csvPath), file: directory + "/bench.yaml")
        let (sink, report) = try await dryRun(pipeline)
        #expect(report.succeeded && report.totals.quarantined == 0)

        var normalised: [UInt8] = []
        d.appendNormalised(station: 0, to: &normalised)
        let expected = String(decoding: normalised, as: UTF8.self).split(separator: "\n").map { line in
            let f = line.split(separator: "\t").map(String.init)
            return (f[0], f[1], utc(f[2].replacingOccurrences(of: " ", with: "T").replacingOccurrences(of: "+00", with: "Z")), Double(f[3])!)
        }
        let actual = sink.observations
        #expect(actual.count == d.rows && expected.count == d.rows)
        var different = 0
        for (a, e) in zip(actual, expected)
        where a.stationKey != e.0 || a.property != e.1 || a.phenomenonStart != e.2 || abs(a.result - e.3) > 1e-9 * max(1, abs(e.3)) {
            if different == 0 { Issue.record("first difference: \(a) vs \(e)") }
            different += 1
        }
        #expect(different == 0)
    }
}
