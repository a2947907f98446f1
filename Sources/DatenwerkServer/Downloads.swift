import DatenwerkCore
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /datasets/{id}/observations.{csv,geojson,ndjson}`: the dataset's observations streamed from
/// PostgreSQL into the response, chunk by chunk (gzip-compressed on the way when the client accepts it).
///
/// Before the first byte: parameters are checked (400 naming the parameter), station and property keys
/// are checked against the dataset, the validators `ETag` (dataset version, format, filter, encoding) and
/// `Last-Modified` are set and a matching `If-None-Match` / `If-Modified-Since` gets 304; with `limit`,
/// the page end is looked up so the `Link: <…>; rel="next"` header (and GeoJSON's `links`) can be sent.
struct Downloads {
    let publishing: Publishing
    static let link = HTTPField.Name("Link")!

    func observations(_ request: Request, dataset: DatasetMetadata, format: ObservationFormat) async throws -> Response {
        let store = publishing.store
        let items = request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
        let filter: ObservationFilter
        do {
            filter = try ObservationFilter(query: items)
        } catch {
            return .problem(.badRequest, error.message, parameter: error.parameter)
        }
        let state = try await store.state(pipeline: dataset.pipeline)
        let snapshot = try await store.snapshot(dataset, state: state)
        if let problem = Self.unknownKeys(filter, snapshot: snapshot, dataset: dataset) { return problem }

        let gzip = Conditional.acceptsGzip(request.headers)
        let tag = Conditional.hash("\(dataset.id)\n\(format.rawValue)\n\(filter.canonical)")
        let etag = "\"\(state.version)-\(tag)\(gzip ? "-gzip" : "")\""
        var headers: HTTPFields = [
            .eTag: etag, .vary: "Accept-Encoding", .cacheControl: publishing.cacheControl(dataset),
        ]
        if let modified = state.lastModifiedMicros { headers[.lastModified] = HTTPDate.format(micros: modified) }
        if Conditional.notModified(request.headers, etag: etag, lastModifiedMicros: state.lastModifiedMicros) {
            return Response(status: .notModified, headers: headers)
        }

        let base = publishing.baseURL(request)
        let path = "\(base)/datasets/\(dataset.id)/observations.\(format.fileExtension)"
        let pageEnd = try await store.pageEnd(pipeline: dataset.pipeline, filter: filter)
        let next = pageEnd.map { "\(path)?\(filter.queryString(cursor: $0))" }
        if let next { headers[Self.link] = "<\(next)>; rel=\"next\"" }
        headers[.contentType] = format.contentType
        headers[.contentDisposition] = "inline; filename=\"\(dataset.id)-observations.\(format.fileExtension)\""
        if gzip { headers[.contentEncoding] = "gzip" }

        if request.method == .head { return Response(status: .ok, headers: headers) }
        // The first page is read before the head is sent: a database that cannot be reached is a 503 here.
        let opened = try await store.open(pipeline: dataset.pipeline, filter: filter, through: pageEnd)
        let encoder = ObservationEncoder(format: format, bbox: snapshot.facts.bbox)
        let logger = publishing.logger
        let body = ResponseBody { writer in
            do {
                if gzip {
                    let stream = try GzipStream()
                    try await store.writeObservations(dataset, snapshot: snapshot, filter: filter, through: pageEnd, encoder: encoder, next: next,
                                                      opened: opened) { chunk in
                        if let compressed = try stream.compress(chunk) { try await writer.write(compressed) }
                    }
                    try await writer.write(try stream.finish())
                } else {
                    try await store.writeObservations(dataset, snapshot: snapshot, filter: filter, through: pageEnd, encoder: encoder, next: next,
                                                      opened: opened) { chunk in
                        try await writer.write(chunk)
                    }
                }
            } catch {
                // The status line is gone already: the client sees the connection close before the end.
                logger.notice("download of \(path) broke off: \(describeDatabaseError(error))")
                throw error
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// 400 when a `station` or `property` key is not in the dataset (a typo would otherwise give an empty file).
    static func unknownKeys(_ filter: ObservationFilter, snapshot: DatasetSnapshot, dataset: DatasetMetadata) -> Response? {
        let stations = Set(snapshot.stations.map(\.key))
        if let unknown = filter.stations.first(where: { !stations.contains($0) }) {
            let hint = closestMatch(to: unknown, in: stations).map { "; did you mean '\($0)'?" } ?? ""
            return .problem(.badRequest, "station '\(unknown)' has no observations in dataset '\(dataset.id)'\(hint)", parameter: "station")
        }
        let properties = snapshot.facts.properties.map(\.key)
        if let unknown = filter.properties.first(where: { !properties.contains($0) }) {
            return .problem(.badRequest, "property '\(unknown)' is not observed in dataset '\(dataset.id)'; its properties: \(properties.joined(separator: ", "))",
                            parameter: "property")
        }
        return nil
    }
}
