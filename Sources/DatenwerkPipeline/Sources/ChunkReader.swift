import DatenwerkCore
import DatenwerkHTTP
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Reads the bytes of one file or URL chunk by chunk; connectors feed them to a decoder.
package final class ChunkReader {
    package let origin: String
    private var file: FileHandle?
    private var body: BodyReader?
    package private(set) var bytesRead = 0
    /// The response headers for URLs (empty for files).
    package private(set) var headers: [(String, String)] = []
    /// The server answered 304 to a conditional request: there are no bytes, and nothing is new.
    package private(set) var notModified = false

    private init(origin: String) { self.origin = origin }

    /// Opens an http(s) URL with the run's `session` (its retry log, validators, `request:` headers and secrets), or a
    /// local file. For documents read whole or handed to a zip reader; record streams read through `DocumentReader`.
    package static func open(_ location: String, session: FetchSession, headers: [(String, String)] = [], timeout: Duration? = nil, conditional: Bool = false) async throws -> ChunkReader {
        guard location.hasPrefix("http://") || location.hasPrefix("https://") else { return try openFile(location) }
        let response = try await session.get(session.request(location, headers: headers, timeout: timeout, conditional: conditional))
        let reader = ChunkReader(origin: response.shownURL)
        reader.headers = response.headers
        if response.status == 304 {
            reader.notModified = true
            return reader
        }
        reader.body = BodyReader(response)
        return reader
    }

    /// Opens a local file.
    package static func openFile(_ path: String) throws -> ChunkReader {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ExtractError("cannot open \(displayPath(path))")
        }
        let reader = ChunkReader(origin: displayPath(path))
        reader.file = handle
        return reader
    }

    /// The next chunk, or nil at the end.
    package func next() async throws -> [UInt8]? {
        if let body {
            guard let buffer = try await body.next() else { return nil }
            bytesRead += buffer.readableBytes
            return Array(buffer.readableBytesView)
        }
        guard let file else { return nil }
        let chunk = try Self.readChunk(file.fileDescriptor, upTo: Self.chunkBytes, origin: origin)
        if chunk.isEmpty {
            try? file.close()
            self.file = nil
            return nil
        }
        bytesRead += chunk.count
        return chunk
    }

    /// A file's chunk: 256 KiB (a CSV chunk maps to ~2 MB of staged items at four values per line).
    static let chunkBytes = 256 * 1024

    /// Up to `count` bytes of `fd`, read straight into the array (`FileHandle.read` fills a `Data` first, which
    /// then had to be copied: a second 256 KiB buffer and copy per chunk); fewer only at the end of the file.
    static func readChunk(_ fd: Int32, upTo count: Int, origin: String) throws -> [UInt8] {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = 0
            while initialized < count {
                let n = read(fd, buffer.baseAddress! + initialized, count - initialized)
                if n > 0 {
                    initialized += n
                } else if n == 0 {
                    break
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        if failure != 0 {
            throw ExtractError("reading \(origin) failed: \(String(cString: strerror(failure)))")
        }
        return bytes
    }

    /// The whole content (for small documents only, e.g. a station list or a zip member index).
    package func readAll(limit: Int = 64 << 20) async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await next() {
            all += chunk
            if all.count > limit { throw ExtractError("\(origin) is larger than \(limit) bytes") }
        }
        return all
    }
}

/// Expands a location: URLs stay as they are; a file path may end in a `*` pattern (sorted matches).
package func expandLocation(_ location: String) throws -> [String] {
    if location.hasPrefix("http://") || location.hasPrefix("https://") { return [location] }
    return try FileRecordSource.expand(location)
}

/// Resolves a relative file path against the folder of the pipeline file.
package func resolvePath(_ path: String, relativeTo file: String) -> String {
    if path.hasPrefix("/") || path.hasPrefix("http://") || path.hasPrefix("https://") { return path }
    var base = (file as NSString).deletingLastPathComponent
    if !base.hasPrefix("/") { base = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(base) }
    return ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
}
