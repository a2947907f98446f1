import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import Foundation
import NIOCore

/// A streaming decoder the `DocumentReader` feeds: bytes in, items (records) out.
package protocol DocumentDecoder {
    associatedtype Item
    /// Items completed by `chunk`.
    mutating func decode(_ chunk: [UInt8]) throws -> [Item]
    /// At the end of the bytes: the items still held.
    mutating func end() throws -> [Item]
    /// After `end`: more items to hand out in pieces (a decoder that unpacks a gzip file only at the end), nil when done.
    mutating func drain() throws -> [Item]?
}

extension DocumentDecoder {
    package mutating func drain() throws -> [Item]? { nil }
}

extension AnyRecordDecoder: DocumentDecoder {
    package mutating func decode(_ chunk: [UInt8]) throws -> [DecodedRecord] { try feed(chunk) }
    package mutating func end() throws -> [DecodedRecord] { try finish() }
}

extension StreamingJSONDecoder: DocumentDecoder {
    package mutating func decode(_ chunk: [UInt8]) throws -> [DecodedRecord] { try feed(chunk) }
    package mutating func end() throws -> [DecodedRecord] { try finish() }
}

/// Reads one document (an http(s) URL through the run's `FetchSession`, or a local file) into a streaming
/// decoder, chunk by chunk: the body is never held whole.
///
/// - **Conditional GET** (`conditional: true`): the last run's `ETag` / `Last-Modified` are sent; a 304 means
///   nothing new — `notModified` is set and `next()` returns nil at once.
/// - **Resume after a cut body**: when the body breaks off (a transient failure), the reader asks again. If the
///   server said `Accept-Ranges: bytes` and gave a validator, it asks for the rest (`Range` + `If-Range`) and the
///   same decoder goes on where the bytes stopped; otherwise (or when the server sends the whole body again) the
///   document is read from the start with a fresh decoder and the items already handed out are skipped, so no
///   item is ever emitted twice. Up to `retry.attempts` reads in all; each is recorded in the run's retries.
package struct DocumentReader<Decoder: DocumentDecoder> {
    package let location: String
    /// The location as messages show it (no credentials, secrets masked).
    package let origin: String
    package private(set) var decoder: Decoder
    /// Response headers of the document (empty for files).
    package private(set) var headers: [(String, String)] = []
    /// The server answered 304 to a conditional GET.
    package private(set) var notModified = false
    /// Bytes received (re-read bytes included).
    package private(set) var bytesRead = 0
    /// Items handed out so far.
    package private(set) var emitted = 0
    /// Reads of the document after the first (resumed or re-read).
    package private(set) var resumes = 0

    private let session: FetchSession?
    private let request: HTTPFetcher.Request?
    private let makeDecoder: (String) -> Decoder
    private var file: ChunkReader?
    private var body: BodyReader?
    private var opened = false
    private var ended = false
    private var done = false
    /// Bytes of the current read handed to the decoder (where a `Range` request continues).
    private var offset = 0
    /// Items of a re-read document still to drop (they were emitted before the cut).
    private var skip = 0
    private var rangeValidator: String?

    package static func isURL(_ location: String) -> Bool { location.hasPrefix("http://") || location.hasPrefix("https://") }

    /// A reader for `location`; nothing is fetched before the first `next()`. `request` is the HTTP request for a
    /// URL (built with `session.request(…)`); files need neither.
    package init(_ location: String, session: FetchSession?, request: HTTPFetcher.Request? = nil, decoder makeDecoder: @escaping (String) -> Decoder) {
        self.location = location
        self.session = session
        let isURL = Self.isURL(location)
        self.request = isURL ? (request ?? session?.request(location)) : nil
        self.origin = isURL ? (session?.masked(HTTPFetcher.redacted(location)) ?? HTTPFetcher.redacted(location)) : displayPath(location)
        self.makeDecoder = makeDecoder
        self.decoder = makeDecoder(origin)
    }

    /// The next items (never empty), or nil at the end of the document.
    package mutating func next() async throws -> [Decoder.Item]? {
        while !done {
            if !opened {
                try await open()
                if done { return nil }
            }
            var items: [Decoder.Item]
            do {
                items = try await step()
            } catch let failure as HTTPFetcher.Failure where failure.isTransient && request != nil && resumes + 1 < request!.retry.attempts {
                try await resume(after: failure)
                continue
            }
            if skip > 0 {
                let drop = min(skip, items.count)
                items.removeFirst(drop)
                skip -= drop
            }
            emitted += items.count
            if !items.isEmpty { return items }
        }
        return nil
    }

    /// Reads one chunk (or ends the document).
    private mutating func step() async throws -> [Decoder.Item] {
        if ended {
            if let more = try decoder.drain() { return more }
            done = true
            return []
        }
        let chunk: [UInt8]?
        if let body {
            chunk = try await body.next().map { Array($0.readableBytesView) }
        } else if let file {
            chunk = try await file.next()
        } else {
            chunk = nil
        }
        guard let chunk else {
            ended = true
            body = nil
            file = nil
            return try decoder.end()
        }
        bytesRead += chunk.count
        offset += chunk.count
        return try decoder.decode(chunk)
    }

    private mutating func open() async throws {
        opened = true
        guard let request, let session else {
            if Self.isURL(location) { throw ExtractError("\(origin): no fetch session to read it with") }
            file = try ChunkReader.openFile(location)
            return
        }
        let response = try await session.get(request)
        headers = response.headers
        if response.status == 304 {
            notModified = true
            done = true
            return
        }
        // A body that can be continued: byte ranges offered, identity encoding, a validator to check it is the same.
        let identity = response.header("Content-Encoding").map { $0.lowercased() == "identity" } ?? true
        if response.header("Accept-Ranges")?.lowercased().contains("bytes") == true, identity {
            rangeValidator = response.header("ETag").flatMap { $0.hasPrefix("W/") ? nil : $0 } ?? response.header("Last-Modified")
        }
        body = BodyReader(response)
    }

    private mutating func resume(after failure: HTTPFetcher.Failure) async throws {
        guard let request, let session else { throw failure }
        resumes += 1
        let attempts = request.retry.attempts
        try await Task.sleep(for: request.retry.baseDelay)
        if let validator = rangeValidator, offset > 0 {
            var ranged = request
            ranged.conditional = false
            ranged.headers.append(("Range", "bytes=\(offset)-"))
            ranged.headers.append(("If-Range", validator))
            ranged.headers.append(("Accept-Encoding", "identity"))
            let response = try await session.get(ranged)
            if response.status == 206, Self.rangeStart(response.header("Content-Range")) == offset,
               response.header("Content-Encoding").map({ $0.lowercased() == "identity" }) ?? true {
                session.recordRetry("GET \(failure.url): \(failure.message); rest asked for from byte \(offset) (attempt \(resumes + 1) of \(attempts))")
                body = BodyReader(response)
                return
            }
            if response.status == 200 {
                // The document changed (If-Range failed) or ranges are not honoured after all: read it again whole.
                session.recordRetry("GET \(failure.url): \(failure.message); page fetched again (attempt \(resumes + 1) of \(attempts)), skipping \(emitted) records already read")
                restart(BodyReader(response))
                return
            }
            // Any other partial answer: drop it and read the whole document again.
        }
        session.recordRetry("GET \(failure.url): \(failure.message); page fetched again (attempt \(resumes + 1) of \(attempts)), skipping \(emitted) records already read")
        var again = request
        again.conditional = false
        let response = try await session.get(again)
        restart(BodyReader(response))
    }

    private mutating func restart(_ reader: BodyReader) {
        decoder = makeDecoder(origin)
        body = reader
        offset = 0
        skip = emitted
        ended = false
    }

    /// `bytes 100-999/1000` → 100.
    static func rangeStart(_ header: String?) -> Int? {
        guard let header, header.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        return Int(spec[..<dash].trimmingCharacters(in: .whitespaces))
    }

    /// What the paginator needs once the document has been read.
    package func pageResult(records: Int, envelope: JSONValue = .null) -> PageResult {
        PageResult(url: location, headers: headers, envelope: envelope, records: records)
    }
}

extension DocumentReader where Decoder == AnyRecordDecoder {
    /// The JSON around the records (next links, totals).
    package var envelope: JSONValue { decoder.envelope }
}

extension DocumentReader where Decoder == StreamingJSONDecoder {
    package var envelope: JSONValue { decoder.envelope }
}
