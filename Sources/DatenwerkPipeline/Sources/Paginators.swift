import DatenwerkCore
import Foundation

/// What a paginator learns from a page once it has been read whole.
package struct PageResult: Sendable {
    /// The URL the page was asked for (relative next links resolve against it).
    package var url: String
    /// The response headers (`Link`, `Fiware-Total-Count`, …); empty for files.
    package var headers: [(String, String)]
    /// The JSON document around the records (`.null` for CSV, NDJSON and XML).
    package var envelope: JSONValue
    /// Records decoded from the page (rejected ones included).
    package var records: Int

    package init(url: String, headers: [(String, String)] = [], envelope: JSONValue = .null, records: Int) {
        self.url = url
        self.headers = headers
        self.envelope = envelope
        self.records = records
    }

    /// A response header, case-insensitively.
    package func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// How a source finds its pages (after dlt's `rest_client` paginators): the URL of the first page, and after
/// each page the URL of the next one or nil at the end. Paginators are small values with no I/O, so their
/// logic is tested without a server; `DocumentReader` reads the pages they name.
package protocol Paginator: Sendable {
    /// The first page's URL for the configured `url`.
    func firstPage(_ url: String) -> String
    /// The next page's URL after `page`, or nil when there is none.
    mutating func next(after page: PageResult) -> String?
}

extension Paginator {
    package func firstPage(_ url: String) -> String { url }
}

/// One document, no further pages.
package struct SinglePage: Paginator {
    package init() {}
    package mutating func next(after page: PageResult) -> String? { nil }
}

/// A next link inside the JSON body: `@iot.nextLink` (SensorThings), `links.next`, `$.links.next.href`,
/// `links[rel=next].href` (an array of link objects). A missing, null or empty link ends the paging;
/// relative links resolve against the page they came from.
package struct JSONLinkPaginator: Paginator {
    package var path: String

    package init(path: String) { self.path = path }

    package mutating func next(after page: PageResult) -> String? {
        guard let link = JSONPathLookup.value(path, in: page.envelope)?.stringValue, !link.isEmpty else { return nil }
        return resolveLink(link, against: page.url)
    }
}

/// The `Link` response header (RFC 8288): the target whose `rel` contains `next` (or `rel`).
package struct HeaderLinkPaginator: Paginator {
    package var rel: String

    package init(rel: String = "next") { self.rel = rel }

    package mutating func next(after page: PageResult) -> String? {
        guard let header = page.header("Link"), let link = Self.target(rel: rel, in: header), !link.isEmpty else { return nil }
        return resolveLink(link, against: page.url)
    }

    /// The target of the first link in `header` whose `rel` names `rel` (`<a>; rel="next", <b>; rel="last"`).
    /// Commas and semicolons inside `<…>` belong to the URL.
    package static func target(rel: String, in header: String) -> String? {
        var rest = Substring(header)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { return nil }
            let target = String(rest[rest.index(after: open)..<close])
            var params = rest[rest.index(after: close)...]
            // The parameters end at the next link (a comma outside quotes).
            var inQuotes = false
            var end = params.endIndex
            for index in params.indices {
                let c = params[index]
                if c == "\"" { inQuotes.toggle() } else if c == ",", !inQuotes { end = index; break }
            }
            rest = end < params.endIndex ? params[params.index(after: end)...] : ""
            params = params[..<end]
            for param in params.split(separator: ";") {
                let pair = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2, pair[0].lowercased() == "rel" else { continue }
                let values = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased().split(separator: " ")
                if values.contains(Substring(rel.lowercased())) { return target }
            }
        }
        return nil
    }
}

/// `?offset=N&limit=M`: the offset grows by `limit` after each page; paging stops at a short (or empty) page,
/// or once the offset reaches a total the server states (a JSON path in the body or a header such as
/// `Fiware-Total-Count`).
package struct OffsetPaginator: Paginator {
    package var offsetParam: String
    package var limitParam: String
    package var limit: Int
    package private(set) var offset: Int
    package var totalPath: String?
    package var totalHeader: String?
    /// Write the limit before the offset in the query (some servers' caches care; NGSI brokers do not).
    package var limitFirst: Bool
    private var base: String?

    package init(offsetParam: String = "offset", limitParam: String = "limit", limit: Int, start: Int = 0,
                totalPath: String? = nil, totalHeader: String? = nil, limitFirst: Bool = false) {
        self.offsetParam = offsetParam
        self.limitParam = limitParam
        self.limit = max(1, limit)
        self.offset = start
        self.totalPath = totalPath
        self.totalHeader = totalHeader
        self.limitFirst = limitFirst
    }

    package func firstPage(_ url: String) -> String { pageURL(url, offset: offset) }

    package mutating func next(after page: PageResult) -> String? {
        if base == nil { base = page.url }
        guard page.records >= limit else { return nil }
        offset += limit
        if let total = statedTotal(page), offset >= total { return nil }
        return pageURL(base!, offset: offset)
    }

    private func statedTotal(_ page: PageResult) -> Int? {
        if let totalHeader, let text = page.header(totalHeader), let total = Int(text.trimmingCharacters(in: .whitespaces)) { return total }
        if let totalPath, let total = JSONPathLookup.value(totalPath, in: page.envelope)?.numberValue { return Int(total) }
        return nil
    }

    private func pageURL(_ url: String, offset: Int) -> String {
        let pairs = [(offsetParam, String(offset)), (limitParam, String(limit))]
        return settingQuery(url, limitFirst ? pairs.reversed() : pairs)
    }
}

/// `?page=N&size=M` starting at `start`: paging stops at a short (or empty) page, or after a total page count the
/// server states (a JSON path in the body).
package struct PageNumberPaginator: Paginator {
    package var pageParam: String
    package var sizeParam: String?
    package var size: Int
    package private(set) var page: Int
    package var totalPagesPath: String?
    private let start: Int
    private var base: String?

    package init(pageParam: String = "page", sizeParam: String? = nil, start: Int = 1, size: Int, totalPagesPath: String? = nil) {
        self.pageParam = pageParam
        self.sizeParam = sizeParam
        self.start = start
        self.page = start
        self.size = max(1, size)
        self.totalPagesPath = totalPagesPath
    }

    package func firstPage(_ url: String) -> String { pageURL(url, page: page) }

    package mutating func next(after result: PageResult) -> String? {
        if base == nil { base = result.url }
        guard result.records >= size else { return nil }
        page += 1
        if let totalPagesPath, let pages = JSONPathLookup.value(totalPagesPath, in: result.envelope)?.numberValue,
           page - start >= Int(pages) { return nil }
        return pageURL(base!, page: page)
    }

    private func pageURL(_ url: String, page: Int) -> String {
        var pairs = [(pageParam, String(page))]
        if let sizeParam { pairs.append((sizeParam, String(size))) }
        return settingQuery(url, pairs)
    }
}

/// At most `maxPages` pages of another paginator (`max_pages` in a pipeline).
package struct PageLimit<Base: Paginator>: Paginator {
    package var base: Base
    package let maxPages: Int
    package private(set) var pagesRead = 0

    package init(_ base: Base, maxPages: Int) {
        self.base = base
        self.maxPages = maxPages
    }

    package func firstPage(_ url: String) -> String { base.firstPage(url) }

    package mutating func next(after page: PageResult) -> String? {
        pagesRead += 1
        guard pagesRead < maxPages else { return nil }
        return base.next(after: page)
    }
}

/// Either a next link in the body (when `path` is set) or the `Link` header.
package struct NextLinkPaginator: Paginator {
    private var body: JSONLinkPaginator?
    private var header = HeaderLinkPaginator()

    package init(path: String?) { body = path.map(JSONLinkPaginator.init(path:)) }

    package mutating func next(after page: PageResult) -> String? {
        if body != nil { return body!.next(after: page) }
        return header.next(after: page)
    }
}

/// Values at a path in a JSON document: `a.b`, `$.a.b`, `items.0` / `items[0]`, a whole key with dots
/// (`@iot.nextLink`, matched first), and `links[rel=next]` — the first element of an array whose member `rel`
/// is `next` (quotes around the value are optional; a multi-valued `rel` like `"next last"` matches too).
package enum JSONPathLookup {
    package static func value(_ path: String, in root: JSONValue) -> JSONValue? {
        var p = Substring(path)
        if p == "$" { return root }
        if p.hasPrefix("$.") { p = p.dropFirst(2) } else if p.hasPrefix("$[") { p = p.dropFirst(1) }
        if let direct = root[String(p)] { return direct }
        var current = root
        for step in steps(p) {
            switch step {
            case .key(let key):
                guard let next = current[key] else { return nil }
                current = next
            case .index(let index):
                guard let next = current[index] else { return nil }
                current = next
            case .filter(let key, let value):
                guard case .array(let items) = current else { return nil }
                let wanted = value.lowercased()
                guard let hit = items.first(where: { item in
                    guard let member = item[key] else { return false }
                    let text = member.stringValue ?? member.text
                    return text.lowercased() == wanted || text.lowercased().split(separator: " ").contains(Substring(wanted))
                }) else { return nil }
                current = hit
            }
        }
        return current
    }

    enum Step: Equatable { case key(String), index(Int), filter(key: String, value: String) }

    static func steps(_ path: Substring) -> [Step] {
        var steps: [Step] = []
        var name = ""
        func flush() {
            guard !name.isEmpty else { return }
            if let index = Int(name) { steps.append(.index(index)) } else { steps.append(.key(name)) }
            name = ""
        }
        var i = path.startIndex
        while i < path.endIndex {
            let c = path[i]
            if c == "." {
                flush()
            } else if c == "[", let close = path[i...].firstIndex(of: "]") {
                flush()
                var inner = String(path[path.index(after: i)..<close])
                if inner.hasPrefix("?(@.") && inner.hasSuffix(")") { inner = String(inner.dropFirst(4).dropLast()) }
                let quotes = CharacterSet(charactersIn: "\"'")
                if let eq = inner.range(of: "==") ?? inner.range(of: "=") {
                    steps.append(.filter(key: inner[..<eq.lowerBound].trimmingCharacters(in: .whitespaces),
                                         value: inner[eq.upperBound...].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: quotes)))
                } else if let index = Int(inner) {
                    steps.append(.index(index))
                } else {
                    steps.append(.key(inner.trimmingCharacters(in: quotes)))
                }
                i = close
            } else {
                name.append(c)
            }
            i = path.index(after: i)
        }
        flush()
        return steps
    }
}

/// A link as found, resolved against the URL of the page it came from.
package func resolveLink(_ link: String, against base: String) -> String {
    if link.hasPrefix("http://") || link.hasPrefix("https://") { return link }
    if let base = URL(string: base), let resolved = URL(string: link, relativeTo: base) { return resolved.absoluteString }
    return link
}

/// `url` with the query parameters `pairs` set (replaced where present, appended in order; others kept as they were,
/// encoded characters such as `$` and `%20` intact).
package func settingQuery(_ url: String, _ pairs: [(String, String)]) -> String {
    guard var components = URLComponents(string: url) else { return url }
    let names = Set(pairs.map(\.0))
    var items = (components.queryItems ?? []).filter { !names.contains($0.name) }
    items += pairs.map { URLQueryItem(name: $0.0, value: $0.1) }
    components.queryItems = items.isEmpty ? nil : items
    return components.string ?? url
}
