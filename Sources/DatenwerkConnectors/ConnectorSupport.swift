import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation

/// How a connector turns one decoded record into stations and observations.
protocol RecordMapping {
    /// Appends items for `record`; returns problems (the record is then quarantined with its raw text).
    mutating func map(_ record: Record, into items: inout [StagedItem]) -> [RecordError]
    /// The JSON around the records of the current document (e.g. a GeoJSON root `crs`), before they are mapped.
    mutating func envelope(_ envelope: JSONValue)
}

extension RecordMapping {
    mutating func envelope(_ envelope: JSONValue) {}

    /// Maps decoded records; a record with problems is quarantined with its raw text (first problem named).
    mutating func mapAll(_ decoded: [DecodedRecord], into items: inout [StagedItem]) {
        for entry in decoded {
            switch entry {
            case .rejected(let bad): items.append(.quarantined(bad))
            case .record(let record):
                let problems = map(record, into: &items)
                if var first = problems.first {
                    if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                    items.append(.quarantined(QuarantinedRecord(error: first, raw: record.raw, fields: record.asJSON)))
                }
            }
        }
    }
}

/// The common shape of most connectors: read each document (file or URL) through a shared decoder,
/// map each record. Documents are read one after another, batch by batch. With `pageSize`, URLs are
/// paged with `limit`/`offset` until a page comes back short (NGSI v2, many REST APIs).
struct DocumentRun<Mapping: RecordMapping>: ConnectorRun {
    private var locations: [String]
    var pageSize = 0
    private var page: (url: String, offset: Int, records: Int)?
    private let fetcher: HTTPFetcher
    private let headers: [(String, String)]
    private let makeDecoder: (String) -> AnyRecordDecoder
    private var mapping: Mapping
    private var reader: ChunkReader?
    private var decoder: AnyRecordDecoder?
    private var finishedBytes = 0
    public private(set) var origins: [String] = []

    init(locations: [String], fetcher: HTTPFetcher, headers: [(String, String)] = [], decoder: @escaping (String) -> AnyRecordDecoder, mapping: Mapping) {
        self.locations = locations
        self.fetcher = fetcher
        self.headers = headers
        self.makeDecoder = decoder
        self.mapping = mapping
    }

    var bytesRead: Int { finishedBytes + (reader?.bytesRead ?? 0) }

    mutating func next() async throws -> ConnectorBatch? {
        while true {
            if reader == nil {
                guard !locations.isEmpty else { return nil }
                var location = locations.removeFirst()
                if pageSize > 0, location.hasPrefix("http://") || location.hasPrefix("https://") {
                    let offset = page?.url == location ? page!.offset : 0
                    page = (location, offset, 0)
                    location = Self.pageURL(location, limit: pageSize, offset: offset)
                }
                let opened = try await ChunkReader.open(location, fetcher: fetcher, headers: headers, conditional: pageSize == 0)
                reader = opened
                origins.append(opened.origin)
                decoder = makeDecoder(opened.origin)
            }
            let decoded: [DecodedRecord]
            if let chunk = try await reader!.next() {
                decoded = try decoder!.feed(chunk)
                page?.records += decoded.count
            } else if reader!.notModified {
                decoded = []   // 304: nothing new since the last successful run
                reader = nil
            } else {
                decoded = try decoder!.finish()
                finishedBytes += reader!.bytesRead
                reader = nil
                if let current = page, current.records + decoded.count >= pageSize {
                    // A full page: there may be more.
                    page = (current.url, current.offset + pageSize, 0)
                    locations.insert(current.url, at: 0)
                }
            }
            guard !decoded.isEmpty else { continue }
            mapping.envelope(decoder!.envelope)
            var items: [StagedItem] = []
            mapping.mapAll(decoded, into: &items)
            return ConnectorBatch(items: items, recordsRead: decoded.count)
        }
    }
}

extension DocumentRun {
    /// `url` with `limit` and `offset` set (other query items kept).
    static func pageURL(_ url: String, limit: Int, offset: Int) -> String {
        guard var components = URLComponents(string: url) else { return url }
        var items = (components.queryItems ?? []).filter { $0.name != "limit" && $0.name != "offset" }
        items.append(URLQueryItem(name: "limit", value: String(limit)))
        items.append(URLQueryItem(name: "offset", value: String(offset)))
        components.queryItems = items
        return components.string ?? url
    }
}

/// Emits each station once per run.
struct StationTracker {
    private var seen: Set<String> = []

    mutating func emit(_ key: String, into items: inout [StagedItem], _ make: () -> Station) {
        if seen.insert(key).inserted { items.append(.station(make())) }
    }
}

extension JSONValue {
    /// A number from a JSON number or a numeric string (many APIs send "19.13").
    var number: Double? {
        switch self {
        case .number(let d): return d
        case .string(let s): return Double(s.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }
}
