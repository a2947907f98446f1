import DatenwerkCore

extension OGCFeatures {
    /// The OpenAPI 3.0 definition of `/ogcapi` (`/req/oas30/oas-definition-1`): every path, parameter and media type
    /// the server answers, the collection ids as an enum. Served as `application/vnd.oai.openapi+json;version=3.0`.
    package static func openAPIDocument(base: String, catalog: CatalogMetadata, collectionIDs: [String]) -> JSONValue {
        func o(_ members: (String, JSONValue)...) -> JSONValue { .object(members.map { .init($0.0, $0.1) }) }
        func s(_ text: String) -> JSONValue { .string(text) }
        func ref(_ name: String, _ kind: String = "parameters") -> JSONValue { o(("$ref", s("#/components/\(kind)/\(name)"))) }
        func content(_ types: [String], schema: JSONValue) -> JSONValue {
            .object(types.map { .init($0, o(("schema", schema))) })
        }
        let anyObject = o(("type", s("object")))
        let html = o(("type", s("string")))
        func ok(_ description: String, _ jsonType: String) -> JSONValue {
            o(("description", s(description)), ("content", .object([.init(jsonType, o(("schema", anyObject))), .init(Self.html, o(("schema", html)))])))
        }
        let problem = o(("description", s("a problem (RFC 9457), naming the parameter")),
                        ("content", content(["application/problem+json"], schema: anyObject)))
        let notFound = o(("description", s("no such collection or feature")), ("content", content(["application/problem+json"], schema: anyObject)))
        func get(_ summary: String, _ operationID: String, parameters: [JSONValue], responses: [(String, JSONValue)]) -> JSONValue {
            let answers = JSONValue.object(responses.map { JSONValue.Member($0.0, $0.1) })
            let operation = o(("summary", s(summary)), ("operationId", s(operationID)), ("parameters", .array(parameters)), ("responses", answers))
            return o(("get", operation))
        }
        let paths: [JSONValue.Member] = [
            .init("/", get("Landing page", "getLandingPage", parameters: [ref("f")], responses: [("200", ok("the landing page", json)), ("400", problem)])),
            .init("/api", get("This API definition", "getAPI", parameters: [ref("f")], responses: [
                ("200", o(("description", s("the OpenAPI 3.0 definition")), ("content", .object([.init(openAPI, o(("schema", anyObject))), .init(Self.html, o(("schema", html)))])))),
                ("400", problem),
            ])),
            .init("/conformance", get("Conformance classes", "getConformance", parameters: [ref("f")],
                                      responses: [("200", ok("the conformance classes", json)), ("400", problem)])),
            .init("/collections", get("The collections", "getCollections", parameters: [ref("f")],
                                      responses: [("200", ok("the collections", json)), ("400", problem)])),
            .init("/collections/{collectionId}", get("A collection", "describeCollection", parameters: [ref("collectionId"), ref("f")],
                                                     responses: [("200", ok("the collection", json)), ("400", problem), ("404", notFound)])),
            .init("/collections/{collectionId}/items", get("The features of a collection", "getFeatures",
                parameters: [ref("collectionId"), ref("limit"), ref("bbox"), ref("datetime"), ref("cursor"), ref("f")],
                responses: [("200", ok("a page of features (GeoJSON FeatureCollection)", geoJSON)), ("400", problem), ("404", notFound)])),
            .init("/collections/{collectionId}/items/{featureId}", get("One feature", "getFeature",
                parameters: [ref("collectionId"), ref("featureId"), ref("f")],
                responses: [("200", ok("the feature (GeoJSON Feature)", geoJSON)), ("400", problem), ("404", notFound)])),
        ]
        func parameter(_ name: String, _ location: String, _ description: String, required: Bool = false, schema: JSONValue,
                       style: String? = nil, explode: Bool? = nil) -> JSONValue {
            var members: [JSONValue.Member] = [.init("name", s(name)), .init("in", s(location)), .init("description", s(description)),
                                               .init("required", .bool(required)), .init("schema", schema)]
            if let style { members.append(.init("style", s(style))) }
            if let explode { members.append(.init("explode", .bool(explode))) }
            return .object(members)
        }
        let parameters: [JSONValue.Member] = [
            .init("collectionId", parameter("collectionId", "path", "a collection: <dataset>-stations or <dataset>-observations", required: true,
                                            schema: o(("type", s("string")), ("enum", .array(collectionIDs.map(s)))))),
            .init("featureId", parameter("featureId", "path", "a feature: a station key, or <station row>.<property>.<start µs> for an observation",
                                         required: true, schema: o(("type", s("string"))))),
            .init("limit", parameter("limit", "query", "features per page; a larger number is read as \(FeaturesQuery.maxLimit)",
                                     schema: o(("type", s("integer")), ("minimum", .number(1)), ("maximum", .number(Double(FeaturesQuery.maxLimit))),
                                               ("default", .number(Double(FeaturesQuery.defaultLimit)))), style: "form", explode: false)),
            .init("bbox", parameter("bbox", "query", "minLon,minLat,maxLon,maxLat (CRS84); 6 numbers with heights are accepted, heights ignored; minLon > maxLon crosses the antimeridian",
                                    schema: o(("type", s("array")), ("minItems", .number(4)), ("maxItems", .number(6)), ("items", o(("type", s("number"))))),
                                    style: "form", explode: false)),
            .init("datetime", parameter("datetime", "query", "an RFC 3339 instant or closed interval, '..' for an open end (stations: their first…latest observation; observations: phenomenon_start)",
                                        schema: o(("type", s("string"))), style: "form", explode: false)),
            .init("cursor", parameter("cursor", "query", "where a page starts; only as found in next and prev links",
                                      schema: o(("type", s("string"))), style: "form", explode: false)),
            .init("f", parameter("f", "query", "the encoding (instead of Accept)",
                                 schema: o(("type", s("string")), ("enum", .array([s("json"), s("html")]))), style: "form", explode: false)),
        ]
        return o(
            ("openapi", s("3.0.3")),
            ("info", o(("title", s("\(catalog.title) – OGC API – Features")), ("version", s("1.0.0")),
                       ("description", s("OGC API – Features, Part 1: Core (OGC 17-069r4) over the datasets of \(catalog.title): for each dataset its stations (with the latest values) and its observations.")))),
            ("servers", .array([o(("url", s(base + "/ogcapi")))])),
            ("paths", .object(paths)),
            ("components", o(("parameters", .object(parameters))))
        )
    }
}
