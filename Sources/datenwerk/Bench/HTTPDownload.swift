import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 GET over loopback that reads the whole answer and discards it: the cheapest client
/// there is, so the time measured is the server's.
enum HTTPDownload {
    struct Result {
        var status: Int
        /// Bytes received, head included.
        var bytes: Int
        /// Bytes of the body (without chunk framing) and the line feeds in it.
        var bodyBytes: Int
        var lines: Int
        /// The body ended where its framing said (the last chunk, or Content-Length).
        var complete: Bool
        var seconds: Double
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func get(port: Int, path: String) throws -> Result {
        let started = ChildProcess.now()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var head: [UInt8] = []
        var headDone = false
        var contentLength: Int?
        var body = BodyCounter()
        var total = 0
        while !body.finished {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            total += n
            if headDone {
                buffer.withUnsafeBufferPointer { body.take(UnsafeBufferPointer(rebasing: $0[0..<n])) }
            } else {
                head.append(contentsOf: buffer[0..<n])
                guard let range = head.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                headDone = true
                let text = String(decoding: head[..<range.lowerBound], as: UTF8.self).lowercased()
                body.chunked = text.contains("transfer-encoding: chunked")
                if let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    contentLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
                    body.remaining = contentLength ?? 0
                    if contentLength == 0 { body.finished = true }
                }
                let rest = Array(head[range.upperBound...])
                head = Array(head[..<range.lowerBound])
                rest.withUnsafeBufferPointer { body.take($0) }
            }
        }
        let statusLine = String(decoding: head.prefix { $0 != 13 }, as: UTF8.self)
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return Result(status: status, bytes: total, bodyBytes: body.bytes, lines: body.newlines, complete: body.finished || (contentLength == nil && !body.chunked), seconds: ChildProcess.now() - started)
    }

    /// Follows a body's framing (chunked, Content-Length, or to the end) and counts its bytes and line feeds.
    struct BodyCounter {
        var chunked = false
        /// Bytes left in the current chunk (or of a Content-Length body).
        var remaining = 0
        var finished = false
        var bytes = 0
        var newlines = 0
        private var sizeLine: [UInt8] = []
        private var state = State.size

        enum State { case size, data, dataEnd, trailer }

        mutating func take(_ input: UnsafeBufferPointer<UInt8>) {
            guard chunked else {
                count(input)
                if remaining > 0 {
                    remaining -= input.count
                    if remaining <= 0 { finished = true }
                }
                return
            }
            var i = input.startIndex
            while i < input.endIndex, !finished {
                switch state {
                case .size:
                    let byte = input[i]; i += 1
                    if byte == 10 {
                        let text = String(decoding: sizeLine, as: UTF8.self).split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                        sizeLine = []
                        remaining = Int(text, radix: 16) ?? 0
                        state = remaining == 0 ? .trailer : .data
                    } else {
                        sizeLine.append(byte)
                    }
                case .data:
                    let take = min(remaining, input.endIndex - i)
                    count(UnsafeBufferPointer(rebasing: input[i..<(i + take)]))
                    i += take
                    remaining -= take
                    if remaining == 0 { state = .dataEnd }
                case .dataEnd:
                    if input[i] == 10 { state = .size }
                    i += 1
                case .trailer:
                    // The empty line after the last chunk ends the body.
                    let byte = input[i]; i += 1
                    if byte == 10 {
                        if sizeLine.isEmpty { finished = true } else { sizeLine = [] }
                    } else if byte != 13 {
                        sizeLine.append(byte)
                    }
                }
            }
        }

        private mutating func count(_ slice: UnsafeBufferPointer<UInt8>) {
            bytes += slice.count
            for byte in slice where byte == 10 { newlines += 1 }
        }
    }
}
