import DatenwerkFormats
import DatenwerkPipeline

/// The limits of the XML connectors (`datex2`, `parking` with format xml or datex2), as pipeline keys with
/// defaults: a document that breaks one fails with its line and column instead of exhausting the machine.
enum XMLLimitKeys {
    static let depth = (setting: DefaultedSetting("xml_max_depth", default: 256, "deepest element nesting accepted (1–4096)"), range: 1...4096)
    static let recordBytes = (setting: DefaultedSetting("xml_max_record_bytes", default: 8 << 20, "largest record element, and largest text, in bytes"),
                              range: 1024...(256 << 20))
    static let documentBytes = (setting: DefaultedSetting("xml_max_document_bytes", default: 256 << 20, "largest document in bytes (also a gzip file unpacked)"),
                                range: 1024...(1 << 30))
    static let all = [depth, recordBytes, documentBytes]

    /// The keys, their help starting with `prefix` (e.g. which formats of the connector use them).
    static func keys(_ prefix: String = "") -> [ConfigKey] {
        all.map { limit in
            var key = limit.setting.key
            key.help = prefix + key.help
            return key
        }
    }

    /// Problems with the keys' values (each names its key and the allowed range).
    static func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        all.compactMap { limit in
            let value = config[limit.setting]
            guard config.has(limit.setting), !limit.range.contains(value) else { return nil }
            return ConfigProblem(key: limit.setting.name, "must be between \(limit.range.lowerBound) and \(limit.range.upperBound), got \(value)")
        }
    }

    /// The decoder options the keys ask for (defaults where a key is absent).
    static func options(_ config: ConnectorConfig) -> XMLDecoderOptions {
        var options = XMLDecoderOptions()
        options.maxDepth = config[depth.setting]
        options.maxRecordBytes = config[recordBytes.setting]
        options.maxTextBytes = options.maxRecordBytes
        options.maxDocumentBytes = config[documentBytes.setting]
        return options
    }
}
