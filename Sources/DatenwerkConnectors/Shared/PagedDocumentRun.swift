import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation

/// One JSON document to read (a page of a collection, an entity, a saved file) and what its records are.
struct PageRequest<Context: Sendable>: Sendable {
    var location: String
    /// Where the records are: `$.value` for a SensorThings collection, `$` for an entity or a bare array.
    var recordPath: String
    var context: Context
}

/// What a paged JSON source does with each record and how it finds the next page.
protocol PagedMapping {
    associatedtype Context: Sendable
    /// Appends items for `record`; may ask for more documents (nested next links) in `follow`.
    /// Returns problems (the record is then quarantined with its raw text).
    mutating func map(_ record: Record, context: Context, into items: inout [StagedItem], follow: inout [PageRequest<Context>]) -> [RecordError]
    /// After a document: the next page, if there is one.
    mutating func nextPage(after request: PageRequest<Context>, envelope: JSONValue, records: Int, headers: [(String, String)]) throws -> PageRequest<Context>?
    /// The books of the batch in progress: values offered and skipped by rule (zero silent drops). The run takes
    /// them after each batch; a failed record stands for the values it offered that found no other end.
    var tally: ValueTally { get set }
}

/// Reads JSON documents one after another through the run's `DocumentReader` (resume after a cut body, no record
/// twice) and the streaming decoder, following next pages and nested links the mapping asks for. Only the page in
/// progress is held in memory. Used by SensorThings (`@iot.nextLink`, nested `Datastream/Observations` links) and
/// NGSI (offset/limit with the broker's total count).
struct PagedDocumentRun<Mapping: PagedMapping>: ConnectorRun {
    private var pending: [PageRequest<Mapping.Context>]
    private let session: FetchSession
    private let headers: [(String, String)]
    private var mapping: Mapping
    private var current: PageRequest<Mapping.Context>?
    private var reader: DocumentReader<StreamingJSONDecoder>?
    private var recordsOnPage = 0
    /// Nested links queued from the document in progress (they go before its next page).
    private var followed = 0
    private var finishedBytes = 0
    private(set) var origins: [String] = []
    /// Stops a server whose next links go round in circles.
    private var seen: Set<String> = []
    /// Stops a server whose next links never end (each new, so `seen` cannot tell): documents per run at most.
    let maxDocuments: Int

    /// Documents one run reads at most unless told otherwise: far above any real collection (a SensorThings
    /// server pages 100–10,000 entities per document), far below "forever".
    static var defaultMaxDocuments: Int { 100_000 }

    init(_ requests: [PageRequest<Mapping.Context>], session: FetchSession, headers: [(String, String)] = [], mapping: Mapping,
         maxDocuments: Int = defaultMaxDocuments) {
        pending = requests
        self.session = session
        self.headers = headers
        self.mapping = mapping
        self.maxDocuments = maxDocuments
    }

    var bytesRead: Int { finishedBytes + (reader?.bytesRead ?? 0) }

    mutating func next() async throws -> ConnectorBatch? {
        while true {
            if reader == nil {
                guard !pending.isEmpty else { return nil }
                let request = pending.removeFirst()
                guard seen.insert(request.location).inserted else {
                    throw ExtractError("\(session.masked(HTTPFetcher.redacted(request.location))) was already read in this run; the server's next links loop")
                }
                guard seen.count <= maxDocuments else {
                    throw ExtractError("more than \(maxDocuments) documents in one run; the server's next links do not end (next: \(session.masked(HTTPFetcher.redacted(request.location))))")
                }
                var options = JSONDecoderOptions()
                options.recordPath = request.recordPath
                let opened = DocumentReader(request.location, session: session, request: session.request(request.location, headers: headers)) {
                    StreamingJSONDecoder(options: options, origin: $0)
                }
                reader = opened
                current = request
                recordsOnPage = 0
                followed = 0
                origins.append(opened.origin)
            }
            let decoded = try await reader!.next()
            var follow: [PageRequest<Mapping.Context>] = []
            var items: [StagedItem] = []
            for entry in decoded ?? [] {
                switch entry {
                case .rejected(let bad):
                    mapping.tally.read()   // an unreadable record offers one value as far as anyone can tell
                    items.append(.quarantined(bad))
                case .record(let record):
                    let before = mapping.tally
                    let firstItem = items.count
                    let problems = mapping.map(record, context: current!.context, into: &items, follow: &follow)
                    if var first = problems.first {
                        if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                        let values = mapping.tally.unsettled(since: before, items: items, from: firstItem)
                        items.append(.quarantined(QuarantinedRecord(error: first, raw: record.raw, values: values)))
                    }
                }
            }
            recordsOnPage += decoded?.count ?? 0
            // Nested links first, in record order (they belong to records of this page), then the next page.
            pending.insert(contentsOf: follow, at: followed)
            followed += follow.count
            guard let decoded else {
                let page = reader!
                let next = try mapping.nextPage(after: current!, envelope: page.envelope, records: recordsOnPage, headers: page.headers)
                finishedBytes += page.bytesRead
                reader = nil
                if let next { pending.insert(next, at: followed) }
                continue
            }
            let books = mapping.tally.take()
            return ConnectorBatch(items: items, recordsRead: decoded.count, valuesRead: books.valuesRead, skipped: books.skipped)
        }
    }
}
