import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import Foundation
import NIOCore

/// Pulls decoded records batch by batch from a source; nothing is read ahead of what the caller asks for.
public protocol RecordSource {
    /// The next batch, or nil at the end.
    mutating func next() async throws -> [DecodedRecord]?
    /// Bytes read so far (after transfer decoding).
    var bytesRead: Int { get }
    /// Where the data came from, for the checkpoint (files and URLs read).
    var origins: [String] { get }
}

/// A problem reading the source itself (not one record): the run fails at step `extract`.
public struct ExtractError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads one or more local files (a `*` in the last path component matches several, in name order).
public struct FileRecordSource: RecordSource {
    private var files: [String]
    private let format: FormatSpec
    private var reader: ChunkReader?
    private var decoder: AnyRecordDecoder?
    private var finishedBytes = 0
    public private(set) var origins: [String] = []

    public var bytesRead: Int { finishedBytes + (reader?.bytesRead ?? 0) }

    public init(path: String, format: FormatSpec) throws {
        self.format = format
        self.files = try Self.expand(path)
    }

    static func expand(_ path: String) throws -> [String] {
        let name = (path as NSString).lastPathComponent
        guard name.contains("*") else {
            guard FileManager.default.fileExists(atPath: path) else { throw ExtractError("source file not found: \(displayPath(path))") }
            return [path]
        }
        let directory = (path as NSString).deletingLastPathComponent
        let parts = name.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let matches = entries.filter { entry in
            guard entry.hasPrefix(parts.first!), entry.hasSuffix(parts.last!) else { return false }
            var rest = Substring(entry.dropFirst(parts.first!.count))
            for part in parts.dropFirst().dropLast() {
                guard let r = rest.range(of: part) else { return false }
                rest = rest[r.upperBound...]
            }
            return rest.count >= parts.last!.count
        }.sorted()
        guard !matches.isEmpty else { throw ExtractError("no file matches \(displayPath(path))") }
        return matches.map { directory + "/" + $0 }
    }

    public mutating func next() async throws -> [DecodedRecord]? {
        while true {
            if reader == nil {
                guard !files.isEmpty else { return nil }
                let path = files.removeFirst()
                let opened = try ChunkReader.openFile(path)
                reader = opened
                origins.append(path)
                decoder = AnyRecordDecoder(format, origin: opened.origin)
            }
            let records: [DecodedRecord]
            if let chunk = try await reader!.next() {
                records = try decoder!.feed(chunk)
            } else {
                records = try decoder!.finish()
                finishedBytes += reader!.bytesRead
                reader = nil
            }
            if !records.isEmpty { return records }
        }
    }
}

/// Fetches pages over HTTP through the shared fetcher and decodes each body as it streams in.
public struct HTTPRecordSource: RecordSource {
    private let fetcher: HTTPFetcher
    private let spec: SourceSpec
    private var nextURL: String?
    private var page = 0
    private var recordsOnPage = 0
    private var currentURL: String?
    private var pageAttempt = 1
    private var skip = 0
    private let retry = HTTPFetcher.RetryPolicy.default
    private var body: BodyReader?
    private var decoder: AnyRecordDecoder?
    private var response: HTTPFetcher.Response?
    public private(set) var bytesRead = 0
    public private(set) var origins: [String] = []

    public init(spec: SourceSpec, fetcher: HTTPFetcher) {
        self.fetcher = fetcher
        self.spec = spec
        self.nextURL = Self.pageURL(spec, page: 0)
    }

    /// The URL of page `page` (0-based) for offset/page paging, or the configured URL.
    static func pageURL(_ spec: SourceSpec, page: Int) -> String? {
        guard let url = spec.url, var components = URLComponents(string: url) else { return spec.url }
        var items = components.queryItems ?? []
        for (name, value) in spec.query { items.append(URLQueryItem(name: name, value: value)) }
        switch spec.paging {
        case .offset(let param, let limitParam, let size, _):
            items.removeAll { $0.name == param || $0.name == limitParam }
            items.append(URLQueryItem(name: param, value: String(page * size)))
            items.append(URLQueryItem(name: limitParam, value: String(size)))
        case .page(let param, let sizeParam, let start, let size, _):
            items.removeAll { $0.name == param || $0.name == sizeParam }
            items.append(URLQueryItem(name: param, value: String(start + page)))
            if let sizeParam { items.append(URLQueryItem(name: sizeParam, value: String(size))) }
        case .nextLink, nil:
            break
        }
        components.queryItems = items.isEmpty ? nil : items
        // Keep encoded characters such as `$` and spaces in filters intact.
        return components.string
    }

    public mutating func next() async throws -> [DecodedRecord]? {
        while true {
            if body == nil {
                if currentURL == nil {
                    guard let url = nextURL else { return nil }
                    nextURL = nil
                    currentURL = url
                    pageAttempt = 1
                    recordsOnPage = 0
                    skip = 0
                }
                let url = currentURL!
                let response = try await fetcher.get(.init(url: url, headers: spec.headers, timeout: .seconds(Int64(spec.timeoutSeconds)), retry: retry, conditional: true))
                self.response = response
                if pageAttempt == 1 { origins.append(HTTPFetcher.redacted(url)) }
                if response.status == 304 {
                    // Not modified since the last successful run: nothing new here (and no links to follow).
                    currentURL = nil
                    continue
                }
                decoder = AnyRecordDecoder(spec.format, origin: HTTPFetcher.redacted(url))
                body = BodyReader(response)
            }
            do {
                var records: [DecodedRecord]
                if let chunk = try await body!.next() {
                    bytesRead += chunk.readableBytes
                    records = try decoder!.feed(chunk.readableBytesView)
                } else {
                    records = try decoder!.finish()
                    body = nil
                }
                // After a retry, the records of this page that were already handed out are dropped.
                if skip > 0 {
                    let drop = min(skip, records.count)
                    records.removeFirst(drop)
                    skip -= drop
                }
                recordsOnPage += records.count
                if body == nil {
                    page += 1
                    currentURL = nil
                    nextURL = try followingPage()
                }
                if !records.isEmpty { return records }
            } catch let failure as HTTPFetcher.Failure where failure.isTransient && pageAttempt < retry.attempts {
                // The body was cut off: fetch the same page again and continue after the records already read.
                RetryLog.current?.record("GET \(failure.url): \(failure.message); page fetched again (attempt \(pageAttempt + 1) of \(retry.attempts)), skipping \(recordsOnPage) records already read")
                skip = recordsOnPage
                body = nil
                pageAttempt += 1
                try await Task.sleep(for: retry.baseDelay)
            }
        }
    }

    /// Decides whether there is another page after the one just finished.
    private func followingPage() throws -> String? {
        switch spec.paging {
        case nil:
            return nil
        case .nextLink(let path, let maxPages):
            guard page < maxPages else { return nil }
            var link: String?
            if let path {
                link = Self.lookup(path, in: decoder?.envelope ?? .null)?.stringValue
            } else if let header = response?.header("Link") {
                link = Self.nextFromLinkHeader(header)
            }
            guard let link, !link.isEmpty else { return nil }
            // Relative links resolve against the page they came from.
            if let base = response.flatMap({ URL(string: $0.url) }), let resolved = URL(string: link, relativeTo: base) {
                return resolved.absoluteString
            }
            return link
        case .offset(_, _, let size, let maxPages), .page(_, _, _, let size, let maxPages):
            guard page < maxPages, recordsOnPage >= size else { return nil }
            return Self.pageURL(spec, page: page)
        }
    }

    /// `@iot.nextLink`, `links.next`, `$.links.next.href`: a dotted path into the envelope, exact keys first.
    static func lookup(_ path: String, in value: JSONValue) -> JSONValue? {
        var p = path
        if p.hasPrefix("$.") { p.removeFirst(2) } else if p == "$" { return value }
        if let direct = value[p] { return direct }
        var current = value
        for part in p.split(separator: ".") {
            if let index = Int(part), let item = current[index] { current = item; continue }
            guard let next = current[String(part)] else { return nil }
            current = next
        }
        return current
    }

    static func nextFromLinkHeader(_ header: String) -> String? {
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let target = pieces.first, pieces.dropFirst().contains(where: { $0.replacingOccurrences(of: "\"", with: "") == "rel=next" }) else { continue }
            return String(target.dropFirst().dropLast())
        }
        return nil
    }
}

/// Paths under the working directory are shown relative to it.
public func displayPath(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    if path.hasPrefix(cwd + "/") { return String(path.dropFirst(cwd.count + 1)) }
    return path
}
