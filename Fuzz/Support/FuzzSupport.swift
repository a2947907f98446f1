// Shared by every fuzz target (compiled into each target's executable by scripts/fuzz.sh).
import DatenwerkCore
@testable import DatenwerkFormats
#if canImport(Glibc)
import Glibc
#endif

/// The input of one fuzz run: a split seed, an options byte and the document.
struct FuzzInput {
    /// Chooses where the document is cut into chunks.
    let seed: UInt8
    /// Chooses decoder options (each target reads its own bits).
    let options: UInt8
    let document: [UInt8]

    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        let bytes = Array(UnsafeBufferPointer(start: data, count: size))
        seed = bytes.first ?? 0
        options = bytes.count > 1 ? bytes[1] : 0
        document = bytes.count > 2 ? Array(bytes[2...]) : []
    }

    /// Ascending cut offsets inside `document`: every byte, small random chunks or a few large ones.
    var cuts: [Int] {
        let n = document.count
        guard n > 1 else { return [] }
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(n)
        func random(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(max(1, bound)))
        }
        let largest: Int
        switch seed % 4 {
        case 0 where n <= 512: return Array(1..<n)       // byte by byte
        case 0, 1: largest = 3
        case 2: largest = 17
        default: largest = max(2, n / 3)
        }
        var cuts: [Int] = []
        var at = 0
        while true {
            at += 1 + random(largest)
            guard at < n else { break }
            cuts.append(at)
        }
        return cuts
    }
}

/// What a decoder made of a whole input: the records and rejections, then the error that stopped it.
struct Outcome: Equatable, CustomStringConvertible {
    var decoded: [DecodedRecord]
    var error: String?

    /// Compared field by field (rendering every record as text on every run would cost most of the time).
    static func == (a: Outcome, b: Outcome) -> Bool {
        a.error == b.error && a.decoded.count == b.decoded.count && zip(a.decoded, b.decoded).allSatisfy(Fuzz.equal)
    }

    var description: String { (decoded.map(Fuzz.render) + [error.map { "error: \($0)" } ?? "(no error)"]).joined(separator: "\n") }
}

enum Fuzz {
    /// Feeds `bytes` cut at `cuts`, then finishes. After an error only the error is compared
    /// (records handed out by earlier chunks are not comparable with a one-shot run).
    static func run<D: RecordDecoder>(_ decoder: inout D, _ bytes: [UInt8], cuts: [Int]) -> Outcome {
        var decoded: [DecodedRecord] = []
        var start = 0
        do {
            for cut in cuts + [bytes.count] {
                decoded += try decoder.feed(bytes[start..<cut])
                start = cut
            }
            decoded += try decoder.finish()
            return Outcome(decoded: decoded, error: nil)
        } catch {
            return Outcome(decoded: [], error: "\(error)")
        }
    }

    static func equal(_ a: DecodedRecord, _ b: DecodedRecord) -> Bool {
        switch (a, b) {
        case (.record(let x), .record(let y)):
            return x.fields.names == y.fields.names && x.values == y.values && x.location == y.location && x.raw == y.raw
        case (.rejected(let x), .rejected(let y)):
            return x == y
        default:
            return false
        }
    }

    static func render(_ item: DecodedRecord) -> String {
        switch item {
        case .record(let record):
            let l = record.location
            return "record line=\(l.line.map(String.init) ?? "-") n=\(l.record.map(String.init) ?? "-") path=\(l.path ?? "-") raw=\(record.raw.debugDescription) \(record.asJSON.serialized)"
        case .rejected(let quarantined):
            return "rejected \(quarantined.error) raw=\(quarantined.raw.debugDescription)"
        }
    }

    /// A broken invariant: print what differs and crash, so libFuzzer keeps the input.
    static func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
        if !condition() {
            fputs("INVARIANT BROKEN: \(message())\n", stderr)
            abort()
        }
    }

    /// A decoded JSON value as `Record(json:).asJSON` gives it back (non-objects become `{"value": …}`).
    static func asRecord(_ value: JSONValue) -> JSONValue {
        Record(json: value, location: SourceLocation(origin: ""), raw: "").asJSON
    }

    static func same(_ a: Outcome, _ b: Outcome, _ what: String) {
        require(a == b, "\(what)\n--- one chunk:\n\(a)\n--- split:\n\(b)")
    }
}
