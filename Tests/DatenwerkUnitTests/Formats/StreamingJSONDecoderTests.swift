import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

@Suite("StreamingJSONDecoder")
struct StreamingJSONDecoderTests {
    typealias S = FormatsTestSupport

    private func decoder(_ path: String, maxRecordBytes: Int = 8 << 20, origin: String = "page-2.json") -> StreamingJSONDecoder {
        var options = JSONDecoderOptions()
        options.recordPath = path
        options.maxRecordBytes = maxRecordBytes
        return StreamingJSONDecoder(options: options, origin: origin)
    }

    @Test("splitting the input at every byte gives the same records and envelope as one chunk")
    func chunkingAtEveryBoundary() throws {
        let text = #"""
            {"total": 2, "meta": {"q": "a\"b]}", "list": [1, {"x": null}]},
             "items": [ {"name": "M\u00fcnchen \ud83d\ude00", "v": -1.5e2, "tags": ["a\\", "{["]},
                        {"name": "Köln", "v": 0, "nested": {"deep": [[], {}]}} ],
             "next": "https://example.org/items?page=3", "ok": true}
            """#
        let bytes = Array(text.utf8)
        var oneShot = decoder("$.items")
        let expected = try S.decode(&oneShot, bytes).map(S.render)
        let expectedEnvelope = oneShot.envelope
        #expect(expected == [
            #"record line=- n=1 path=$.items[0] raw="{\"name\": \"M\\u00fcnchen \\ud83d\\ude00\", \"v\": -1.5e2, \"tags\": [\"a\\\\\", \"{[\"]}" {"name":"München 😀","v":-150,"tags":["a\\","{["]}"#,
            #"record line=- n=2 path=$.items[1] raw="{\"name\": \"Köln\", \"v\": 0, \"nested\": {\"deep\": [[], {}]}}" {"name":"Köln","v":0,"nested":{"deep":[[],{}]}}"#,
        ])
        #expect(expectedEnvelope.serialized == #"{"total":2,"meta":{"q":"a\"b]}","list":[1,{"x":null}]},"next":"https://example.org/items?page=3","ok":true}"#)
        for cut in 0...bytes.count {
            var split = decoder("$.items")
            #expect(try S.decode(&split, bytes, cuts: [cut]).map(S.render) == expected, "split at \(cut)")
            #expect(split.envelope == expectedEnvelope, "split at \(cut)")
        }
        var byteWise = decoder("$.items")
        #expect(try S.decode(&byteWise, bytes, cuts: Array(1..<bytes.count)).map(S.render) == expected)
        #expect(byteWise.envelope == expectedEnvelope)
    }

    @Test("records at $.items; the envelope keeps next and links for paging")
    func envelopeForPaging() throws {
        var d = decoder("$.items")
        let text = #"{"items": [{"id": 1}, {"id": 2}, {"id": 3}], "links": [{"rel": "next", "href": "/p/3"}], "next": "/p/3"}"#
        let records = S.records(try S.decode(&d, Array(text.utf8)))
        #expect(records.map { $0["id"] } == [.number(1), .number(2), .number(3)])
        #expect(records.map(\.location.path) == ["$.items[0]", "$.items[1]", "$.items[2]"])
        #expect(records.map(\.location.record) == [1, 2, 3])
        #expect(records[1].location.origin == "page-2.json")
        #expect(d.envelope["next"] == .string("/p/3"))
        #expect(d.envelope["links"]?[0]?["href"] == .string("/p/3"))
        #expect(d.envelope["items"] == nil)
    }

    @Test("SensorThings: records at $.value, @iot.nextLink in the envelope")
    func sensorThings() throws {
        var d = decoder("$.value")
        let text = #"{"@iot.count": 2, "value": [{"@iot.id": 7, "result": 21.5, "phenomenonTime": "2024-05-01T10:00:00Z"}], "@iot.nextLink": "https://sta.example/v1.1/Observations?$skip=100"}"#
        let records = S.records(try S.decode(&d, Array(text.utf8)))
        #expect(records.count == 1)
        #expect(records[0]["result"] == .number(21.5))
        #expect(records[0]["@iot.id"] == .number(7))
        #expect(d.envelope["@iot.nextLink"] == .string("https://sta.example/v1.1/Observations?$skip=100"))
        #expect(d.envelope["@iot.count"] == .number(2))
    }

    @Test("a top-level array with path $; raw is the exact element text")
    func topLevelArray() throws {
        var d = decoder("$")
        let text = "[ {\"a\": 1 ,\"b\":\"x\"},\n  \"plain\", 3.5, null ]"
        let items = try S.decode(&d, Array(text.utf8))
        #expect(items.map(S.render) == [
            #"record line=- n=1 path=$[0] raw="{\"a\": 1 ,\"b\":\"x\"}" {"a":1,"b":"x"}"#,
            #"record line=- n=2 path=$[1] raw="\"plain\"" {"value":"plain"}"#,
            #"record line=- n=3 path=$[2] raw="3.5" {"value":3.5}"#,
            #"record line=- n=4 path=$[3] raw="null" {"value":null}"#,
        ])
        #expect(d.envelope == .object([]))
    }

    @Test("a single object with path $ is one record")
    func singleObject() throws {
        var d = decoder("$")
        let items = try S.decode(&d, Array(#"{"station": "A", "value": 4}"#.utf8), cuts: [5])
        #expect(items.map(S.render) == [#"record line=- n=1 path=$ raw="{\"station\": \"A\", \"value\": 4}" {"station":"A","value":4}"#])
    }

    @Test("nested path $.data.records keeps the rest of data in the envelope; GeoJSON features")
    func nestedPath() throws {
        var d = decoder("$.data.records")
        let text = #"{"data": {"count": 1, "records": [{"k": "v"}], "page": 1}, "status": "ok"}"#
        let records = S.records(try S.decode(&d, Array(text.utf8)))
        #expect(records.map { $0["k"] } == [.string("v")])
        #expect(records[0].location.path == "$.data.records[0]")
        #expect(d.envelope.serialized == #"{"data":{"count":1,"page":1},"status":"ok"}"#)

        var geo = decoder("$.features")
        let geojson = #"{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [6.95, 50.94]}, "properties": {"name": "Dom"}}]}"#
        let features = S.records(try S.decode(&geo, Array(geojson.utf8)))
        #expect(features[0]["geometry.coordinates.1"] == .number(50.94))
        #expect(features[0]["properties.name"] == .string("Dom"))
        #expect(geo.envelope == .object([.init("type", .string("FeatureCollection"))]))

        var star = decoder("$.features[*]")
        #expect(S.records(try S.decode(&star, Array(geojson.utf8))).map(\.location.path) == ["$.features[0]"])
    }

    @Test("an absent record path yields no records and no error; null counts as absent")
    func absentPath() throws {
        var d = decoder("$.items")
        #expect(try S.decode(&d, Array(#"{"error": null, "total": 0}"#.utf8)).isEmpty)
        #expect(d.envelope["total"] == .number(0))
        var n = decoder("$.items")
        #expect(try S.decode(&n, Array(#"{"items": null}"#.utf8)).isEmpty)
        #expect(n.envelope["items"] == .null)
    }

    @Test("a record path that holds a non-array is a FormatError")
    func nonArrayPath() throws {
        var d = decoder("$.items")
        let error = try #require(throws: FormatError.self) { try S.decode(&d, Array(#"{"items": {"a": 1}}"#.utf8)) }
        #expect(error.message.contains("$.items is not an array"))
        #expect(error.message.contains("page-2.json"))
    }

    @Test("a truncated document is a FormatError naming the origin and byte offset")
    func truncated() throws {
        let text = #"{"items": [{"id": 1}, {"id": 2, "name": "ab"#
        var d = decoder("$.items")
        let first = try d.feed(Array(text.utf8))
        #expect(S.records(first).map { $0["id"] } == [.number(1)])
        let error = try #require(throws: FormatError.self) { try d.finish() }
        #expect(error.message == "unexpected end of JSON in page-2.json at byte \(text.utf8.count): body cut off?")
        #expect(error.location.origin == "page-2.json")

        var empty = decoder("$")
        let emptyError = try #require(throws: FormatError.self) { try empty.finish() }
        #expect(emptyError.message.contains("empty"))
    }

    @Test("invalid syntax is a FormatError with the absolute byte offset")
    func invalidSyntax() throws {
        var d = decoder("$")
        let text = #"[{"a": 1}, {"a": 2,}]"#
        let error = try #require(throws: FormatError.self) { try S.decode(&d, Array(text.utf8), cuts: [4, 12]) }
        #expect(error.message == "invalid JSON in page-2.json at byte 19: unexpected '}', expected a member name in quotes")

        var trailing = decoder("$.items")
        let trailingError = try #require(throws: FormatError.self) { try S.decode(&trailing, Array(#"{"items": []} x"#.utf8)) }
        #expect(trailingError.message.contains("after the end of the JSON document"))

        var missingColon = decoder("$.items")
        let colonError = try #require(throws: FormatError.self) { try S.decode(&missingColon, Array(#"{"items" []}"#.utf8)) }
        #expect(colonError.message.contains("expected ':'"))
    }

    @Test("an element over maxRecordBytes is a FormatError")
    func maxRecordBytes() throws {
        var d = decoder("$.items", maxRecordBytes: 32)
        let small = #"{"items": [{"id": 1}, "#
        #expect(try d.feed(Array(small.utf8)).count == 1)
        let error = try #require(throws: FormatError.self) {
            _ = try d.feed(Array(#"{"text": "0123456789012345678901234567890123456789"}]}"#.utf8))
        }
        #expect(error.message.contains("maxRecordBytes"))
        #expect(error.location.path == "$.items[1]")
    }

    @Test("a UTF-8 BOM before the document is dropped")
    func bom() throws {
        var d = decoder("$")
        let items = try S.decode(&d, [0xEF, 0xBB, 0xBF] + Array("[1]".utf8), cuts: [2])
        #expect(S.records(items).map { $0["value"] } == [.number(1)])
    }
}
