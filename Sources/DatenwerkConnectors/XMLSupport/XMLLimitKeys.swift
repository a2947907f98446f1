import DatenwerkFormats
import DatenwerkPipeline

/// The limits of the XML connectors (`datex2`, `parking` with format xml or datex2), as pipeline keys with
/// defaults: a document that breaks one fails with its line and column instead of exhausting the machine.
enum XMLLimitKeys {
    static let depth = (key: "xml_max_depth", range: 1...4096, fallback: 256)
    static let recordBytes = (key: "xml_max_record_bytes", range: 1024...(256 << 20), fallback: 8 << 20)
    static let documentBytes = (key: "xml_max_document_bytes", range: 1024...(1 << 30), fallback: 256 << 20)

    static func keys(_ prefix: String = "") -> [ConfigKey] {
        [
            ConfigKey(depth.key, .int, default: String(depth.fallback), "\(prefix)deepest element nesting accepted (1–4096)"),
            ConfigKey(recordBytes.key, .int, default: String(recordBytes.fallback), "\(prefix)largest record element, and largest text, in bytes"),
            ConfigKey(documentBytes.key, .int, default: String(documentBytes.fallback), "\(prefix)largest document in bytes (also a gzip file unpacked)"),
        ]
    }

    /// Problems with the keys' values (each names its key and the allowed range).
    static func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        [depth, recordBytes, documentBytes].compactMap { limit in
            guard let value = config.int(limit.key), !limit.range.contains(value) else { return nil }
            return ConfigProblem(key: limit.key, "must be between \(limit.range.lowerBound) and \(limit.range.upperBound), got \(value)")
        }
    }

    /// The decoder options the keys ask for (defaults where a key is absent).
    static func options(_ config: ConnectorConfig) -> XMLDecoderOptions {
        var options = XMLDecoderOptions()
        options.maxDepth = config.int(depth.key) ?? depth.fallback
        options.maxRecordBytes = config.int(recordBytes.key) ?? recordBytes.fallback
        options.maxTextBytes = options.maxRecordBytes
        options.maxDocumentBytes = config.int(documentBytes.key) ?? documentBytes.fallback
        return options
    }
}
