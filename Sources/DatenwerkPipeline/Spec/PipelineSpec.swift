import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkTransforms
import Foundation

/// A validated, typed pipeline (`version: 1`): where records come from, how they become observations,
/// where they go, and what happens to bad records.
public struct PipelineSpec: Sendable {
    /// The YAML file it was read from.
    public var file: String
    public var name: String
    /// Amtlicher Gemeindeschlüssel (8 digits) of the municipality that owns the data.
    public var tenant: String
    public var description: String?
    /// The `dataset:` block with its defaults resolved (see `decodeDataset`); nil when there is none.
    public var datasetMetadata: DatasetMetadata?
    public var schedule: String?
    /// `schedule` parsed, in `timezone` (default Europe/Berlin).
    public var cron: CronSchedule?
    /// Each scheduled run starts up to this many seconds after its fire time (spreads load on shared sources).
    public var jitterSeconds: Int = 0
    /// A generic source (file/http + format); then `observations` says how records map to the model.
    public var source: SourceSpec?
    /// Or a connector that reads and maps by itself.
    public var connector: ConnectorConfig?
    /// The source's `request:` block (headers, timeout, `${env:NAME}` secrets) for every HTTP request of the run,
    /// generic http source and connectors alike.
    public var request: RequestOptions = .none
    public var transform: [TransformStep]
    public var observations: ObservationMapping?
    public var sink: SinkSpec
    public var onBadRecord: BadRecordPolicy
    /// The run fails when more records than this are bad (nil: no limit).
    public var maxBadRecords: Int?
    /// What the reader noticed without refusing the file (an old spelling of a key), by position.
    public var warnings: [Diagnostic] = []
}

public enum BadRecordPolicy: String, Sendable, CaseIterable {
    /// The first bad record fails the run; nothing is loaded.
    case fail
    /// Bad records are counted and reported, not stored.
    case skip
    /// Bad records are stored in `datenwerk.quarantine` with their raw payload.
    case quarantine
}

public struct SourceSpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case file, http }
    public var kind: Kind
    /// For `file`: absolute path (resolved against the pipeline file's folder); glob `*` allowed in the last part.
    public var path: String?
    /// For `http`: the first page's URL.
    public var url: String?
    public var headers: [(String, String)]
    public var query: [(String, String)]
    public var paging: PagingSpec?
    public var timeoutSeconds: Int
    public var format: FormatSpec
}

public enum PagingSpec: Sendable {
    /// Follow a link found in the response: a JSON path in the envelope (e.g. `@iot.nextLink`, `links.next`) or the `Link: rel="next"` header.
    case nextLink(path: String?, maxPages: Int)
    /// `?offset=N&limit=M`: stops at an empty or short page.
    case offset(param: String, limitParam: String, pageSize: Int, maxPages: Int)
    /// `?page=N&size=M` starting at `start`: stops at an empty or short page.
    case page(param: String, sizeParam: String?, start: Int, pageSize: Int, maxPages: Int)
}

public enum FormatSpec: Sendable {
    case csv(CSVOptions)
    case json(recordPath: String)
    case ndjson
}

public enum TransformStep: Sendable {
    /// Renames fields.
    case rename([(from: String, to: String)])
    /// Sets fields to constant text.
    case set([(field: String, value: String)])
    /// Keeps only records whose field matches (or drops them, with `drop: true`).
    case filter(field: String, values: [String], keep: Bool)
    /// Wide → long: one record per value column, with the column name in `nameField` and the cell in `valueField`.
    case melt(idFields: [String], valueFields: [String]?, nameField: String, valueField: String)
}

/// How a record becomes a station plus observations of the common model.
public struct ObservationMapping: Sendable {
    public struct StationMapping: Sendable {
        /// Field holding the external station id (or a constant id with `id_value`).
        public var idField: String?
        public var idValue: String?
        /// Key prefix (`<prefix>:<id>`); default: the pipeline name.
        public var prefix: String
        public var nameField: String?
        public var kind: String?
        public var coordinates: CoordinateMapping?
        public var properties: [String]
    }

    public struct CoordinateMapping: Sendable {
        /// Easting / longitude field and northing / latitude field.
        public var xField: String
        public var yField: String
        public var epsg: Int
        public var altitudeField: String?
    }

    public struct TimeMapping: Sendable {
        /// One or more fields, joined with a space before parsing (e.g. `[Datum, Uhrzeit]`).
        public var fields: [String]
        public var format: String
        public var zone: String
        public var ambiguous: AmbiguousTime
        /// Observations cover an interval: end = start + this many seconds.
        public var intervalSeconds: Int?
        /// The time stamps mark the end of the interval (start = time − interval).
        public var stampAtEnd: Bool
        /// Characters stripped around the time text (e.g. `'`).
        public var strip: String?
    }

    /// The repeated autumn hour (e.g. 02:30 on 2024-10-27 in Europe/Berlin happens twice).
    public enum AmbiguousTime: String, Sendable, CaseIterable {
        /// The earlier instant, still summer time (the default).
        case first
        /// The later instant, already winter time.
        case second
        /// Quarantine the record.
        case reject
        /// In file order per station: the first occurrence is summer time, a repeat is winter time.
        case sequence
    }

    public struct ValueMapping: Sendable {
        public var field: String
        /// Fixed property, or looked up from `propertyField`'s value in `lookup`.
        public var property: String?
        public var unit: String?
        public var propertyField: String?
        public var lookup: [String: (property: String, unit: String?)]
        public var range: ClosedRange<Double>?
        public var scale: Double?
    }

    public var station: StationMapping
    public var time: TimeMapping
    public var values: [ValueMapping]
    public var decimalComma: Bool
    /// Cell texts that mean "no value" (the observation is left out, not an error).
    public var missing: Set<String>
    public var qualityField: String?
}

public struct SinkSpec: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case postgres }
    public var kind: Kind
}

extension PipelineSpec {
    /// The spec with `{name}` placeholders (`{since}`, `{from}`, `{to}`) replaced in the source URL, query and
    /// headers and in a connector's text settings. Values are percent-encoded where they go into a URL query.
    public func substituting(_ values: [String: String]) -> PipelineSpec {
        func replace(_ text: String, encode: Bool) -> String {
            guard text.contains("{") else { return text }
            var out = text
            for (name, value) in values {
                let v = encode ? (value.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? value) : value
                out = out.replacingOccurrences(of: "{\(name)}", with: v)
            }
            return out
        }
        var spec = self
        if var source = spec.source {
            source.url = source.url.map { replace($0, encode: true) }
            source.query = source.query.map { ($0.0, replace($0.1, encode: false)) }
            source.headers = source.headers.map { ($0.0, replace($0.1, encode: false)) }
            spec.source = source
        }
        if var connector = spec.connector {
            for (key, value) in connector.values {
                if case .string(let text) = value { connector.values[key] = .string(replace(text, encode: text.hasPrefix("http"))) }
            }
            spec.connector = connector
        }
        return spec
    }
}

extension CharacterSet {
    /// Characters that may stand unencoded in a query value (`+`, `&`, `=` and `:` … are encoded).
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~")
        return set
    }()
}
