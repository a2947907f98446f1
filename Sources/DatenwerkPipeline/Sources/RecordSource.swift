import Crypto
import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import Foundation
import NIOCore

/// Pulls decoded records batch by batch from a source; nothing is read ahead of what the caller asks for.
package protocol RecordSource {
    /// The next batch, or nil at the end.
    mutating func next() async throws -> [DecodedRecord]?
    /// Bytes read so far (after transfer decoding).
    var bytesRead: Int { get }
    /// Where the data came from, for the checkpoint (files and URLs read).
    var origins: [String] { get }
    /// See `ConnectorRun.events` (a source a connector opens, e.g. "unchanged since …").
    var events: [String] { get }
    /// See `ConnectorRun.sourceState`.
    var sourceState: [JSONValue.Member] { get }
}

extension RecordSource {
    package var events: [String] { [] }
    package var sourceState: [JSONValue.Member] { [] }
}

/// A problem reading the source itself (not one record): the run fails at step `extract`.
package struct ExtractError: Error, Sendable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Reads one or more local files (a `*` in the last path component matches several, in name order).
///
/// With a `FileMemory` (a live run of a pipeline read from YAML) it skips a file the last successful run read
/// and that has not changed since (same size, same SHA-256), and remembers what it read this time
/// (`sourceState`): a scheduled run over a folder of daily files reads only the new ones.
package struct FileRecordSource: RecordSource {
    private var files: [String]
    private let format: FormatSpec
    private var reader: ChunkReader?
    private var decoder: AnyRecordDecoder?
    private var finishedBytes = 0
    package private(set) var origins: [String] = []
    /// The first files skipped as unchanged (at most `namedSkips`), and how many there were.
    private var skipped: [String] = []
    private var skippedCount = 0
    private var notRemembered: String?
    static let namedSkips = 20
    /// What the last successful run read (nil: read everything, remember nothing).
    private let known: FileMemory?
    /// What this run read or skipped as unchanged: the next run's memory.
    private var remembered: FileMemory?
    private var hasher: SHA256?
    private var currentPath = ""

    package var bytesRead: Int { finishedBytes + (reader?.bytesRead ?? 0) }

    /// `memory`: what the last successful run read, with the reading digest of this run (`FileMemory`); nil
    /// reads every file and remembers nothing.
    /// `maxFiles`: `FileMemory.maxFiles` (smaller in tests).
    package init(path: String, format: FormatSpec, memory: FileMemory? = nil, maxFiles: Int = FileMemory.maxFiles) throws {
        self.format = format
        let files = try Self.expand(path)
        self.files = files
        if memory != nil, files.count > maxFiles {
            notRemembered = "\(files.count) files match \(displayPath(path)); more than \(maxFiles) are not remembered, so every one is read"
            self.known = nil
            self.remembered = nil
        } else {
            self.known = memory
            self.remembered = memory.map { FileMemory(reading: $0.reading) }
        }
    }

    /// Files skipped as unchanged (a folder of thousands names the first few, then counts), and a source with
    /// too many files to remember.
    package var events: [String] {
        var events = notRemembered.map { [$0] } ?? []
        events += skipped
        if skippedCount > skipped.count {
            events.append("… and \(skippedCount - skipped.count) more files unchanged since the last successful run, not read again")
        }
        return events
    }

    package var sourceState: [JSONValue.Member] {
        remembered.map { [$0.checkpointMember] } ?? []
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

    /// Whether `path` is the file the last successful run read: the size first (no read when it differs),
    /// then the SHA-256 of its bytes.
    private func unchanged(_ path: String) throws -> FileMemory.Fingerprint? {
        guard let before = known?.files[path], FileMemory.size(ofFile: path) == before.size else { return nil }
        return try FileMemory.sha256(ofFile: path) == before.sha256 ? before : nil
    }

    package mutating func next() async throws -> [DecodedRecord]? {
        while true {
            if reader == nil {
                guard !files.isEmpty else { return nil }
                let path = files.removeFirst()
                if let same = try unchanged(path) {
                    remembered?.files[path] = same
                    skippedCount += 1
                    if skipped.count < Self.namedSkips {
                        skipped.append("\(displayPath(path)): unchanged since the last successful run (\(same.size) bytes, sha256 \(same.sha256.prefix(12))…), not read again")
                    }
                    continue
                }
                let opened = try ChunkReader.openFile(path)
                reader = opened
                origins.append(path)
                decoder = AnyRecordDecoder(format, origin: opened.origin)
                hasher = remembered == nil ? nil : SHA256()
                currentPath = path
            }
            let records: [DecodedRecord]
            if let chunk = try await reader!.next() {
                hasher?.update(data: chunk)
                records = try decoder!.feed(chunk)
            } else {
                records = try decoder!.finish()
                let size = reader!.bytesRead
                finishedBytes += size
                reader = nil
                if let done = hasher.take() {
                    remembered?.files[currentPath] = FileMemory.Fingerprint(size: size, sha256: hexString(done.finalize()))
                }
            }
            if !records.isEmpty { return records }
        }
    }
}

/// Fetches pages over HTTP and decodes each body as it streams in: a `DocumentReader` per page (conditional GET,
/// resume after a cut body) and a `Paginator` from the pipeline's `paging` block.
package struct HTTPRecordSource: RecordSource {
    private let session: FetchSession
    private let spec: SourceSpec
    private var paginator: any Paginator
    private var nextURL: String?
    private var reader: DocumentReader<AnyRecordDecoder>?
    private var recordsOnPage = 0
    private var finishedBytes = 0
    package private(set) var origins: [String] = []

    package var bytesRead: Int { finishedBytes + (reader?.bytesRead ?? 0) }

    /// Reads with the run's `session` (retries recorded, validators sent, `request:` headers and secrets).
    package init(spec: SourceSpec, session: FetchSession) {
        self.session = session
        self.spec = spec
        self.paginator = Self.paginator(spec.paging)
        self.nextURL = spec.url.map { paginator.firstPage(Self.withQuery($0, spec.query)) }
    }

    /// A source reading with `fetcher` alone (no retry log, no validators; runs pass their session).
    package init(spec: SourceSpec, fetcher: HTTPFetcher) {
        self.init(spec: spec, session: FetchSession(fetcher: fetcher))
    }

    /// The paginator a `paging` block describes.
    package static func paginator(_ paging: PagingSpec?) -> any Paginator {
        switch paging {
        case nil: return SinglePage()
        case .nextLink(let path, let maxPages): return PageLimit(NextLinkPaginator(path: path), maxPages: maxPages)
        case .offset(let param, let limitParam, let size, let maxPages):
            return PageLimit(OffsetPaginator(offsetParam: param, limitParam: limitParam, limit: size), maxPages: maxPages)
        case .page(let param, let sizeParam, let start, let size, let maxPages):
            return PageLimit(PageNumberPaginator(pageParam: param, sizeParam: sizeParam, start: start, size: size), maxPages: maxPages)
        }
    }

    /// `url` with the `query` block's parameters added.
    static func withQuery(_ url: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty, var components = URLComponents(string: url) else { return url }
        components.queryItems = (components.queryItems ?? []) + query.map { URLQueryItem(name: $0.0, value: $0.1) }
        // Keep encoded characters such as `$` and spaces in filters intact.
        return components.string ?? url
    }

    package mutating func next() async throws -> [DecodedRecord]? {
        while true {
            if reader == nil {
                guard let url = nextURL else { return nil }
                nextURL = nil
                let request = session.request(url, headers: spec.headers, timeout: .seconds(Int64(spec.timeoutSeconds)), conditional: true)
                let format = spec.format
                let opened = DocumentReader(url, session: session, request: request) { AnyRecordDecoder(format, origin: $0) }
                reader = opened
                recordsOnPage = 0
                origins.append(opened.origin)
            }
            if let records = try await reader!.next() {
                recordsOnPage += records.count
                return records
            }
            let page = reader!
            finishedBytes += page.bytesRead
            reader = nil
            // Not modified since the last successful run: nothing new here (and no links to follow).
            if page.notModified { continue }
            nextURL = paginator.next(after: page.pageResult(records: recordsOnPage, envelope: page.envelope))
        }
    }
}

extension SourceSpec {
    /// One http(s) document read with `format`, without paging (a document a connector found, e.g. a CKAN resource).
    package static func document(_ url: String, format: FormatSpec, timeoutSeconds: Int = 60) -> SourceSpec {
        SourceSpec(kind: .http, path: nil, url: url, headers: [], query: [], paging: nil, timeoutSeconds: timeoutSeconds, format: format)
    }
}

/// Paths under the working directory are shown relative to it.
package func displayPath(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    if path.hasPrefix(cwd + "/") { return String(path.dropFirst(cwd.count + 1)) }
    return path
}
