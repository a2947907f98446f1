// Fuzz target: NDJSONDecoder. Any split gives the same outcome as one chunk, and the records are exactly
// what JSONParser makes of each non-blank line.
import DatenwerkCore
@testable import DatenwerkFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNDJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let maxRecordBytes = input.options & 1 != 0 ? 24 : 8 << 20

    var oneShot = NDJSONDecoder(origin: "fuzz.ndjson", maxRecordBytes: maxRecordBytes)
    let whole = Fuzz.run(&oneShot, input.document, cuts: [])
    var split = NDJSONDecoder(origin: "fuzz.ndjson", maxRecordBytes: maxRecordBytes)
    Fuzz.same(whole, Fuzz.run(&split, input.document, cuts: input.cuts), "NDJSON split at \(input.cuts)")

    // The model: lines after a BOM, each parsed on its own.
    var document = input.document[...]
    if document.starts(with: [0xEF, 0xBB, 0xBF]) { document = document.dropFirst(3) }
    var expected: [JSONValue?] = []
    var tooLong = false
    for line in document.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        if line.count > maxRecordBytes { tooLong = true; break }
        let trimmed = line.drop(while: isJSONWhitespace).reversed().drop(while: isJSONWhitespace).reversed()
        if trimmed.isEmpty { continue }
        expected.append((try? JSONParser.parse(Array(trimmed))).map(Fuzz.asRecord))
    }
    if whole.error == nil {
        let items = whole.decoded
        Fuzz.require(!tooLong, "a line over maxRecordBytes was accepted")
        let actual: [JSONValue?] = items.map { $0.record?.asJSON }
        Fuzz.require(actual == expected, "NDJSON records differ from JSONParser per line:\n\(actual)\n\(expected)")
        for (k, item) in items.enumerated() {
            let location = item.record?.location ?? item.rejected!.error.location
            Fuzz.require(location.record == k + 1, "record numbers not consecutive")
        }
    } else {
        Fuzz.require(tooLong, "NDJSON stopped without a line over maxRecordBytes: \(whole.error ?? "")")
    }
    return 0
}
