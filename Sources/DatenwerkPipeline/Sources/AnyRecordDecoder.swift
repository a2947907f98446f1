import DatenwerkCore
import DatenwerkFormats

/// The decoder a `FormatSpec` asks for, behind one type.
package enum AnyRecordDecoder {
    case csv(CSVDecoder)
    case json(StreamingJSONDecoder)
    case ndjson(NDJSONDecoder)

    package init(_ format: FormatSpec, origin: String) {
        switch format {
        case .csv(let options): self = .csv(CSVDecoder(options: options, origin: origin))
        case .json(let path):
            var options = JSONDecoderOptions()
            options.recordPath = path
            self = .json(StreamingJSONDecoder(options: options, origin: origin))
        case .ndjson: self = .ndjson(NDJSONDecoder(origin: origin))
        }
    }

    package mutating func feed(_ bytes: some Collection<UInt8>) throws -> [DecodedRecord] {
        switch self {
        case .csv(var d): defer { self = .csv(d) }; return try d.feed(bytes)
        case .json(var d): defer { self = .json(d) }; return try d.feed(bytes)
        case .ndjson(var d): defer { self = .ndjson(d) }; return try d.feed(bytes)
        }
    }

    package mutating func finish() throws -> [DecodedRecord] {
        switch self {
        case .csv(var d): defer { self = .csv(d) }; return try d.finish()
        case .json(var d): defer { self = .json(d) }; return try d.finish()
        case .ndjson(var d): defer { self = .ndjson(d) }; return try d.finish()
        }
    }

    /// The JSON document around the records (for next links and totals); `.null` for other formats.
    package var envelope: JSONValue {
        if case .json(let d) = self { return d.envelope }
        return .null
    }
}
