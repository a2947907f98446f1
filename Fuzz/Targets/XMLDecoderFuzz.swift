// Fuzz target: StreamingXMLDecoder (libxml2 push parser). Nothing traps; any split gives the same records
// as one chunk, and fails exactly when one chunk fails.
import DatenwerkCore
@testable import DatenwerkFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXML(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var options = XMLDecoderOptions(recordElements: [["item"], ["record", "row"], ["a"], []][Int(input.options & 3)])
    if input.options & 4 != 0 {
        options.maxDepth = 4
        options.maxRecordBytes = 64
        options.maxTextBytes = 16
        options.maxRecordElements = 8
    }
    let whole = run(StreamingXMLDecoder(options: options, origin: "fuzz.xml"), input.document, cuts: [])
    let split = run(StreamingXMLDecoder(options: options, origin: "fuzz.xml"), input.document, cuts: input.cuts)
    switch (whole, split) {
    case (.success(let a), .success(let b)):
        Fuzz.require(a == b, "XML records differ when split at \(input.cuts):\n\(a)\n\(b)")
    case (.failure, .failure):
        break
    case (.success, .failure(let error)), (.failure(let error), .success):
        Fuzz.require(false, "XML \(whole.isSuccess ? "split" : "one chunk") failed alone when split at \(input.cuts): \(error)")
    }
    return 0
}

private struct Decoded: Equatable {
    var node: XMLElementNode
    var location: SourceLocation
}

private func run(_ decoder: StreamingXMLDecoder, _ bytes: [UInt8], cuts: [Int]) -> Result<[Decoded], any Error> {
    Result {
        var out: [XMLDecodedRecord] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            out += try decoder.feed(bytes[start..<cut])
            start = cut
        }
        out += try decoder.finish()
        return out.map { Decoded(node: $0.node, location: $0.location) }
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { return true } else { return false } }
}
