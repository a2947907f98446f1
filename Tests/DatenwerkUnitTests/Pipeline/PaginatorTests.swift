import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

/// Paginators are values: each is driven here with page results, no server.
@Suite struct PaginatorTests {
    static func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    @Test func jsonLinkFollowsANestedKeyWithADotAndResolvesRelativeLinks() throws {
        var sensorThings = JSONLinkPaginator(path: "@iot.nextLink")
        let page = PageResult(url: "https://frost.example/v1.1/Observations?$top=2",
                              envelope: try Self.json(#"{"@iot.nextLink":"https://frost.example/v1.1/Observations?$top=2&$skip=2","value":[]}"#), records: 2)
        #expect(sensorThings.next(after: page) == "https://frost.example/v1.1/Observations?$top=2&$skip=2")

        var nested = JSONLinkPaginator(path: "$.links.next.href")
        let relative = PageResult(url: "http://api.example/v1/items?page=1", envelope: try Self.json(#"{"links":{"next":{"href":"items?page=2"}}}"#), records: 10)
        #expect(nested.next(after: relative) == "http://api.example/v1/items?page=2")
    }

    @Test func jsonLinkPicksTheNextEntryOfALinksArray() throws {
        let envelope = try Self.json(#"{"links":[{"rel":"self","href":"/a?p=1"},{"rel":"next","href":"/a?p=2"},{"rel":"last","href":"/a?p=9"}]}"#)
        for path in ["links[rel=next].href", "$.links[rel=\"next\"].href", "links[?(@.rel=='next')].href"] {
            var paginator = JSONLinkPaginator(path: path)
            #expect(paginator.next(after: PageResult(url: "http://h/a?p=1", envelope: envelope, records: 1)) == "http://h/a?p=2", "\(path)")
        }
        var index = JSONLinkPaginator(path: "links[2].href")
        #expect(index.next(after: PageResult(url: "http://h/a", envelope: envelope, records: 1)) == "http://h/a?p=9")
    }

    @Test func jsonLinkEndsAtAMissingNullOrEmptyLink() throws {
        for body in [#"{"value":[]}"#, #"{"@iot.nextLink":null}"#, #"{"@iot.nextLink":""}"#] {
            var paginator = JSONLinkPaginator(path: "@iot.nextLink")
            #expect(paginator.next(after: PageResult(url: "http://h/x", envelope: try Self.json(body), records: 5)) == nil)
        }
    }

    @Test func linkHeaderTargets() {
        #expect(HeaderLinkPaginator.target(rel: "next", in: #"</feed?p=2>; rel="next""#) == "/feed?p=2")
        #expect(HeaderLinkPaginator.target(rel: "next", in: #"<https://h/a?p=1>; rel="prev", <https://h/a?p=3>; rel=next"#) == "https://h/a?p=3")
        // Commas and semicolons inside the target, several rels, a title with a comma.
        #expect(HeaderLinkPaginator.target(rel: "next", in: #"<https://h/a?b=1,2;c>; title="x, y"; rel="next last""#) == "https://h/a?b=1,2;c")
        #expect(HeaderLinkPaginator.target(rel: "next", in: #"<https://h/a?p=9>; rel="last""#) == nil)
        var paginator = HeaderLinkPaginator()
        #expect(paginator.next(after: PageResult(url: "http://h/feed", headers: [("link", "</feed?p=2>; rel=\"next\"")], records: 2)) == "http://h/feed?p=2")
        #expect(paginator.next(after: PageResult(url: "http://h/feed?p=2", headers: [], records: 2)) == nil)
    }

    @Test func offsetPagesUntilAShortPage() {
        var paginator = OffsetPaginator(limit: 10)
        let first = paginator.firstPage("http://h/items?filter=a%20b")
        #expect(first == "http://h/items?filter=a%20b&offset=0&limit=10")
        let second = paginator.next(after: PageResult(url: first, records: 10))
        #expect(second == "http://h/items?filter=a%20b&offset=10&limit=10")
        #expect(paginator.next(after: PageResult(url: second!, records: 10)) == "http://h/items?filter=a%20b&offset=20&limit=10")
        #expect(paginator.next(after: PageResult(url: "", records: 3)) == nil)
    }

    @Test func offsetStopsAtAStatedTotalInAHeaderOrTheBody() throws {
        var byHeader = OffsetPaginator(limit: 2, totalHeader: "Fiware-Total-Count", limitFirst: true)
        let first = byHeader.firstPage("http://broker/v2/entities?type=AirQualityObserved")
        #expect(first == "http://broker/v2/entities?type=AirQualityObserved&limit=2&offset=0")
        #expect(byHeader.next(after: PageResult(url: first, headers: [("Fiware-Total-Count", "4")], records: 2)) != nil)
        #expect(byHeader.next(after: PageResult(url: first, headers: [("Fiware-Total-Count", "4")], records: 2)) == nil)

        var byBody = OffsetPaginator(offsetParam: "start", limitParam: "rows", limit: 5, totalPath: "meta.total")
        #expect(byBody.next(after: PageResult(url: "http://h/x?start=0&rows=5", envelope: try Self.json(#"{"meta":{"total":5}}"#), records: 5)) == nil)
    }

    @Test func pageNumbersFromStartUntilAShortPageOrTheStatedPageCount() throws {
        var paginator = PageNumberPaginator(pageParam: "page", sizeParam: "size", start: 1, size: 10)
        let first = paginator.firstPage("http://h/items")
        #expect(first == "http://h/items?page=1&size=10")
        #expect(paginator.next(after: PageResult(url: first, records: 10)) == "http://h/items?page=2&size=10")
        #expect(paginator.next(after: PageResult(url: first, records: 0)) == nil)

        var counted = PageNumberPaginator(start: 0, size: 2, totalPagesPath: "totalPages")
        let pages = try Self.json(#"{"totalPages":2}"#)
        #expect(counted.firstPage("http://h/i") == "http://h/i?page=0")
        #expect(counted.next(after: PageResult(url: "http://h/i?page=0", envelope: pages, records: 2)) == "http://h/i?page=1")
        #expect(counted.next(after: PageResult(url: "http://h/i?page=1", envelope: pages, records: 2)) == nil)
    }

    @Test func pageLimitStopsAfterMaxPages() {
        var paginator = PageLimit(OffsetPaginator(limit: 1), maxPages: 2)
        #expect(paginator.next(after: PageResult(url: "http://h/?offset=0&limit=1", records: 1)) != nil)
        #expect(paginator.next(after: PageResult(url: "http://h/?offset=1&limit=1", records: 1)) == nil)
        var single = SinglePage()
        #expect(single.next(after: PageResult(url: "http://h/", records: 100)) == nil)
    }

    @Test func nextLinkUsesTheBodyPathOrElseTheHeader() throws {
        var body = NextLinkPaginator(path: "links.next")
        #expect(body.next(after: PageResult(url: "http://h/p1", headers: [("Link", "</h>; rel=next")], envelope: try Self.json(#"{"links":{"next":"/p2"}}"#), records: 1)) == "http://h/p2")
        var header = NextLinkPaginator(path: nil)
        #expect(header.next(after: PageResult(url: "http://h/p1", headers: [("Link", "</p3>; rel=next")], envelope: try Self.json(#"{"links":{"next":"/p2"}}"#), records: 1)) == "http://h/p3")
    }

    @Test func jsonPathSteps() throws {
        let doc = try Self.json(#"{"a":{"b":[{"c":1},{"c":2}]},"x.y":"whole"}"#)
        #expect(JSONPathLookup.value("a.b.1.c", in: doc) == .number(2))
        #expect(JSONPathLookup.value("$.a.b[0].c", in: doc) == .number(1))
        #expect(JSONPathLookup.value("x.y", in: doc) == .string("whole"))
        #expect(JSONPathLookup.value("$", in: doc) == doc)
        #expect(JSONPathLookup.value("a.missing", in: doc) == nil)
        #expect(JSONPathLookup.value("a.b[c=2].c", in: doc) == .number(2))
    }
}
