// Fuzz target: StreamingJSONDecoder. Any split gives the same records, envelope and error as one chunk, and for
// a document JSONParser accepts, the records and envelope are exactly what a model computes from the parsed value.
import DatenwerkCore
@testable import DatenwerkFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamingJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var options = JSONDecoderOptions()
    options.recordPath = ["$", "$.items", "$.a.b", "$.items[*]"][Int(input.options & 3)]
    let small = input.options & 4 != 0
    if small { options.maxRecordBytes = 24 }

    var oneShot = StreamingJSONDecoder(options: options, origin: "fuzz.json")
    let whole = Fuzz.run(&oneShot, input.document, cuts: [])
    var split = StreamingJSONDecoder(options: options, origin: "fuzz.json")
    Fuzz.same(whole, Fuzz.run(&split, input.document, cuts: input.cuts), "JSON split at \(input.cuts)")
    if whole.error == nil {
        Fuzz.require(oneShot.envelope == split.envelope, "envelopes differ: \(oneShot.envelope.serialized) vs \(split.envelope.serialized)")
    }
    guard !small else { return 0 }

    // The model, for documents JSONParser accepts.
    var text = input.document[...]
    if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
    let parsed: JSONValue
    do {
        parsed = try JSONParser.parse(Array(text))
    } catch {
        // Nesting is counted from the root there and from each record or envelope value here.
        if !"\(error)".contains("nested deeper") {
            Fuzz.require(whole.error != nil, "StreamingJSONDecoder accepts what JSONParser rejects (\(error))")
        }
        return 0
    }
    var components = Substring(options.recordPath).dropFirst().split(separator: ".").map(String.init)
    if components.last == "items[*]" { components[components.count - 1] = "items" }
    let expected = model(parsed, components)
    if whole.error == nil {
        let records = whole.decoded.map { $0.record?.asJSON }
        Fuzz.require(expected.error == nil, "accepted although \(expected.error ?? "")")
        Fuzz.require(records == expected.records.map(Optional.some), "records differ from the model:\n\(records)\n\(expected.records)")
        Fuzz.require(oneShot.envelope == expected.envelope, "envelope differs from the model:\n\(oneShot.envelope.serialized)\n\(expected.envelope.serialized)")
    } else {
        Fuzz.require(expected.error != nil, "valid document refused: \(whole.error ?? "")")
    }
    return 0
}

/// Records and envelope of a parsed document for a record path, following the decoder's documented rules.
private func model(_ root: JSONValue, _ components: [String]) -> (records: [JSONValue], envelope: JSONValue, error: String?) {
    if components.isEmpty {
        if case .array(let items) = root { return (items.map(Fuzz.asRecord), .object([]), nil) }
        return ([Fuzz.asRecord(root)], .object([]), nil)
    }
    guard case .object = root else { return ([], root, nil) }
    var records: [JSONValue] = []
    var error: String?
    func walk(_ members: [JSONValue.Member], level: Int) -> JSONValue {
        var kept: [JSONValue.Member] = []
        var matched = false
        for member in members {
            guard !matched && member.key == components[level] else {
                kept.append(member)
                continue
            }
            matched = true
            if level == components.count - 1 {
                switch member.value {
                case .array(let items): records = items.map(Fuzz.asRecord)
                case .null: kept.append(member)
                default: error = error ?? "not an array"
                }
            } else if case .object(let inner) = member.value {
                kept.append(JSONValue.Member(member.key, walk(inner, level: level + 1)))
            } else {
                kept.append(member)
            }
        }
        return .object(kept)
    }
    guard case .object(let members) = root else { return ([], root, nil) }
    let envelope = walk(members, level: 0)
    return (records, envelope, error)
}
