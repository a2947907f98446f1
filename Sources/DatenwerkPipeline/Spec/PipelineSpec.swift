import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkTransforms
import Foundation

/// A validated, typed pipeline (`version: 1`): where records come from, how they become observations,
/// where they go, and what happens to bad records.
package struct PipelineSpec: Sendable {
    /// The YAML file it was read from.
    package var file: String
    package var name: String
    /// Amtlicher Gemeindeschlüssel (8 digits) of the municipality that owns the data.
    package var tenant: String { didSet { readingDigest = nil } }
    package var description: String?
    /// The `dataset:` block with its defaults resolved (see `decodeDataset`); nil when there is none.
    package var datasetMetadata: DatasetMetadata?
    package var schedule: String?
    /// `schedule` parsed, in `timezone` (default Europe/Berlin).
    package var cron: CronSchedule?
    /// Each scheduled run starts up to this many seconds after its fire time (spreads load on shared sources).
    package var jitterSeconds: Int = 0
    /// A generic source (file/http + format); then `observations` says how records map to the model.
    package var source: SourceSpec? { didSet { readingDigest = nil } }
    /// Or a connector that reads and maps by itself.
    package var connector: ConnectorConfig?
    /// The source's `request:` block (headers, timeout, `${env:NAME}` secrets) for every HTTP request of the run,
    /// generic http source and connectors alike.
    package var request: RequestOptions = .none
    package var transform: [TransformStep] { didSet { readingDigest = nil } }
    package var observations: ObservationMapping? { didSet { readingDigest = nil } }
    package var sink: SinkSpec
    package var onBadRecord: BadRecordPolicy { didSet { readingDigest = nil } }
    /// The run fails when more records than this are bad (nil: no limit).
    package var maxBadRecords: Int? { didSet { readingDigest = nil } }
    /// What the reader noticed without refusing the file (an old spelling of a key), by position.
    package var warnings: [Diagnostic] = []
    /// SHA-256 of what decides how its source's files become observations (source, transform, observations,
    /// tenant, bad-record rules; after a template is filled in): a file source skips a file that a successful run
    /// read with the same digest and that has not changed since (`FileMemory`). Nil for a spec not read from
    /// YAML, or changed in code after it was read (the properties it covers clear it): then every file is read
    /// every time.
    package var readingDigest: String?
}

package enum BadRecordPolicy: String, Sendable, CaseIterable {
    /// The first bad record fails the run; nothing is loaded.
    case fail
    /// Bad records are counted and reported, not stored.
    case skip
    /// Bad records are stored in `datenwerk.quarantine` with their raw payload.
    case quarantine
}

package struct SourceSpec: Sendable {
    package enum Kind: String, Sendable, CaseIterable { case file, http }
    package var kind: Kind
    /// For `file`: absolute path (resolved against the pipeline file's folder); glob `*` allowed in the last part.
    package var path: String?
    /// For `http`: the first page's URL.
    package var url: String?
    package var headers: [(String, String)]
    package var query: [(String, String)]
    package var paging: PagingSpec?
    package var timeoutSeconds: Int
    package var format: FormatSpec
}

package enum PagingSpec: Sendable {
    /// Follow a link found in the response: a JSON path in the envelope (e.g. `@iot.nextLink`, `links.next`) or the `Link: rel="next"` header.
    case nextLink(path: String?, maxPages: Int)
    /// `?offset=N&limit=M`: stops at an empty or short page.
    case offset(param: String, limitParam: String, pageSize: Int, maxPages: Int)
    /// `?page=N&size=M` starting at `start`: stops at an empty or short page.
    case page(param: String, sizeParam: String?, start: Int, pageSize: Int, maxPages: Int)
}

package enum FormatSpec: Sendable {
    case csv(CSVOptions)
    case json(recordPath: String)
    case ndjson
}

package enum TransformStep: Sendable {
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
package struct ObservationMapping: Sendable {
    package struct StationMapping: Sendable {
        /// Field holding the external station id (or a constant id with `id_value`).
        package var idField: String?
        package var idValue: String?
        /// Key prefix (`<prefix>:<id>`); default: the pipeline name.
        package var prefix: String
        package var nameField: String?
        package var kind: String?
        package var coordinates: CoordinateMapping?
        package var properties: [String]
    }

    package struct CoordinateMapping: Sendable {
        /// Easting / longitude field and northing / latitude field.
        package var xField: String
        package var yField: String
        package var epsg: Int
        package var altitudeField: String?
    }

    package struct TimeMapping: Sendable {
        /// One or more fields, joined with a space before parsing (e.g. `[Datum, Uhrzeit]`).
        package var fields: [String]
        package var format: String
        package var zone: String
        package var ambiguous: AmbiguousTime
        /// Observations cover an interval: end = start + this many seconds.
        package var intervalSeconds: Int?
        /// The time stamps mark the end of the interval (start = time − interval).
        package var stampAtEnd: Bool
        /// Characters stripped around the time text (e.g. `'`).
        package var strip: String?
    }

    /// The repeated autumn hour (e.g. 02:30 on 2024-10-27 in Europe/Berlin happens twice).
    package enum AmbiguousTime: String, Sendable, CaseIterable {
        /// The earlier instant, still summer time (the default).
        case first
        /// The later instant, already winter time.
        case second
        /// Quarantine the record.
        case reject
        /// In file order per series (station + property): the first occurrence of the repeated local time is
        /// summer time, a repeat is winter time. Other properties of the same station do not count (docs/time.md).
        case sequence
    }

    package struct ValueMapping: Sendable {
        package var field: String
        /// Fixed property, or looked up from `propertyField`'s value in `lookup`.
        package var property: String?
        /// The source unit (any spelling of `Units`); with `unitField` the fallback for an empty cell.
        package var unit: String?
        /// `unit_field:`: the field that holds each record's unit (long-format exports with an `Einheit` column).
        package var unitField: String? = nil
        package var propertyField: String?
        package var lookup: [String: (property: String, unit: String?)]
        package var range: ClosedRange<Double>?
        package var scale: Double?
    }

    package var station: StationMapping
    package var time: TimeMapping
    package var values: [ValueMapping]
    package var decimalComma: Bool
    /// Cell texts that mean "no value" (the observation is left out, not an error).
    package var missing: Set<String>
    package var qualityField: String?
}

package struct SinkSpec: Sendable {
    package enum Kind: String, Sendable, CaseIterable { case postgres }
    package var kind: Kind
}

extension PipelineSpec {
    /// The spec with `{name}` placeholders (`{since}`, `{from}`, `{to}`) replaced in the source URL, query and
    /// headers and in a connector's text settings. Values are percent-encoded where they go into a URL query.
    package func substituting(_ values: [String: String]) -> PipelineSpec {
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
        // Placeholders change where a source reads (URL, query, headers), not how; a file's path is not substituted.
        spec.readingDigest = readingDigest
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
