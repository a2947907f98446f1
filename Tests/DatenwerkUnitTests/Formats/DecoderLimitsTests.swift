import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

/// Issue 10, "decoders never trap": values of any size outside the records stream past, and every limit is an
/// error with a location. The inputs marked "found by fuzzing" come from `scripts/fuzz.sh` (docs/FUZZING.md).
@Suite("Decoder limits")
struct DecoderLimitsTests {
    typealias S = FormatsTestSupport

    private func decoder(_ path: String, maxRecordBytes: Int = 8 << 20) -> StreamingJSONDecoder {
        var options = JSONDecoderOptions()
        options.recordPath = path
        options.maxRecordBytes = maxRecordBytes
        return StreamingJSONDecoder(options: options, origin: "big.json")
    }

    /// Feeds `bytes` in chunks of `chunk` bytes; returns the records and the most bytes the decoder held at once.
    private func stream(_ d: inout StreamingJSONDecoder, _ bytes: [UInt8], chunk: Int = 64 << 10) throws -> (records: [Record], retained: Int) {
        var records: [Record] = []
        var retained = 0
        var start = 0
        while start < bytes.count {
            let end = min(start + chunk, bytes.count)
            records += S.records(try d.feed(bytes[start..<end]))
            retained = max(retained, d.retainedBytes)
            start = end
        }
        records += S.records(try d.finish())
        return (records, retained)
    }

    private func document(meta: String) -> [UInt8] {
        Array(#"{"total": 2, "meta": \#(meta), "items": [{"id": 1}, {"id": 2}], "next": "/p/2"}"#.utf8)
    }

    @Test("a 1.5 MB string outside the records streams past (it trapped in completeValue)")
    func largeSkippedString() throws {
        let meta = "\"" + String(repeating: "abc\\\"def ", count: 170_000) + "\""   // 1.5 MB with escapes
        var d = decoder("$.items")
        let result = try stream(&d, document(meta: meta))
        #expect(result.records.map { $0["id"] } == [.number(1), .number(2)])
        // Over the 1 MB envelope budget: left out of the envelope, the small members stay.
        #expect(d.envelope["meta"] == nil)
        #expect(d.envelope["total"] == .number(2))
        #expect(d.envelope["next"] == .string("/p/2"))
        #expect(result.retained < StreamingJSONDecoder.envelopeLimit + 2 * (64 << 10))
    }

    @Test("a 20 MB object outside the records streams past in bounded memory, in any chunk size")
    func twentyMegabyteSkippedObject() throws {
        let element = #"{"station": "MS-01", "values": [1.5, -2e3, true, null, {"q": "a]}\"["}], "n": 0}"#
        let count = 20_000_000 / element.utf8.count
        let meta = "{\"history\": [" + Array(repeating: element, count: count).joined(separator: ",") + "], \"deep\": {\"a\": {\"b\": []}}}"
        let bytes = document(meta: meta)
        #expect(bytes.count > 20_000_000)
        for chunk in [65_536, 1_000_003] {
            var d = decoder("$.items")
            let result = try stream(&d, bytes, chunk: chunk)
            #expect(result.records.count == 2)
            #expect(d.envelope["meta"] == nil)
            #expect(d.envelope["next"] == .string("/p/2"))
            #expect(result.retained < StreamingJSONDecoder.envelopeLimit + 2 * chunk, "chunk \(chunk)")
        }
    }

    @Test("invalid syntax inside a large skipped value is a FormatError with its byte offset")
    func invalidInsideSkippedValue() throws {
        let filler = Array(repeating: "\"0123456789\"", count: 150_000).joined(separator: ",")
        let text = #"{"meta": [\#(filler), tru], "items": []}"#
        var d = decoder("$.items")
        let error = try #require(throws: FormatError.self) { _ = try stream(&d, Array(text.utf8)) }
        let offset = text.utf8.count - #"tru], "items": []}"#.utf8.count
        #expect(error.message.contains("at byte \(offset)"), "\(error.message)")
        #expect(error.message.contains("invalid literal"))
    }

    @Test("1.5 MB of nesting outside the records is a depth error with its byte offset, not a crash")
    func deepNestingOutsideRecords() throws {
        let depth = 1_500_000
        let text = #"{"meta": "# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + #", "items": [1]}"#
        var d = decoder("$.items")
        let error = try #require(throws: FormatError.self) { _ = try stream(&d, Array(text.utf8)) }
        // "meta": starts at byte 9; the 513th bracket is the one too deep.
        #expect(error.message == "invalid JSON in big.json at byte \(9 + JSONParser.maximumDepth): JSON nested deeper than 512 levels")
    }

    @Test("deep nesting inside a record is an error naming the byte; in NDJSON the line is quarantined with its number")
    func deepNestingInsideRecords() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        var d = decoder("$.items")
        let error = try #require(throws: FormatError.self) { try S.decode(&d, Array(#"{"items": [1, \#(deep)]}"#.utf8), cuts: [7, 300]) }
        #expect(error.message == "invalid JSON in big.json at byte \(14 + JSONParser.maximumDepth): JSON nested deeper than 512 levels")

        var lines = NDJSONDecoder(origin: "feed.ndjson")
        let items = try S.decode(&lines, Array("{\"a\": 1}\n\(deep)\n{\"a\": 2}\n".utf8))
        #expect(items.count == 3)
        let rejected = try #require(items[1].rejected)
        #expect(rejected.error.location.line == 2)
        #expect(rejected.error.reason.contains("nested deeper than 512 levels"))
        #expect(items[2].record?["a"] == .number(2))
    }

    @Test("a number beyond a double is an error, not infinity (found by fuzzing: 880e8088)")
    func numberOutOfRange() throws {
        let error = try #require(throws: JSONSyntaxError.self) { try JSONParser.parse(Array("880e8088".utf8)) }
        #expect(error.message == "number out of range")
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Array(("[" + String(repeating: "9", count: 400) + "]").utf8)) }
        #expect(try JSONParser.parse(Array("[1e308, -1e-400, 0.1]".utf8)) == .array([.number(1e308), .number(-0.0), .number(0.1)]))

        // The same outside the records (the skipper) and inside them (the parser).
        var outside = decoder("$.items")
        let outsideError = try #require(throws: FormatError.self) { try S.decode(&outside, Array(#"{"total": 1e999, "items": []}"#.utf8), cuts: [14]) }
        #expect(outsideError.message == "invalid JSON in big.json at byte 10: number out of range")
        var inside = decoder("$.items")
        let insideError = try #require(throws: FormatError.self) { try S.decode(&inside, Array(#"{"items": [{"v": -1E+400}]}"#.utf8)) }
        #expect(insideError.message == "invalid JSON in big.json at byte 17: number out of range")
    }

    @Test("a number longer than 1024 characters is an error")
    func numberTooLong() throws {
        let long = "1." + String(repeating: "5", count: 1100)
        let error = try #require(throws: JSONSyntaxError.self) { try JSONParser.parse(Array(long.utf8)) }
        #expect(error.message == "number longer than 1024 characters")
        var d = decoder("$.items")
        let skipped = try #require(throws: FormatError.self) { try S.decode(&d, Array(#"{"n": \#(long), "items": []}"#.utf8), cuts: [100, 700]) }
        #expect(skipped.message == "invalid JSON in big.json at byte 6: number longer than 1024 characters")
    }

    @Test("the skipper accepts exactly what JSONParser accepts, whatever the split")
    func skipperAgreesWithParser() throws {
        let texts = [
            #"{"a": [1, -0.5e+3, "x\"y\\", true, false, null, {}, []]}"#, #""\ud83d\ude00""#, "0", "-0", "12", "1.5E3",
            "01", "-", "1.", "1e", "1e+", ".5", "+1", "tru", "nul", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", #""\x""#,
            #""\u12G4""#, "[", "{", "\"abc", "{}}", "[] ", "truex", "1e999", "880e8088", "[[[]]]",
            String(repeating: "[", count: 512) + String(repeating: "]", count: 512),
            String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
        ]
        for text in texts {
            let bytes = Array(text.utf8)
            let accepted = (try? JSONParser.parse(bytes)) != nil
            for cut in Set([0, 1, bytes.count / 2, max(0, bytes.count - 1)]) {
                #expect(skips(bytes, cut: cut) == accepted, "\(text.prefix(40)) split at \(cut): parser accepts: \(accepted)")
            }
        }
    }

    /// Whether the skipper, fed `bytes` in two chunks cut at `cut`, finds one complete value followed only by whitespace.
    private func skips(_ bytes: [UInt8], cut: Int) -> Bool {
        var skipper = JSONValueSkipper()
        var start = 0
        do {
            for end in [cut, bytes.count] where end > start {
                let chunk = Array(bytes[start..<end])
                var i = 0
                let complete = try chunk.withUnsafeBufferPointer { (p) throws(JSONSyntaxError) -> Bool in try skipper.advance(p, &i) }
                if complete { return bytes[(start + i)...].allSatisfy(isJSONWhitespace) }
                skipper.shift(by: chunk.count)
                start = end
            }
            return try skipper.endOfInput(at: 0)
        } catch {
            return false
        }
    }

    @Test("an NDJSON line over maxRecordBytes is an error in one chunk as in many (found by the split invariant)")
    func overlongLineInOneChunk() throws {
        let text = "{\"a\":1}\n{\"a\":\"0123456789\"}\n{\"a\":3}\n"
        var oneChunk = NDJSONDecoder(origin: "feed.ndjson", maxRecordBytes: 10)
        let error = try #require(throws: FormatError.self) { _ = try oneChunk.feed(Array(text.utf8)) }
        #expect(error.location.line == 2)
        #expect(error.message == "feed.ndjson:2: line is longer than 10 bytes (maxRecordBytes)")
        var split = NDJSONDecoder(origin: "feed.ndjson", maxRecordBytes: 10)
        let splitError = try #require(throws: FormatError.self) { try S.decode(&split, Array(text.utf8), cuts: Array(1..<text.utf8.count)) }
        #expect(splitError.message == error.message)
    }

    @Test("CSV limits are errors with the line, in any split")
    func csvLimits() throws {
        let text = "a;b\n1;2\n\"3;\n4\";" + String(repeating: "x", count: 100) + "\n5;6\n"
        for cuts in [[], [9], Array(1..<text.utf8.count)] {
            var d = CSVDecoder(options: { var o = CSVOptions(); o.delimiter = UInt8(ascii: ";"); o.maxRecordBytes = 64; return o }(), origin: "t.csv")
            let error = try #require(throws: FormatError.self) { try S.decode(&d, Array(text.utf8), cuts: cuts) }
            #expect(error.message == "t.csv:3: record is longer than 64 bytes (maxRecordBytes); is a quote unbalanced?")
            #expect(error.location.line == 3)
            #expect(error.location.record == 2)
        }
    }
}
