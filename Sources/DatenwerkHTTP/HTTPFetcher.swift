import AsyncHTTPClient
import DatenwerkCore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// The one HTTP client of Datenwerk. Every connector fetches through it: streamed bodies, timeouts,
/// clear errors that name the URL (never its credentials).
package final class HTTPFetcher: Sendable {
    package struct Request: Sendable {
        package var url: String
        package var headers: [(String, String)]
        package var timeout: Duration
        package var retry: RetryPolicy
        /// Send the validators of the last run (`ConditionalRequests`) and accept 304. Only for readers
        /// that treat 304 as "no records" (generic sources, `DocumentRun` connectors).
        package var conditional: Bool
        /// Values that must never appear in a message, a log line or an error (tokens, API keys from
        /// `${env:NAME}`): every text this request produces shows them as `***`.
        package var secrets: [String]

        package init(url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(60), retry: RetryPolicy = .default, conditional: Bool = false,
                    secrets: [String] = []) {
            self.url = url
            self.headers = headers
            self.timeout = timeout
            self.retry = retry
            self.conditional = conditional
            self.secrets = secrets
        }

        /// `text` with every secret of this request replaced by `***`.
        package func masked(_ text: String) -> String { Secrets.mask(text, secrets) }
    }

    /// Retries on connect errors, timeouts, 5xx and 429, with exponential backoff and full jitter;
    /// a `Retry-After` answer (seconds or HTTP date) is honoured up to `maxDelay`.
    package struct RetryPolicy: Sendable {
        package var attempts: Int
        package var baseDelay: Duration
        package var maxDelay: Duration

        package init(attempts: Int = 4, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(60)) {
            self.attempts = max(1, attempts)
            self.baseDelay = baseDelay
            self.maxDelay = maxDelay
        }

        package static let `default` = RetryPolicy()
        package static let none = RetryPolicy(attempts: 1)

        /// Backoff before attempt `attempt + 1` (attempt counts from 1): random in 0…base·2^(attempt−1), capped.
        func delay(after attempt: Int) -> Duration {
            let cap = min(Double(maxDelay.components.seconds), baseDelay.seconds * pow(2, Double(attempt - 1)))
            return .milliseconds(Int64(Double.random(in: 0.5...1.0) * cap * 1000))
        }
    }

    /// A response whose body has not been read yet: iterate `body` to stream it.
    package struct Response: Sendable {
        package var url: String
        package var status: Int
        package var headers: [(String, String)]
        package var body: HTTPClientResponse.Body
        /// The URL as messages show it: without user info, secrets masked.
        package var shownURL: String

        package init(url: String, status: Int, headers: [(String, String)], body: HTTPClientResponse.Body, shownURL: String? = nil) {
            self.url = url
            self.status = status
            self.headers = headers
            self.body = body
            self.shownURL = shownURL ?? HTTPFetcher.redacted(url)
        }

        package func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }
    }

    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var url: String
        package var status: Int?
        package var message: String
        /// From a `Retry-After` header of a 429/503 answer.
        package var retryAfter: Duration?

        package init(url: String, status: Int?, message: String, retryAfter: Duration? = nil) {
            self.url = url
            self.status = status
            self.message = message
            self.retryAfter = retryAfter
        }

        /// Worth another try: no answer at all, a timeout, 5xx, 429 or 408.
        package var isTransient: Bool {
            guard let status else { return true }
            return status >= 500 || status == 429 || status == 408
        }
        package var description: String {
            if let status { return "GET \(url) answered \(status): \(message)" }
            return "GET \(url) failed: \(message)"
        }
    }

    private let client: HTTPClient
    package let userAgent: String
    private let pacer: HostPacer

    /// `readTimeout` is the longest silence allowed while a head or body is being received.
    /// Per host, at most `connectionsPerHost` requests are open at once (the others wait for a connection,
    /// bodies included), and request starts are at least `minimumInterval` apart (a polite rate limit for
    /// small municipal servers; zero: none). `DATENWERK_HTTP_CONNECTIONS_PER_HOST` and
    /// `DATENWERK_HTTP_MIN_INTERVAL_MS` override the defaults.
    package init(userAgent: String = "Datenwerk/0.1 (+https://github.com/datenwerk)", readTimeout: Duration = .seconds(60),
                connectionsPerHost: Int? = nil, minimumInterval: Duration? = nil) {
        let environment = ProcessInfo.processInfo.environment
        let perHost = connectionsPerHost ?? environment["DATENWERK_HTTP_CONNECTIONS_PER_HOST"].flatMap(Int.init) ?? 4
        let interval = minimumInterval ?? environment["DATENWERK_HTTP_MIN_INTERVAL_MS"].flatMap(Int.init).map { .milliseconds($0) } ?? .zero
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, perHost))
        configuration.httpVersion = .http1Only
        pacer = HostPacer(interval: interval)
        configuration.timeout = .init(connect: .seconds(15), read: TimeAmount(readTimeout))
        configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
        configuration.decompression = .enabled(limit: .ratio(200))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.userAgent = userAgent
    }

    package func shutdown() async throws {
        try await client.shutdown()
    }

    /// Sends a GET and returns as soon as the head arrives, retrying transient failures per `request.retry`;
    /// other non-2xx answers (and the last failure) throw with a short body excerpt.
    package func get(_ request: Request) async throws -> Response {
        try await get(request, retries: nil, conditional: nil)
    }

    /// `get` for one run's `FetchSession`: retries are recorded in `retries`, and with `request.conditional`
    /// the validators of `conditional` are sent and a 304 is accepted.
    package func get(_ request: Request, retries: RetryLog?, conditional: ConditionalRequests?) async throws -> Response {
        var attempt = 1
        while true {
            do {
                return try await getOnce(request, conditional: request.conditional ? conditional : nil)
            } catch let failure as Failure where failure.isTransient && attempt < request.retry.attempts {
                var wait = request.retry.delay(after: attempt)
                if let after = failure.retryAfter { wait = min(after, request.retry.maxDelay) }
                retries?.record("GET \(failure.url): \(failure.message)\(failure.status.map { " (\($0))" } ?? ""); attempt \(attempt + 1) of \(request.retry.attempts) in \(wait.seconds.formatted(.number.precision(.fractionLength(1)))) s")
                try await Task.sleep(for: wait)
                attempt += 1
            }
        }
    }

    private func getOnce(_ request: Request, conditional: ConditionalRequests?) async throws -> Response {
        try await pacer.wait(for: URLComponents(string: request.url)?.host ?? "")
        var http = HTTPClientRequest(url: request.url)
        http.method = .GET
        http.headers.add(name: "User-Agent", value: userAgent)
        http.headers.add(name: "Accept-Encoding", value: "gzip, deflate")
        for (name, value) in request.headers { http.headers.replaceOrAdd(name: name, value: value) }
        // Validators are kept by the URL as shown (secrets masked), so no secret reaches the checkpoint.
        let key = request.masked(request.url)
        if let known = conditional?.known[key] {
            if let etag = known.etag { http.headers.replaceOrAdd(name: "If-None-Match", value: etag) }
            if let modified = known.lastModified { http.headers.replaceOrAdd(name: "If-Modified-Since", value: modified) }
        }
        let shown = request.masked(Self.redacted(request.url))
        let host = request.masked(Self.metricsHost(request.url))
        let started = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await client.execute(http, timeout: .init(request.timeout))
        } catch let error as HTTPClientError {
            Self.record(host: host, status: "error", since: started)
            throw Failure(url: shown, status: nil, message: request.masked(Self.explain(error, timeout: request.timeout)))
        } catch {
            Self.record(host: host, status: "error", since: started)
            throw Failure(url: shown, status: nil, message: request.masked(String(describing: error)))
        }
        let status = Int(response.status.code)
        Self.record(host: host, status: String(status), since: started)
        let headers = response.headers.map { ($0.name, $0.value) }
        if status == 304, conditional != nil {
            // Not modified since the validators we sent: nothing new, and no body to read.
            conditional?.notModified(key)
            return Response(url: request.url, status: status, headers: headers, body: response.body, shownURL: shown)
        }
        if (200..<300).contains(status), let conditional {
            conditional.seen(key, HTTPValidators(etag: response.headers.first(name: "ETag"), lastModified: response.headers.first(name: "Last-Modified")))
        }
        guard (200..<300).contains(status) else {
            var excerpt = ""
            if var buffer = try? await response.body.collect(upTo: 4096) {
                excerpt = buffer.readString(length: min(buffer.readableBytes, 300)) ?? ""
            }
            throw Failure(url: shown, status: status, message: request.masked(excerpt.isEmpty ? response.status.reasonPhrase : excerpt),
                          retryAfter: response.headers.first(name: "Retry-After").flatMap(Self.parseRetryAfter))
        }
        return Response(url: request.url, status: status, headers: headers, body: response.body, shownURL: shown)
    }

    /// Every attempt, in whichever process runs the pipeline (exported by `datenwerk serve` at `/metrics`; see
    /// docs/metrics.md): a counter by host and status (`error`: no answer — connect error, timeout), and the time
    /// to the answer's head by host. Created per request, so they bind to the backend bootstrapped by then.
    static func record(host: String, status: String, since started: ContinuousClock.Instant) {
        Counter(label: "datenwerk_source_http_requests_total", dimensions: [("host", host), ("status", status)]).increment()
        Metrics.Timer(label: "datenwerk_source_http_request_duration_seconds", dimensions: [("host", host)])
            .record(duration: ContinuousClock.now - started)
    }

    /// The `host` label of a request: the URL's host, with `:port` when the URL names one (never user info or path).
    package static func metricsHost(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else { return "unknown" }
        return components.port.map { "\(host):\($0)" } ?? host
    }

    /// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`.
    static func parseRetryAfter(_ value: String) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text) { return .seconds(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSinceNow) * 1000))
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
    package static func redacted(_ url: String) -> String {
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
package final class BodyReader {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    private let expectedLength: Int?
    private let url: String
    package private(set) var bytesRead = 0

    package init(_ response: HTTPFetcher.Response) {
        self.iterator = response.body.makeAsyncIterator()
        // With transfer compression the length counts compressed bytes: only trust it for identity bodies.
        let encoded = response.header("Content-Encoding").map { $0 != "identity" } ?? false
        self.expectedLength = encoded ? nil : response.header("Content-Length").flatMap { Int($0) }
        self.url = response.shownURL
    }

    package func next() async throws -> ByteBuffer? {
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


/// Collects retry events of one run (carried by its `FetchSession`), so run history shows them.
package final class RetryLog: Sendable {
    private let entries = Mutex<[String]>([])

    package init() {}

    package func record(_ entry: String) {
        entries.withLock { if $0.count < 200 { $0.append(entry) } }
    }

    package var all: [String] { entries.withLock { $0 } }
}


/// Spaces request starts to one host at least `interval` apart (first come, first served).
actor HostPacer {
    let interval: Duration
    private var nextStart: [String: ContinuousClock.Instant] = [:]

    init(interval: Duration) { self.interval = interval }

    func wait(for host: String) async throws {
        guard interval > .zero else { return }
        let now = ContinuousClock.now
        let slot = max(now, nextStart[host] ?? now)
        nextStart[host] = slot + interval
        if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
    }
}

/// What a server said about a URL's version (`ETag`, `Last-Modified`), kept in the pipeline's checkpoint.
package struct HTTPValidators: Sendable, Hashable {
    package var etag: String?
    package var lastModified: String?
    package init(etag: String?, lastModified: String?) {
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// Conditional GETs for one run: validators from the last successful run are sent as `If-None-Match` /
/// `If-Modified-Since`; a 304 means "nothing new" (an empty document). The validators seen in this run are
/// stored with its checkpoint, in the same transaction as the data they describe.
package final class ConditionalRequests: Sendable {
    package let known: [String: HTTPValidators]
    private struct Seen {
        var fresh: [String: HTTPValidators] = [:]
        var unchanged: [String] = []
    }
    private let state = Mutex(Seen())

    package init(known: [String: HTTPValidators]) { self.known = known }

    func seen(_ url: String, _ validators: HTTPValidators) {
        guard validators.etag != nil || validators.lastModified != nil else { return }
        state.withLock { $0.fresh[url] = validators }
    }

    func notModified(_ url: String) {
        state.withLock { $0.unchanged.append(url) }
    }

    /// URLs answered 304 in this run.
    package var notModifiedURLs: [String] { state.withLock { $0.unchanged } }

    /// What to remember: the new validators, and the old ones of URLs that were not modified.
    package var remembered: [String: HTTPValidators] {
        state.withLock { seen in
            var all = seen.fresh
            for url in seen.unchanged where all[url] == nil { all[url] = known[url] }
            return all
        }
    }
}
