import AsyncHTTPClient
import DatenwerkCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The one HTTP client of Datenwerk. Every connector fetches through it: streamed bodies, timeouts,
/// clear errors that name the URL (never its credentials).
public final class HTTPFetcher: Sendable {
    public struct Request: Sendable {
        public var url: String
        public var headers: [(String, String)]
        public var timeout: Duration

        public init(url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(60)) {
            self.url = url
            self.headers = headers
            self.timeout = timeout
        }
    }

    /// A response whose body has not been read yet: iterate `body` to stream it.
    public struct Response: Sendable {
        public var url: String
        public var status: Int
        public var headers: [(String, String)]
        public var body: HTTPClientResponse.Body

        public func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var url: String
        public var status: Int?
        public var message: String
        public var description: String {
            if let status { return "GET \(url) answered \(status): \(message)" }
            return "GET \(url) failed: \(message)"
        }
    }

    private let client: HTTPClient
    private let ownsClient: Bool
    public let userAgent: String

    public init(userAgent: String = "Datenwerk/0.1 (+https://github.com/datenwerk)") {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(15), read: .seconds(60))
        configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
        configuration.decompression = .enabled(limit: .ratio(200))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.ownsClient = true
        self.userAgent = userAgent
    }

    public func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    /// Sends a GET and returns as soon as the head arrives; non-2xx answers throw with a short body excerpt.
    public func get(_ request: Request) async throws -> Response {
        var http = HTTPClientRequest(url: request.url)
        http.method = .GET
        http.headers.add(name: "User-Agent", value: userAgent)
        http.headers.add(name: "Accept-Encoding", value: "gzip, deflate")
        for (name, value) in request.headers { http.headers.replaceOrAdd(name: name, value: value) }
        let shown = Self.redacted(request.url)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(http, timeout: .init(request.timeout))
        } catch let error as HTTPClientError {
            throw Failure(url: shown, status: nil, message: Self.explain(error, timeout: request.timeout))
        } catch {
            throw Failure(url: shown, status: nil, message: String(describing: error))
        }
        let status = Int(response.status.code)
        let headers = response.headers.map { ($0.name, $0.value) }
        guard (200..<300).contains(status) else {
            var excerpt = ""
            if var buffer = try? await response.body.collect(upTo: 4096) {
                excerpt = buffer.readString(length: min(buffer.readableBytes, 300)) ?? ""
            }
            throw Failure(url: shown, status: status, message: excerpt.isEmpty ? response.status.reasonPhrase : excerpt)
        }
        return Response(url: request.url, status: status, headers: headers, body: response.body)
    }

    static func explain(_ error: HTTPClientError, timeout: Duration) -> String {
        switch error {
        case .deadlineExceeded: return "no complete answer within \(timeout)"
        case .connectTimeout: return "connect timeout"
        case .readTimeout: return "read timeout"
        case .remoteConnectionClosed: return "the server closed the connection"
        default: return String(describing: error)
        }
    }

    /// The URL without user info, for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.user != nil || components.password != nil else { return url }
        components.user = nil
        components.password = nil
        return components.string ?? url
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Reads a response body chunk by chunk and checks that it is complete: a body shorter than its
/// `Content-Length` is reported as cut off, never handed on as if it were whole.
public final class BodyReader {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private let expectedLength: Int?
    private let url: String
    public private(set) var bytesRead = 0

    public init(_ response: HTTPFetcher.Response) {
        self.iterator = response.body.makeAsyncIterator()
        // With transfer compression the length counts compressed bytes: only trust it for identity bodies.
        let encoded = response.header("Content-Encoding").map { $0 != "identity" } ?? false
        self.expectedLength = encoded ? nil : response.header("Content-Length").flatMap { Int($0) }
        self.url = HTTPFetcher.redacted(response.url)
    }

    public func next() async throws -> ByteBuffer? {
        let chunk: ByteBuffer?
        do {
            chunk = try await iterator.next()
        } catch {
            throw HTTPFetcher.Failure(url: url, status: nil, message: "body cut off after \(bytesRead) bytes: \(error)")
        }
        if let chunk {
            bytesRead += chunk.readableBytes
        } else if let expectedLength, bytesRead < expectedLength {
            throw HTTPFetcher.Failure(url: url, status: nil, message: "body cut off after \(bytesRead) of \(expectedLength) bytes")
        }
        return chunk
    }
}
