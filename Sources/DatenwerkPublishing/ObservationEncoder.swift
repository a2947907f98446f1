import DatenwerkCore

/// One row of an observations download, as the server reads it from `datenwerk.observations_view`.
package struct ObservationRow: Sendable, Hashable {
    package var stationKey: String
    package var stationName: String?
    package var property: String
    /// Canonical UCUM unit.
    package var unit: String
    /// Phenomenon start, microseconds since 1970 UTC.
    package var startMicros: Int64
    package var endMicros: Int64?
    package var value: Double
    package var quality: String?
    package var longitude: Double?
    package var latitude: Double?

    package init(
        stationKey: String, stationName: String? = nil, property: String, unit: String, startMicros: Int64, endMicros: Int64? = nil,
        value: Double, quality: String? = nil, longitude: Double? = nil, latitude: Double? = nil
    ) {
        self.stationKey = stationKey
        self.stationName = stationName
        self.property = property
        self.unit = unit
        self.startMicros = startMicros
        self.endMicros = endMicros
        self.value = value
        self.quality = quality
        self.longitude = longitude
        self.latitude = latitude
    }
}

/// The download formats of `/datasets/<id>/observations.<ext>`.
package enum ObservationFormat: String, Sendable, CaseIterable {
    case csv, geojson, ndjson

    package var fileExtension: String { rawValue }

    /// The `Content-Type` to send.
    package var contentType: String {
        switch self {
        case .csv: return "text/csv; charset=utf-8; header=present"
        case .geojson: return "application/geo+json"
        case .ndjson: return "application/x-ndjson"
        }
    }

    /// The media type without parameters.
    package var mediaType: String {
        switch self {
        case .csv: return "text/csv"
        case .geojson: return "application/geo+json"
        case .ndjson: return "application/x-ndjson"
        }
    }

    package init?(fileExtension: String) { self.init(rawValue: fileExtension.lowercased()) }
}

/// Streams observation rows as CSV (RFC 4180, UTF-8, header), a GeoJSON FeatureCollection (RFC 7946,
/// one Point feature per observation) or NDJSON (one object per line), appending bytes to a buffer the
/// caller flushes. The column names and their order are `ObservationEncoder.columns` in every format,
/// and match `ObservationTableSchema`.
///
/// ```swift
/// var encoder = ObservationEncoder(format: .geojson)
/// var buffer: [UInt8] = []
/// encoder.writeHeader(into: &buffer)
/// for batch in batches { encoder.write(batch, into: &buffer); flush(&buffer) }
/// encoder.writeFooter(into: &buffer)
/// ```
///
/// A download writes millions of rows of few stations and properties: `station(…)` and `property(…)`
/// encode a station's and a property's parts of a row once (escaped, in this format), and
/// `write(station:property:…)` puts a row together from them, its times and its value. Writing an
/// `ObservationRow` goes the same way, so both give the same bytes.
package struct ObservationEncoder: Sendable {
    /// The fields of a row, in CSV column order (GeoJSON puts longitude/latitude in the geometry).
    package static let columns = [
        "station_id", "station_name", "property", "unit", "phenomenon_time_start", "phenomenon_time_end",
        "value", "quality", "longitude", "latitude",
    ]

    package let format: ObservationFormat
    /// GeoJSON only: the collection's `bbox` member (must enclose every feature written).
    package var bbox: BoundingBox?
    package private(set) var rowsWritten = 0
    /// The last start and end written, as text (consecutive rows of a download mostly share their times).
    private var lastStart = TimestampText()
    private var lastEnd = TimestampText()

    package init(format: ObservationFormat, bbox: BoundingBox? = nil) {
        self.format = format
        self.bbox = bbox
    }

    /// A station's parts of a row in one format: `lead` before the property, `middle` (GeoJSON) between the
    /// feature id and the property member, `tail` after the quality.
    package struct Station: Sendable {
        var lead: [UInt8]
        var middle: [UInt8]
        var tail: [UInt8]
    }

    /// A property's parts of a row in one format: `id` (GeoJSON's feature id; CSV's `property,unit,`) and
    /// `members` (JSON: `"property":…` through the opening quote of the start time).
    package struct Property: Sendable {
        var id: [UInt8]
        var members: [UInt8]
    }

    /// The parts of a row that come from its station, for this encoder's format.
    package func station(key: String, name: String?, longitude: Double?, latitude: Double?) -> Station {
        var lead: [UInt8] = []
        var middle: [UInt8] = []
        var tail: [UInt8] = []
        switch format {
        case .csv:
            ByteWriting.appendCSVField(key, to: &lead)
            lead.append(UInt8(ascii: ","))
            if let name { ByteWriting.appendCSVField(name, to: &lead) }
            lead.append(UInt8(ascii: ","))
            if let lon = longitude, let lat = latitude, lon.isFinite, lat.isFinite {
                ByteWriting.append(lon, to: &tail)
                tail.append(UInt8(ascii: ","))
                ByteWriting.append(lat, to: &tail)
            } else {
                tail.append(UInt8(ascii: ","))
            }
            tail.append(UInt8(ascii: "\n"))
        case .geojson:
            ByteWriting.append("{\"type\":\"Feature\",\"id\":\"", to: &lead)
            ByteWriting.appendJSONStringContents(key, to: &lead)
            lead.append(UInt8(ascii: "/"))
            ByteWriting.append("\",\"geometry\":", to: &middle)
            if let lon = longitude, let lat = latitude, lon.isFinite, lat.isFinite {
                ByteWriting.append("{\"type\":\"Point\",\"coordinates\":[", to: &middle)
                ByteWriting.append(lon, to: &middle)
                middle.append(UInt8(ascii: ","))
                ByteWriting.append(lat, to: &middle)
                ByteWriting.append("]}", to: &middle)
            } else {
                ByteWriting.append("null", to: &middle)
            }
            ByteWriting.append(",\"properties\":{", to: &middle)
            Self.appendStationMembers(key: key, name: name, to: &middle)
            ByteWriting.append("}}", to: &tail)
        case .ndjson:
            lead.append(UInt8(ascii: "{"))
            Self.appendStationMembers(key: key, name: name, to: &lead)
            ByteWriting.append(",\"longitude\":", to: &tail)
            if let lon = longitude, let lat = latitude {
                ByteWriting.appendJSONNumber(lon, to: &tail)
                ByteWriting.append(",\"latitude\":", to: &tail)
                ByteWriting.appendJSONNumber(lat, to: &tail)
            } else {
                ByteWriting.append("null,\"latitude\":null", to: &tail)
            }
            ByteWriting.append("}\n", to: &tail)
        }
        return Station(lead: lead, middle: middle, tail: tail)
    }

    /// The parts of a row that come from its property and unit, for this encoder's format.
    package func property(key: String, unit: String) -> Property {
        var id: [UInt8] = []
        var members: [UInt8] = []
        switch format {
        case .csv:
            ByteWriting.appendCSVField(key, to: &id)
            id.append(UInt8(ascii: ","))
            ByteWriting.appendCSVField(unit, to: &id)
            id.append(UInt8(ascii: ","))
        case .geojson, .ndjson:
            if format == .geojson {
                ByteWriting.appendJSONStringContents(key, to: &id)
                id.append(UInt8(ascii: "/"))
            }
            ByteWriting.append(",\"property\":", to: &members)
            ByteWriting.appendJSONString(key, to: &members)
            ByteWriting.append(",\"unit\":", to: &members)
            ByteWriting.appendJSONString(unit, to: &members)
            ByteWriting.append(",\"phenomenon_time_start\":\"", to: &members)
        }
        return Property(id: id, members: members)
    }

    /// The CSV header line or the GeoJSON opening; nothing for NDJSON.
    package mutating func writeHeader(into out: inout [UInt8]) {
        switch format {
        case .csv: Self.appendCSVHeader(to: &out)
        case .geojson: Self.appendGeoJSONPrefix(bbox: bbox, to: &out)
        case .ndjson: break
        }
    }

    package mutating func write(_ row: ObservationRow, into out: inout [UInt8]) {
        write(station: station(key: row.stationKey, name: row.stationName, longitude: row.longitude, latitude: row.latitude),
              property: property(key: row.property, unit: row.unit),
              startMicros: row.startMicros, endMicros: row.endMicros, value: row.value, quality: row.quality, into: &out)
    }

    package mutating func write(_ rows: some Sequence<ObservationRow>, into out: inout [UInt8]) {
        for row in rows { write(row, into: &out) }
    }

    /// One row from its station's and property's parts (made by this encoder's `station` and `property`).
    package mutating func write(
        station: Station, property: Property, startMicros: Int64, endMicros: Int64?, value: Double, quality: String?,
        into out: inout [UInt8]
    ) {
        switch format {
        case .csv:
            let comma = UInt8(ascii: ",")
            ByteWriting.append(bytes: station.lead, to: &out)
            ByteWriting.append(bytes: property.id, to: &out)
            lastStart.append(startMicros, to: &out)
            out.append(comma)
            if let endMicros { lastEnd.append(endMicros, to: &out) }
            out.append(comma)
            if value.isFinite { ByteWriting.append(value, to: &out) }
            out.append(comma)
            if let quality { ByteWriting.appendCSVField(quality, to: &out) }
            out.append(comma)
            ByteWriting.append(bytes: station.tail, to: &out)
        case .geojson:
            if rowsWritten != 0 { ByteWriting.append(",\n", to: &out) }
            ByteWriting.append(bytes: station.lead, to: &out)
            ByteWriting.append(bytes: property.id, to: &out)
            lastStart.append(startMicros, to: &out)
            ByteWriting.append(bytes: station.middle, to: &out)
            ByteWriting.append(bytes: property.members, to: &out)
            lastStart.append(startMicros, to: &out)
            appendRowMembers(endMicros: endMicros, value: value, quality: quality, to: &out)
            ByteWriting.append(bytes: station.tail, to: &out)
        case .ndjson:
            ByteWriting.append(bytes: station.lead, to: &out)
            ByteWriting.append(bytes: property.members, to: &out)
            lastStart.append(startMicros, to: &out)
            appendRowMembers(endMicros: endMicros, value: value, quality: quality, to: &out)
            ByteWriting.append(bytes: station.tail, to: &out)
        }
        rowsWritten += 1
    }

    /// The GeoJSON closing, with an optional `links` member (`rel: next`) for cursor paging; nothing for CSV and NDJSON.
    package mutating func writeFooter(into out: inout [UInt8], next: String? = nil) {
        guard format == .geojson else { return }
        Self.appendGeoJSONSuffix(next: next, to: &out)
    }

    // MARK: CSV

    package static func appendCSVHeader(to out: inout [UInt8]) {
        ByteWriting.append("station_id,station_name,property,unit,phenomenon_time_start,phenomenon_time_end,value,quality,longitude,latitude\n", to: &out)
    }

    /// One CSV line; a missing value is an empty cell.
    package static func appendCSV(_ row: ObservationRow, to out: inout [UInt8]) {
        var encoder = ObservationEncoder(format: .csv)
        encoder.write(row, into: &out)
    }

    // MARK: GeoJSON

    package static func appendGeoJSONPrefix(bbox: BoundingBox?, to out: inout [UInt8]) {
        ByteWriting.append("{\"type\":\"FeatureCollection\"", to: &out)
        if let bbox, bbox.isValid {
            ByteWriting.append(",\"bbox\":[", to: &out)
            ByteWriting.append(bbox.minLongitude, to: &out)
            out.append(UInt8(ascii: ","))
            ByteWriting.append(bbox.minLatitude, to: &out)
            out.append(UInt8(ascii: ","))
            ByteWriting.append(bbox.maxLongitude, to: &out)
            out.append(UInt8(ascii: ","))
            ByteWriting.append(bbox.maxLatitude, to: &out)
            out.append(UInt8(ascii: "]"))
        }
        ByteWriting.append(",\"features\":[\n", to: &out)
    }

    /// One feature, preceded by `,` unless it is the first. Its id is `<station>/<property>/<start>`,
    /// unique like the observation's natural key; a station without position has `"geometry":null`.
    package static func appendGeoJSONFeature(_ row: ObservationRow, first: Bool, to out: inout [UInt8]) {
        var encoder = ObservationEncoder(format: .geojson)
        encoder.rowsWritten = first ? 0 : 1
        encoder.write(row, into: &out)
    }

    package static func appendGeoJSONSuffix(next: String? = nil, to out: inout [UInt8]) {
        ByteWriting.append("\n]", to: &out)
        if let next {
            ByteWriting.append(",\"links\":[{\"rel\":\"next\",\"type\":\"application/geo+json\",\"href\":", to: &out)
            ByteWriting.appendJSONString(next, to: &out)
            ByteWriting.append("}]", to: &out)
        }
        ByteWriting.append("}\n", to: &out)
    }

    // MARK: NDJSON

    /// One JSON object and `\n`.
    package static func appendNDJSON(_ row: ObservationRow, to out: inout [UInt8]) {
        var encoder = ObservationEncoder(format: .ndjson)
        encoder.write(row, into: &out)
    }

    // MARK: JSON members

    /// `"station_id":…,"station_name":…` (no braces).
    static func appendStationMembers(key: String, name: String?, to out: inout [UInt8]) {
        ByteWriting.append("\"station_id\":", to: &out)
        ByteWriting.appendJSONString(key, to: &out)
        ByteWriting.append(",\"station_name\":", to: &out)
        if let name { ByteWriting.appendJSONString(name, to: &out) } else { ByteWriting.append("null", to: &out) }
    }

    /// From the start time's closing quote through `"quality":…`.
    private mutating func appendRowMembers(endMicros: Int64?, value: Double, quality: String?, to out: inout [UInt8]) {
        ByteWriting.append("\",\"phenomenon_time_end\":", to: &out)
        if let endMicros {
            out.append(UInt8(ascii: "\""))
            lastEnd.append(endMicros, to: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            ByteWriting.append("null", to: &out)
        }
        ByteWriting.append(",\"value\":", to: &out)
        ByteWriting.appendJSONNumber(value, to: &out)
        ByteWriting.append(",\"quality\":", to: &out)
        if let quality { ByteWriting.appendJSONString(quality, to: &out) } else { ByteWriting.append("null", to: &out) }
    }
}

/// A timestamp's text, kept for the next row with the same time.
struct TimestampText: Sendable {
    private var micros: Int64 = .min
    private var text: [UInt8] = []

    mutating func append(_ value: Int64, to out: inout [UInt8]) {
        if value != micros || text.isEmpty {
            micros = value
            text.removeAll(keepingCapacity: true)
            ByteWriting.appendTimestamp(micros: value, to: &text)
        }
        ByteWriting.append(bytes: text, to: &out)
    }
}
