import DatenwerkCore
@testable import DatenwerkConnectors
import DatenwerkHTTP
import DatenwerkPipeline
import DatenwerkTesting
import Testing

/// A server whose next links never repeat and never end must not keep a run going forever.
@Suite struct PagedDocumentRunTests {
    /// Counts records; the next page is whatever `next` in the envelope says.
    struct EndlessMapping: PagedMapping {
        var tally = ValueTally()
        mutating func map(_ record: Record, context: Int, into items: inout [StagedItem], follow: inout [PageRequest<Int>]) -> [RecordError] { [] }
        mutating func nextPage(after request: PageRequest<Int>, envelope: JSONValue, records: Int, headers: [(String, String)]) throws -> PageRequest<Int>? {
            guard case .string(let next) = envelope["next"] ?? .null else { return nil }
            return PageRequest(location: next, recordPath: "$.value", context: request.context + 1)
        }
    }

    @Test func endlessDistinctNextLinksStopAtTheDocumentCap() async throws {
        let server = try await LoopbackHTTPServer.start { request in
            let page = Int(request.query["page"] ?? "0") ?? 0
            return .text(#"{"value":[{"n":\#(page)}],"next":"http://\#(request.headers.first { $0.0.lowercased() == "host" }?.1 ?? "")/p?page=\#(page + 1)"}"#,
                         contentType: "application/json")
        }
        defer { Task { try await server.stop() } }
        var run = PagedDocumentRun([PageRequest(location: server.baseURL + "/p?page=0", recordPath: "$.value", context: 0)],
                                   session: FetchSession(fetcher: testFetcher), mapping: EndlessMapping(), maxDocuments: 5)
        var records = 0
        let error = await #expect(throws: ExtractError.self) {
            while let batch = try await run.next() { records += batch.recordsRead }
        }
        #expect(records == 5)
        #expect(server.requests.count == 5)
        #expect(error.map { "\($0)" }?.contains("more than 5 documents in one run; the server's next links do not end") == true)
    }
}
