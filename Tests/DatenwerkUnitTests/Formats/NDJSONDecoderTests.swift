import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

@Suite("NDJSONDecoder")
struct NDJSONDecoderTests {
    typealias S = FormatsTestSupport

    @Test("one record per line; a bad line is rejected with its line number; blank lines skipped; any split")
    func badLineAndChunking() throws {
        let text = "{\"id\":1,\"name\":\"\\u00e4\"}\r\n\n{\"id\": 2, oops}\n  \n[1,2]\n{\"id\":3}"
        let bytes = Array(text.utf8)
        var oneShot = NDJSONDecoder(origin: "feed.ndjson")
        let expected = try S.decode(&oneShot, bytes).map(S.render)
        #expect(expected == [
            #"record line=1 n=1 path=- raw="{\"id\":1,\"name\":\"\\u00e4\"}" {"id":1,"name":"ä"}"#,
            #"rejected feed.ndjson:3: invalid JSON in line 3, column 11: unexpected 'o', expected a member name in quotes raw="{\"id\": 2, oops}""#,
            #"record line=5 n=3 path=- raw="[1,2]" {"value":[1,2]}"#,
            #"record line=6 n=4 path=- raw="{\"id\":3}" {"id":3}"#,
        ])
        for cut in 0...bytes.count {
            var split = NDJSONDecoder(origin: "feed.ndjson")
            #expect(try S.decode(&split, bytes, cuts: [cut]).map(S.render) == expected, "split at \(cut)")
        }
        var byteWise = NDJSONDecoder(origin: "feed.ndjson")
        #expect(try S.decode(&byteWise, bytes, cuts: Array(1..<bytes.count)).map(S.render) == expected)
    }

    @Test("a line over maxRecordBytes is a FormatError")
    func overlongLine() throws {
        var d = NDJSONDecoder(origin: "feed.ndjson", maxRecordBytes: 10)
        #expect(try d.feed(Array("{\"a\":1}\n".utf8)).count == 1)
        let error = try #require(throws: FormatError.self) { _ = try d.feed(Array("{\"a\":\"0123456789\"".utf8)) }
        #expect(error.location.line == 2)
        #expect(error.message.contains("maxRecordBytes"))
    }
}
