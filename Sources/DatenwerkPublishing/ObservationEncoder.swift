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

    package init(format: ObservationFormat, bbox: BoundingBox? = nil) {
        self.format = format
        self.bbox = bbox
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
        switch format {
        case .csv: Self.appendCSV(row, to: &out)
        case .geojson: Self.appendGeoJSONFeature(row, first: rowsWritten == 0, to: &out)
        case .ndjson: Self.appendNDJSON(row, to: &out)
        }
        rowsWritten += 1
    }

    package mutating func write(_ rows: some Sequence<ObservationRow>, into out: inout [UInt8]) {
        for row in rows { write(row, into: &out) }
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
        let comma = UInt8(ascii: ",")
        ByteWriting.appendCSVField(row.stationKey, to: &out)
        out.append(comma)
        if let name = row.stationName { ByteWriting.appendCSVField(name, to: &out) }
        out.append(comma)
        ByteWriting.appendCSVField(row.property, to: &out)
        out.append(comma)
        ByteWriting.appendCSVField(row.unit, to: &out)
        out.append(comma)
        ByteWriting.appendTimestamp(micros: row.startMicros, to: &out)
        out.append(comma)
        if let end = row.endMicros { ByteWriting.appendTimestamp(micros: end, to: &out) }
        out.append(comma)
        if row.value.isFinite { ByteWriting.append(row.value, to: &out) }
        out.append(comma)
        if let quality = row.quality { ByteWriting.appendCSVField(quality, to: &out) }
        out.append(comma)
        if let lon = row.longitude, let lat = row.latitude, lon.isFinite, lat.isFinite {
            ByteWriting.append(lon, to: &out)
            out.append(comma)
            ByteWriting.append(lat, to: &out)
        } else {
            out.append(comma)
        }
        out.append(UInt8(ascii: "\n"))
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
        if !first { ByteWriting.append(",\n", to: &out) }
        ByteWriting.append("{\"type\":\"Feature\",\"id\":\"", to: &out)
        ByteWriting.appendJSONStringContents(row.stationKey, to: &out)
        out.append(UInt8(ascii: "/"))
        ByteWriting.appendJSONStringContents(row.property, to: &out)
        out.append(UInt8(ascii: "/"))
        ByteWriting.appendTimestamp(micros: row.startMicros, to: &out)
        ByteWriting.append("\",\"geometry\":", to: &out)
        if let lon = row.longitude, let lat = row.latitude, lon.isFinite, lat.isFinite {
            ByteWriting.append("{\"type\":\"Point\",\"coordinates\":[", to: &out)
            ByteWriting.append(lon, to: &out)
            out.append(UInt8(ascii: ","))
            ByteWriting.append(lat, to: &out)
            ByteWriting.append("]}", to: &out)
        } else {
            ByteWriting.append("null", to: &out)
        }
        ByteWriting.append(",\"properties\":{", to: &out)
        appendCommonMembers(row, to: &out)
        ByteWriting.append("}}", to: &out)
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
        out.append(UInt8(ascii: "{"))
        appendCommonMembers(row, to: &out)
        ByteWriting.append(",\"longitude\":", to: &out)
        if let lon = row.longitude, let lat = row.latitude {
            ByteWriting.appendJSONNumber(lon, to: &out)
            ByteWriting.append(",\"latitude\":", to: &out)
            ByteWriting.appendJSONNumber(lat, to: &out)
        } else {
            ByteWriting.append("null,\"latitude\":null", to: &out)
        }
        ByteWriting.append("}\n", to: &out)
    }

    /// `"station_id":…` through `"quality":…` (no braces).
    static func appendCommonMembers(_ row: ObservationRow, to out: inout [UInt8]) {
        ByteWriting.append("\"station_id\":", to: &out)
        ByteWriting.appendJSONString(row.stationKey, to: &out)
        ByteWriting.append(",\"station_name\":", to: &out)
        if let name = row.stationName { ByteWriting.appendJSONString(name, to: &out) } else { ByteWriting.append("null", to: &out) }
        ByteWriting.append(",\"property\":", to: &out)
        ByteWriting.appendJSONString(row.property, to: &out)
        ByteWriting.append(",\"unit\":", to: &out)
        ByteWriting.appendJSONString(row.unit, to: &out)
        ByteWriting.append(",\"phenomenon_time_start\":\"", to: &out)
        ByteWriting.appendTimestamp(micros: row.startMicros, to: &out)
        ByteWriting.append("\",\"phenomenon_time_end\":", to: &out)
        if let end = row.endMicros {
            out.append(UInt8(ascii: "\""))
            ByteWriting.appendTimestamp(micros: end, to: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            ByteWriting.append("null", to: &out)
        }
        ByteWriting.append(",\"value\":", to: &out)
        ByteWriting.appendJSONNumber(row.value, to: &out)
        ByteWriting.append(",\"quality\":", to: &out)
        if let quality = row.quality { ByteWriting.appendJSONString(quality, to: &out) } else { ByteWriting.append("null", to: &out) }
    }
}
