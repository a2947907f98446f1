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
    /// The mapping's books for the batch in progress (`ValueTally`): nil when it does not count values (the run
    /// then cannot prove its balance). `DocumentRun` takes them after each batch.
    var tally: ValueTally? { get set }
    /// Called when a document ends (before the next one starts): a mapping that holds a row back to read it with
    /// the next one (a repeated DST hour) settles it here.
    mutating func endOfDocument(into items: inout [StagedItem])
}

extension RecordMapping {
    mutating func envelope(_ envelope: JSONValue) {}
    var tally: ValueTally? {
        get { nil }
        set {}
    }
    mutating func endOfDocument(into items: inout [StagedItem]) {}

    /// Maps decoded records; a record with problems is quarantined with its raw text (first problem named).
    mutating func mapAll(_ decoded: [DecodedRecord], into items: inout [StagedItem]) {
        for entry in decoded {
            switch entry {
            case .rejected(let bad):
                tally?.read()   // an unreadable record offers one value as far as anyone can tell
                items.append(.quarantined(bad))
            case .record(let record):
                let before = tally
                let firstItem = items.count
                let problems = map(record, into: &items)
                if var first = problems.first {
                    if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                    // With books kept: the record stands for the values it offered that found no other end.
                    var values = 1
                    if let before, var books = tally {
                        values = books.unsettled(since: before, items: items, from: firstItem)
                        tally = books
                    }
                    items.append(.quarantined(QuarantinedRecord(error: first, raw: record.raw, fields: record.asJSON, values: values)))
                }
            }
        }
    }
}

/// The common shape of most connectors: read each document (file or URL) through the run's `DocumentReader`
/// (conditional GET, resume after a cut body) and a shared decoder, map each record. Documents are read one after
/// another, batch by batch. With `pageSize`, URLs are paged with `limit`/`offset` (`OffsetPaginator`) until a page
/// comes back short (NGSI v2, many REST APIs).
struct DocumentRun<Mapping: RecordMapping>: ConnectorRun {
    private var locations: [String]
    var pageSize = 0
    /// The paginator of the URL in progress (with `pageSize`).
    private var paginator: OffsetPaginator?
    private let session: FetchSession
    private let headers: [(String, String)]
    private let makeDecoder: (String) -> AnyRecordDecoder
    private var mapping: Mapping
    private var reader: DocumentReader<AnyRecordDecoder>?
    private var recordsOnPage = 0
    private var finishedBytes = 0
    package private(set) var origins: [String] = []

    init(locations: [String], session: FetchSession, headers: [(String, String)] = [], decoder: @escaping (String) -> AnyRecordDecoder, mapping: Mapping) {
        self.locations = locations
        self.session = session
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
                if paginator == nil, pageSize > 0, DocumentReader<AnyRecordDecoder>.isURL(location) {
                    let first = OffsetPaginator(limit: pageSize, limitFirst: true)
                    paginator = first
                    location = first.firstPage(location)
                }
                let opened = DocumentReader(location, session: session, request: session.request(location, headers: headers, conditional: pageSize == 0),
                                            decoder: makeDecoder)
                reader = opened
                recordsOnPage = 0
                origins.append(opened.origin)
            }
            guard let decoded = try await reader!.next() else {
                let page = reader!
                finishedBytes += page.bytesRead
                reader = nil
                var held: [StagedItem] = []
                mapping.endOfDocument(into: &held)
                // 304: nothing new since the last successful run. A full page: there may be more.
                if !page.notModified, paginator != nil {
                    if let next = paginator!.next(after: page.pageResult(records: recordsOnPage)) {
                        locations.insert(next, at: 0)
                    } else {
                        paginator = nil
                    }
                }
                let books = mapping.tally
                if !held.isEmpty || (books.map { $0.valuesRead > 0 } ?? false) {
                    if books != nil { mapping.tally = ValueTally() }
                    return ConnectorBatch(items: held, recordsRead: 0, valuesRead: books?.valuesRead, skipped: books?.skipped ?? SkipCounts())
                }
                continue
            }
            recordsOnPage += decoded.count
            mapping.envelope(reader!.envelope)
            var items: [StagedItem] = []
            mapping.mapAll(decoded, into: &items)
            let books = mapping.tally
            if books != nil { mapping.tally = ValueTally() }
            return ConnectorBatch(items: items, recordsRead: decoded.count - (books?.notRecords ?? 0), valuesRead: books?.valuesRead, skipped: books?.skipped ?? SkipCounts())
        }
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
