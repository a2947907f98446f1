import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// An anonymous temporary file a load writes as it goes and may read back once: the rows a first-load fast
/// path sent (replayed into the staging table if the fast path has to give way), the run's quarantined
/// records, and where each observation came from. Sequential writes through a 1 MiB buffer, so a run of any
/// size holds the same memory; the file is unlinked as soon as it is open (nothing is left behind by a crash)
/// and closed by `close()` or when the spool is released.
package final class LoadSpool {
    private let fd: Int32
    private var buffer: ByteBuffer
    package private(set) var bytes = 0
    private static let flushBytes = 1 << 20

    package init(_ purpose: String) throws {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/datenwerk-\(purpose)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw LoadSpoolError(message: "cannot create a spool file in \(directory) (\(String(cString: strerror(errno)))); set TMPDIR to a writable directory")
        }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        self.fd = fd
        self.buffer = ByteBufferAllocator().buffer(capacity: Self.flushBytes + 64 * 1024)
    }

    deinit { Glibc.close(fd) }

    package var isEmpty: Bool { bytes == 0 }

    /// Appends the readable bytes of `b` (not consumed).
    package func append(_ b: ByteBuffer) throws {
        if b.readableBytes >= Self.flushBytes / 4 {
            // A load's group of rows (megabytes): written from where it is, not copied into the buffer first.
            try flush()
            try b.withUnsafeReadableBytes { try writeAll($0) }
            bytes += b.readableBytes
            return
        }
        buffer.writeImmutableBuffer(b)
        bytes += b.readableBytes
        if buffer.readableBytes >= Self.flushBytes { try flush() }
    }

    /// Lets the caller encode straight into the spool's buffer.
    package func write(_ body: (inout ByteBuffer) -> Void) throws {
        let before = buffer.readableBytes
        body(&buffer)
        bytes += buffer.readableBytes - before
        if buffer.readableBytes >= Self.flushBytes { try flush() }
    }

    fileprivate func flush() throws {
        try buffer.withUnsafeReadableBytes { try writeAll($0) }
        buffer.clear()
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw LoadSpoolError(message: "cannot write a spool file (\(String(cString: strerror(errno)))); is the temporary directory full? (TMPDIR)")
            }
            offset += n
        }
    }

    /// Everything written, in chunks of about `chunkBytes`, from the start.
    package func read(chunkBytes: Int = 512 * 1024, _ body: (ByteBuffer) async throws -> Void) async throws {
        try flush()
        try await readSpool(fd, 0..<bytes, chunkBytes: chunkBytes, body)
    }
}

/// The bytes `range` of a spool file, in chunks of about `chunkBytes` (one buffer, reused).
private func readSpool(_ fd: Int32, _ range: Range<Int>, chunkBytes: Int, _ body: (ByteBuffer) async throws -> Void) async throws {
    var offset = range.lowerBound
    var chunk = ByteBufferAllocator().buffer(capacity: min(chunkBytes, range.count))
    while offset < range.upperBound {
        let want = min(chunkBytes, range.upperBound - offset)
        chunk.clear()
        let n = try chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw in
            while true {
                let n = pread(fd, raw.baseAddress!, want, off_t(offset))
                if n >= 0 { return n }
                if errno != EINTR { throw LoadSpoolError(message: "cannot read back a spool file (\(String(cString: strerror(errno))))") }
            }
        }
        guard n > 0 else { throw LoadSpoolError(message: "a spool file ended \(range.upperBound - offset) bytes early") }
        offset += n
        try await body(chunk)
    }
}

extension LoadSpool {
    /// What was written from byte `offset` on, to be read by another task (a side transaction) while this spool
    /// is not written any more: flushed first, read through its own descriptor.
    package func segment(from offset: Int) throws -> SpoolSegment {
        try flush()
        let copy = dup(fd)
        guard copy >= 0 else { throw LoadSpoolError(message: "cannot reopen a spool file (\(String(cString: strerror(errno))))") }
        return SpoolSegment(fd: copy, range: offset..<bytes)
    }
}

/// Bytes of a `LoadSpool` (its own descriptor, closed when the last copy is released).
package final class SpoolSegment: Sendable {
    private let fd: Int32
    package let range: Range<Int>

    init(fd: Int32, range: Range<Int>) {
        self.fd = fd
        self.range = range
    }

    deinit { Glibc.close(fd) }

    package var isEmpty: Bool { range.isEmpty }

    /// The bytes in chunks of about `chunkBytes`.
    package func read(chunkBytes: Int = 512 * 1024, _ body: (ByteBuffer) async throws -> Void) async throws {
        try await readSpool(fd, range, chunkBytes: chunkBytes, body)
    }
}

struct LoadSpoolError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
