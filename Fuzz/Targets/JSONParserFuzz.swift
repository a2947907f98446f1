// Fuzz target: JSONParser and JSONValueSkipper. Both accept exactly the same texts (the skipper fed in any split),
// and a parsed value survives serialising and parsing again.
import DatenwerkCore
@testable import DatenwerkFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let bytes = [input.options] + input.document   // the options byte is part of the text here
    let parsed: Result<JSONValue, JSONSyntaxError> = Result { () throws(JSONSyntaxError) -> JSONValue in
        try bytes.withUnsafeBufferPointer { (p) throws(JSONSyntaxError) -> JSONValue in try JSONParser.parse(buffer: p) }
    }
    if case .success(let value) = parsed {
        let again = try? JSONParser.parse(Array(value.serialized.utf8))
        Fuzz.require(again == value, "serialized value does not parse back: \(value.serialized)")
    }

    // The skipper over the same bytes, chunk by chunk, each chunk in its own buffer.
    var start = 0
    while start < bytes.count && isJSONWhitespace(bytes[start]) { start += 1 }
    var skipper = JSONValueSkipper()
    var verdict: Bool? = nil   // nil: still reading
    var rest = bytes.count
    if start == bytes.count { verdict = false }
    var chunkStart = start
    let cuts = input.cuts.filter { $0 + 1 > start && $0 + 1 < bytes.count }.map { $0 + 1 } + [bytes.count]
    for cut in cuts where verdict == nil && chunkStart < cut {
        let chunk = Array(bytes[chunkStart..<cut])
        var i = 0
        do {
            let complete = try chunk.withUnsafeBufferPointer { (p) throws(JSONSyntaxError) -> Bool in try skipper.advance(p, &i) }
            if complete {
                rest = chunkStart + i
                verdict = true
            } else if cut == bytes.count {
                verdict = try skipper.endOfInput(at: i)
            }
        } catch {
            verdict = false
        }
        skipper.shift(by: chunk.count)
        chunkStart = cut
    }
    if verdict == true {
        // Only whitespace may follow the value.
        verdict = bytes[rest...].allSatisfy(isJSONWhitespace)
    }
    let parserAccepts: Bool
    if case .success = parsed { parserAccepts = true } else { parserAccepts = false }
    Fuzz.require(verdict == parserAccepts, "JSONParser \(parserAccepts ? "accepts" : "rejects (\(parsed))") but the skipper \(verdict == true ? "accepts" : "rejects"): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
    return 0
}
