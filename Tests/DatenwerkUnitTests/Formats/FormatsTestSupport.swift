import DatenwerkCore
@testable import DatenwerkFormats
import DatenwerkTesting

/// Helpers shared by the format tests.
enum FormatsTestSupport {
    /// Feeds `bytes` cut at `cuts` (ascending offsets), then finishes.
    static func decode<D: RecordDecoder>(_ decoder: inout D, _ bytes: [UInt8], cuts: [Int] = []) throws -> [DecodedRecord] {
        var out: [DecodedRecord] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            out += try decoder.feed(bytes[start..<cut])
            start = cut
        }
        out += try decoder.finish()
        return out
    }

    static func csv(_ text: String, _ configure: (inout CSVOptions) -> Void = { _ in }) throws -> [DecodedRecord] {
        try csv(Array(text.utf8), configure)
    }

    static func csv(_ bytes: [UInt8], _ configure: (inout CSVOptions) -> Void = { _ in }) throws -> [DecodedRecord] {
        var options = CSVOptions()
        configure(&options)
        var decoder = CSVDecoder(options: options, origin: "test.csv")
        return try decode(&decoder, bytes)
    }

    /// A one-line, comparable picture of a decoded record: kind, location, raw text and values.
    static func render(_ item: DecodedRecord) -> String {
        switch item {
        case .record(let record):
            let l = record.location
            return "record line=\(l.line.map(String.init) ?? "-") n=\(l.record.map(String.init) ?? "-") path=\(l.path ?? "-") raw=\(record.raw.debugDescription) \(record.asJSON.serialized)"
        case .rejected(let quarantined):
            return "rejected \(quarantined.error) raw=\(quarantined.raw.debugDescription)"
        }
    }

    static func records(_ items: [DecodedRecord]) -> [Record] { items.compactMap(\.record) }
}
