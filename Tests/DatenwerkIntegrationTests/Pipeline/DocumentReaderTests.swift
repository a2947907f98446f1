import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// The one document reader against a real server on loopback: conditional GET, resume after a cut body
/// (by `Range`, or by reading again and skipping), and secrets that never show.
@Suite struct DocumentReaderTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func next() -> Int { lock.withLock { n += 1; return n } }
    }

    /// 40 NDJSON lines `{"i":0}` … `{"i":39}`.
    static let lines = (0..<40).map { "{\"i\":\($0),\"pad\":\"\(String(repeating: "x", count: 40))\"}\n" }.joined()
    static let body = Array(lines.utf8)
    static let fast = HTTPFetcher.RetryPolicy(attempts: 4, baseDelay: .milliseconds(10))

    static func readAll(_ url: String, session: FetchSession, conditional: Bool = false) async throws -> (ids: [Int], reader: DocumentReader<AnyRecordDecoder>) {
        var reader = DocumentReader(url, session: session, request: session.request(url, retry: fast, conditional: conditional)) {
            AnyRecordDecoder(.ndjson, origin: $0)
        }
        var ids: [Int] = []
        while let records = try await reader.next() {
            ids += records.compactMap { $0.record?["i"]?.numberValue.map { Int($0) } }
        }
        return (ids, reader)
    }

    @Test func aCutBodyIsContinuedWithARangeRequestAndNoRecordTwice() async throws {
        let calls = Counter()
        let cut = Self.body.count / 2 + 7   // mid-record
        let server = try await LoopbackHTTPServer.start { request in
            let n = calls.next()
            let headers = [("ETag", "\"v1\""), ("Accept-Ranges", "bytes"), ("Content-Type", "application/x-ndjson")]
            if n == 1 { return .init(status: 200, headers: headers, body: Self.body, cutAfter: cut) }
            guard let range = request.header("Range"), request.header("If-Range") == "\"v1\"",
                  let start = Int(range.dropFirst("bytes=".count).dropLast()) else { return .text("expected a range request", status: 400) }
            return .init(status: 206, headers: headers + [("Content-Range", "bytes \(start)-\(Self.body.count - 1)/\(Self.body.count)")], body: Array(Self.body[start...]))
        }
        defer { Task { try await server.stop() } }
        let retries = RetryLog()
        let (ids, reader) = try await Self.readAll(server.baseURL + "/data.ndjson", session: FetchSession(fetcher: testFetcher, retries: retries))
        #expect(ids == Array(0..<40))
        #expect(reader.resumes == 1)
        #expect(server.requests.count == 2)
        #expect(server.requests.last?.header("Range") == "bytes=\(cut)-")
        // Only the missing bytes came again.
        #expect(reader.bytesRead == Self.body.count)
        #expect(retries.all.count == 1)
        #expect(retries.all.first?.contains("rest asked for from byte \(cut)") == true)
    }

    @Test func withoutRangesTheDocumentIsReadAgainAndTheRecordsAlreadyEmittedAreSkipped() async throws {
        let calls = Counter()
        let server = try await LoopbackHTTPServer.start { _ in
            // No Accept-Ranges: a server that can only send everything.
            calls.next() == 1 ? .init(status: 200, body: Self.body, cutAfter: Self.body.count * 2 / 3) : .init(status: 200, body: Self.body)
        }
        defer { Task { try await server.stop() } }
        let retries = RetryLog()
        var reader = DocumentReader(server.baseURL + "/d", session: FetchSession(fetcher: testFetcher, retries: retries),
                                    request: FetchSession(fetcher: testFetcher).request(server.baseURL + "/d", retry: Self.fast)) { AnyRecordDecoder(.ndjson, origin: $0) }
        var ids: [Int] = []
        var firstBatchSeen = false
        while let records = try await reader.next() {
            ids += records.compactMap { $0.record?["i"]?.numberValue.map { Int($0) } }
            firstBatchSeen = true
        }
        #expect(firstBatchSeen)
        #expect(ids == Array(0..<40))
        #expect(reader.emitted == 40)
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.header("Range") == nil })
        let entry = try #require(retries.all.first)
        #expect(entry.contains("page fetched again (attempt 2 of 4), skipping"))
        #expect(!entry.contains("skipping 0 records"))
    }

    @Test func aRangeRequestAnsweredWithTheWholeDocumentIsSkippedToo() async throws {
        let calls = Counter()
        let server = try await LoopbackHTTPServer.start { _ in
            let headers = [("ETag", "\"v2\""), ("Accept-Ranges", "bytes")]
            // The second answer ignores the range (If-Range did not match: the document changed in between).
            return calls.next() == 1 ? .init(status: 200, headers: headers, body: Self.body, cutAfter: 500) : .init(status: 200, headers: headers, body: Self.body)
        }
        defer { Task { try await server.stop() } }
        let (ids, reader) = try await Self.readAll(server.baseURL + "/d", session: FetchSession(fetcher: testFetcher, retries: RetryLog()))
        #expect(ids == Array(0..<40))
        #expect(server.requests.count == 2)
        #expect(server.requests.last?.header("Range") == "bytes=500-")
        #expect(reader.bytesRead == 500 + Self.body.count)
    }

    @Test func aBodyCutEveryTimeFailsAfterTheAttemptsNamingTheURL() async throws {
        let server = try await LoopbackHTTPServer.start { _ in .init(status: 200, body: Self.body, cutAfter: 100) }
        defer { Task { try await server.stop() } }
        await #expect(throws: HTTPFetcher.Failure.self) {
            _ = try await Self.readAll(server.baseURL + "/always-cut", session: FetchSession(fetcher: testFetcher, retries: RetryLog()))
        }
        #expect(server.requests.count == 4)
    }

    @Test func notModifiedSinceTheLastRunIsNothingNew() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            if request.header("If-None-Match") == "\"abc\"" { return .init(status: 304, headers: [("ETag", "\"abc\"")]) }
            return .init(status: 200, headers: [("ETag", "\"abc\""), ("Last-Modified", "Tue, 01 Oct 2024 10:00:00 GMT")], body: Self.body)
        }
        defer { Task { try await server.stop() } }
        let url = server.baseURL + "/feed.ndjson"
        let first = ConditionalRequests(known: [:])
        let (ids, reader) = try await Self.readAll(url, session: FetchSession(fetcher: testFetcher, conditional: first), conditional: true)
        #expect(ids.count == 40)
        #expect(!reader.notModified)
        #expect(first.remembered[url] == HTTPValidators(etag: "\"abc\"", lastModified: "Tue, 01 Oct 2024 10:00:00 GMT"))

        let second = ConditionalRequests(known: first.remembered)
        let (again, unchanged) = try await Self.readAll(url, session: FetchSession(fetcher: testFetcher, conditional: second), conditional: true)
        #expect(again.isEmpty)
        #expect(unchanged.notModified)
        #expect(second.notModifiedURLs == [url])
        #expect(second.remembered[url]?.etag == "\"abc\"")
        #expect(server.requests.last?.header("If-None-Match") == "\"abc\"")
        // Without `conditional` the validators are not sent.
        _ = try await Self.readAll(url, session: FetchSession(fetcher: testFetcher, conditional: second))
        #expect(server.requests.last?.header("If-None-Match") == nil)
    }

    @Test func aLocalFileIsReadThroughTheSameReader() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("datenwerk-reader-\(UUID().uuidString).ndjson").path
        try Data(Self.body).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (ids, reader) = try await Self.readAll(path, session: FetchSession(fetcher: testFetcher))
        #expect(ids == Array(0..<40))
        #expect(reader.bytesRead == Self.body.count)
    }

    // MARK: Secrets

    static let secret = "tok-9f8e7d6c5b4a"

    @Test func aSecretFromTheEnvironmentIsSentButNeverShown() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            // A careless server that echoes what it was sent, in an error and in retried answers.
            let echo = "denied for \(request.header("Authorization") ?? "nobody") at \(request.uri)"
            return request.path == "/flaky" ? .text(echo, status: 503) : .text(echo, status: 401)
        }
        defer { Task { try await server.stop() } }
        let retries = RetryLog()
        let session = try FetchSession(fetcher: testFetcher, retries: retries)
            .with(RequestOptions(headers: [("Authorization", "Bearer ${env:DW_TEST_TOKEN}")], timeout: .seconds(5)), environment: ["DW_TEST_TOKEN": Self.secret])
        #expect(session.secrets == [Self.secret])
        for path in ["/denied?key=\(Self.secret)", "/flaky"] {
            var reader = DocumentReader(server.baseURL + path, session: session, request: session.request(server.baseURL + path, retry: Self.fast)) {
                AnyRecordDecoder(.ndjson, origin: $0)
            }
            #expect(!reader.origin.contains(Self.secret))
            do {
                _ = try await reader.next()
                Issue.record("expected a failure")
            } catch {
                let text = "\(error)"
                #expect(!text.contains(Self.secret), "\(text)")
                #expect(text.contains("Bearer ***"), "\(text)")
            }
        }
        #expect(server.requests.allSatisfy { $0.header("Authorization") == "Bearer \(Self.secret)" })
        #expect(!retries.all.isEmpty)
        #expect(retries.all.allSatisfy { !$0.contains(Self.secret) })
    }

    @Test func aMissingVariableNamesItAndTheHeader() throws {
        let options = RequestOptions(headers: [("X-Api-Key", "${env:DW_NOT_SET_ANYWHERE}")])
        #expect(throws: RequestOptions.MissingVariable(name: "DW_NOT_SET_ANYWHERE", usedIn: "request header X-Api-Key")) {
            _ = try options.resolve([:])
        }
        #expect(RequestOptions.variables(in: "a ${env:ONE} b ${env:TWO}") == ["ONE", "TWO"])
        #expect(Secrets.mask("key=a%2Fb and a/b", ["a/b"]) == "key=*** and ***")
    }
}
