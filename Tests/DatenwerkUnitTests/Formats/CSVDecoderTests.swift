import DatenwerkCore
@testable import DatenwerkFormats
import Testing
import DatenwerkTesting

@Suite("CSVDecoder")
struct CSVDecoderTests {
    typealias S = FormatsTestSupport

    @Test("splitting the input at every byte gives the same records as one chunk")
    func chunkingAtEveryBoundary() throws {
        let text = "\u{FEFF}id,name,note\r\n1,\"Müller, Ä\",\"zwei\r\nZeilen\"\r\n2,Straße,\"sagt \"\"hallo\"\"\"\r\n\r\n3,ä,\r4,x,y\n5,\"\",z"
        let bytes = Array(text.utf8)
        var oneShot = CSVDecoder(options: CSVOptions(), origin: "t.csv")
        let expected = try S.decode(&oneShot, bytes).map(S.render)
        #expect(expected == [
            #"record line=2 n=1 path=- raw="1,\"Müller, Ä\",\"zwei\r\nZeilen\"" {"id":"1","name":"Müller, Ä","note":"zwei\r\nZeilen"}"#,
            #"record line=4 n=2 path=- raw="2,Straße,\"sagt \"\"hallo\"\"\"" {"id":"2","name":"Straße","note":"sagt \"hallo\""}"#,
            #"record line=6 n=3 path=- raw="3,ä," {"id":"3","name":"ä","note":""}"#,
            #"record line=7 n=4 path=- raw="4,x,y" {"id":"4","name":"x","note":"y"}"#,
            #"record line=8 n=5 path=- raw="5,\"\",z" {"id":"5","name":"","note":"z"}"#,
        ])
        for cut in 0...bytes.count {
            var decoder = CSVDecoder(options: CSVOptions(), origin: "t.csv")
            let got = try S.decode(&decoder, bytes, cuts: [cut]).map(S.render)
            #expect(got == expected, "split at \(cut)")
        }
        var byteWise = CSVDecoder(options: CSVOptions(), origin: "t.csv")
        #expect(try S.decode(&byteWise, bytes, cuts: Array(1..<bytes.count)).map(S.render) == expected)
    }

    @Test("a UTF-8 BOM is dropped and ';' separates fields")
    func bomAndSemicolon() throws {
        let items = try S.csv("\u{FEFF}Datum;Wert\n2024-01-01;3,5\n") { $0.delimiter = UInt8(ascii: ";") }
        let records = S.records(items)
        #expect(records.count == 1)
        #expect(records[0].fields.names == ["Datum", "Wert"])
        #expect(records[0]["Wert"] == .string("3,5"))
        #expect(records[0]["Datum"] == .string("2024-01-01"))
    }

    @Test("a BOM alone in the first chunks is still dropped")
    func bomSplitAcrossChunks() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("a\nx\n".utf8)
        var decoder = CSVDecoder(options: CSVOptions(), origin: "t.csv")
        let records = S.records(try S.decode(&decoder, bytes, cuts: [1, 2]))
        #expect(records.map { $0.fields.names } == [["a"]])
        #expect(records[0]["a"] == .string("x"))
    }

    @Test("Latin-1 bytes become UTF-8")
    func latin1() throws {
        let bytes: [UInt8] = Array("Ort;Temp\n".utf8) + [0x4D, 0xFC, 0x6E, 0x63, 0x68, 0x65, 0x6E, 0x3B, 0xE4, 0xDF, 0x0A]  // München;äß
        let records = S.records(try S.csv(bytes) {
            $0.delimiter = UInt8(ascii: ";")
            $0.encoding = .latin1
        })
        #expect(records.map { $0["Ort"] } == [.string("München")])
        #expect(records[0]["Temp"] == .string("äß"))
        #expect(records[0].raw == "München;äß")
    }

    @Test("Windows-1252 bytes 0x80–0x9F map to their punctuation, the rest like Latin-1")
    func windows1252() throws {
        let bytes: [UInt8] = Array("a;b\n".utf8) + [0x80, 0x20, 0x35, 0x3B, 0x84, 0x78, 0x93, 0x20, 0x96, 0x20, 0x9F, 0x8A, 0xE4, 0x0A]
        let records = S.records(try S.csv(bytes) {
            $0.delimiter = UInt8(ascii: ";")
            $0.encoding = .windows1252
        })
        #expect(records.count == 1)
        #expect(records[0]["a"] == .string("€ 5"))
        #expect(records[0]["b"] == .string("„x“ – ŸŠä"))
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: ";")
        options.encoding = .windows1252
        for cut in 0...bytes.count {
            var decoder = CSVDecoder(options: options, origin: "t.csv")
            let split = S.records(try S.decode(&decoder, bytes, cuts: [cut]))
            #expect(split.map(\.values) == records.map(\.values), "split at \(cut)")
        }
    }

    @Test("charset labels are recognised")
    func encodingLabels() {
        #expect(TextEncoding(label: "ISO-8859-1") == .latin1)
        #expect(TextEncoding(label: "latin1") == .latin1)
        #expect(TextEncoding(label: "cp1252") == .windows1252)
        #expect(TextEncoding(label: "UTF8") == .utf8)
        #expect(TextEncoding(label: "utf-16") == nil)
    }

    @Test("skipRows skips preamble lines; comment and footer prefixes are skipped anywhere")
    func skipRowsAndComments() throws {
        let text = """
            Stadt Beispiel – Verkehrszählung
            Stand: 2024-05-01
            # generated
            Zählstelle;Anzahl
            A1;120
            # Pause
            B2;"Quelle: steht im Feld"
            Gesamt;1234
            Quelle: Stadt Beispiel

            """
        let items = try S.csv(text) {
            $0.delimiter = UInt8(ascii: ";")
            $0.skipRows = 2
            $0.commentPrefixes = ["#", "Gesamt;", "Quelle:"]
        }
        #expect(items.map(S.render) == [
            #"record line=5 n=1 path=- raw="A1;120" {"Zählstelle":"A1","Anzahl":"120"}"#,
            #"record line=7 n=2 path=- raw="B2;\"Quelle: steht im Feld\"" {"Zählstelle":"B2","Anzahl":"Quelle: steht im Feld"}"#,
        ])
    }

    @Test("a comment line with an unbalanced quote does not swallow later lines; prefixes split across chunks")
    func commentWithQuoteAcrossChunks() throws {
        let bytes = Array("a,b\n#x \"open\n1,2\nGesamt: 3\n".utf8)
        var options = CSVOptions()
        options.commentPrefixes = ["#", "Gesamt:"]
        for cut in 0...bytes.count {
            var decoder = CSVDecoder(options: options, origin: "t.csv")
            let got = try S.decode(&decoder, bytes, cuts: [cut]).map(S.render)
            #expect(got == [#"record line=3 n=1 path=- raw="1,2" {"a":"1","b":"2"}"#], "split at \(cut)")
        }
    }

    @Test("trimFields strips the padding of DWD files, not the inside of quoted fields")
    func trimFields() throws {
        let text = "STATIONS_ID;MESS_DATUM;  QN_9; TT_TU;eor\n        44;2024010100;    3;   4.2;eor\n  44 ; 2024010101 ; \" x \" ;-999;eor\n"
        let records = S.records(try S.csv(text) {
            $0.delimiter = UInt8(ascii: ";")
            $0.trimFields = true
        })
        #expect(records.count == 2)
        #expect(records[0].fields.names == ["STATIONS_ID", "MESS_DATUM", "QN_9", "TT_TU", "eor"])
        #expect(records[0].values == [.string("44"), .string("2024010100"), .string("3"), .string("4.2"), .string("eor")])
        #expect(records[1].values == [.string("44"), .string("2024010101"), .string(" x "), .string("-999"), .string("eor")])
    }

    @Test("without trimFields the padding stays")
    func noTrim() throws {
        let records = S.records(try S.csv("a,b\n 1 , 2\n"))
        #expect(records[0].values == [.string(" 1 "), .string(" 2")])
    }

    @Test("a newline inside quotes belongs to the field and line numbers stay right")
    func quotedNewline() throws {
        let items = try S.csv("name,text\nA,\"erste\nzweite\ndritte\"\nB,ok\n")
        #expect(items.map(S.render) == [
            #"record line=2 n=1 path=- raw="A,\"erste\nzweite\ndritte\"" {"name":"A","text":"erste\nzweite\ndritte"}"#,
            #"record line=5 n=2 path=- raw="B,ok" {"name":"B","text":"ok"}"#,
        ])
    }

    @Test("CR-only line ends")
    func carriageReturnOnly() throws {
        let items = try S.csv("a,b\r1,2\r3,4")
        #expect(items.map(S.render) == [
            #"record line=2 n=1 path=- raw="1,2" {"a":"1","b":"2"}"#,
            #"record line=3 n=2 path=- raw="3,4" {"a":"3","b":"4"}"#,
        ])
    }

    @Test("column count: more non-empty fields are rejected, fewer become null, a trailing delimiter is dropped")
    func columnCountRules() throws {
        let text = "a,b,c,d,e\n1,2,3,4,5,6,7\n1,2\n1,2,3,4,5,\n1,2,3,4,5,,\n"
        let items = try S.csv(text)
        #expect(items.count == 4)
        let rejected = try #require(items[0].rejected)
        #expect(rejected.error.reason == "row has 7 fields, header has 5")
        #expect(rejected.error.location == SourceLocation(origin: "test.csv", line: 2, record: 1))
        #expect(rejected.raw == "1,2,3,4,5,6,7")
        #expect(items[1].record?.values == [.string("1"), .string("2"), .null, .null, .null])
        #expect(items[2].record?.values == [.string("1"), .string("2"), .string("3"), .string("4"), .string("5")])
        #expect(items[3].record?.values == [.string("1"), .string("2"), .string("3"), .string("4"), .string("5")])
        #expect(items[3].record?.location.record == 4)
    }

    @Test("header names are trimmed, empty ones numbered, duplicates suffixed")
    func headerNormalisation() throws {
        let records = S.records(try S.csv(" Wert ,,Wert,\"Wert\",x\n1,2,3,4,5\n"))
        #expect(records[0].fields.names == ["Wert", "column_2", "Wert_2", "Wert_3", "x"])
        #expect(records[0]["Wert_3"] == .string("4"))
        #expect(records[0]["column_2"] == .string("2"))
    }

    @Test("rows of one file share one FieldIndex")
    func sharedFieldIndex() throws {
        let records = S.records(try S.csv("a,b\n1,2\n3,4\n5,6\n"))
        #expect(records.count == 3)
        #expect(records[0].fields === records[1].fields)
        #expect(records[1].fields === records[2].fields)
    }

    @Test("header: false with columns, and without them column_N")
    func noHeader() throws {
        let named = S.records(try S.csv("1;2\n3;4\n") {
            $0.header = false
            $0.delimiter = UInt8(ascii: ";")
            $0.columns = ["station", "value"]
        })
        #expect(named.map { $0["value"] } == [.string("2"), .string("4")])
        #expect(named[0].location.line == 1)
        let numbered = S.records(try S.csv("x,y,z\n") { $0.header = false })
        #expect(numbered[0].fields.names == ["column_1", "column_2", "column_3"])
        #expect(numbered[0]["column_3"] == .string("z"))
    }

    @Test("columns replace the names of the header row")
    func columnsOverrideHeader() throws {
        let records = S.records(try S.csv("Stations-ID,Messwert\n7,1.5\n") { $0.columns = ["station", "value"] })
        #expect(records[0].fields.names == ["station", "value"])
        #expect(records[0]["value"] == .string("1.5"))
    }

    @Test("invalid UTF-8 rejects that row, naming the line; the next rows go on")
    func invalidUTF8() throws {
        let bytes = Array("a,b\n1,ok\n".utf8) + [0x32, 0x2C, 0x4D, 0xFC, 0x6E, 0x0A] + Array("3,fine\n".utf8)
        let items = try S.csv(bytes)
        #expect(items.count == 3)
        #expect(items[0].record?["b"] == .string("ok"))
        let rejected = try #require(items[1].rejected)
        #expect(rejected.error.reason.contains("invalid UTF-8"))
        #expect(rejected.error.reason.contains("line 3"))
        #expect(rejected.error.location.line == 3)
        #expect(rejected.raw == "2,M\u{FFFD}n")
        #expect(items[2].record?["b"] == .string("fine"))
        #expect(items[2].record?.location.record == 3)
    }

    @Test("empty lines are skipped by default and kept as records when asked")
    func emptyLines() throws {
        #expect(S.records(try S.csv("a,b\n\n1,2\n\n")).map { $0.location.line } == [3])
        let kept = try S.csv("a,b\n\n1,2\n") { $0.skipEmptyLines = false }
        #expect(kept.map(S.render) == [
            #"record line=2 n=1 path=- raw="" {"a":"","b":null}"#,
            #"record line=3 n=2 path=- raw="1,2" {"a":"1","b":"2"}"#,
        ])
    }

    @Test("quote: nil reads quotes as text")
    func noQuoting() throws {
        let records = S.records(try S.csv("a,b\n\"x,y\"\n") { $0.quote = nil })
        #expect(records[0].values == [.string("\"x"), .string("y\"")])
    }

    @Test("text after a closing quote is kept; quotes inside unquoted fields are text")
    func lenientQuotes() throws {
        let records = S.records(try S.csv("a,b\n\"12\"cm,5\"\n"))
        #expect(records[0].values == [.string("12cm"), .string("5\"")])
    }

    @Test("an unclosed quote at the end of the input is a FormatError naming the line")
    func unterminatedQuote() throws {
        var decoder = CSVDecoder(options: CSVOptions(), origin: "zaehlung.csv")
        _ = try decoder.feed(Array("a,b\n1,2\n3,\"offen\n4,5\n".utf8))
        let error = try #require(throws: FormatError.self) { try decoder.finish() }
        #expect(error.message.contains("zaehlung.csv:3"))
        #expect(error.location.line == 3)
    }

    @Test("a record over maxRecordBytes is a FormatError, even across chunks")
    func maxRecordBytes() throws {
        var options = CSVOptions()
        options.maxRecordBytes = 16
        var decoder = CSVDecoder(options: options, origin: "big.csv")
        #expect(try decoder.feed(Array("a,b\n1,2\n\"".utf8)).count == 1)
        _ = try decoder.feed(Array("0123456789".utf8))
        let error = try #require(throws: FormatError.self) { _ = try decoder.feed(Array("0123456789".utf8)) }
        #expect(error.message.contains("maxRecordBytes"))
        #expect(error.location == SourceLocation(origin: "big.csv", line: 3, record: 2))
    }

    @Test("the last record without a line end is flushed by finish()")
    func lastLineWithoutNewline() throws {
        var decoder = CSVDecoder(options: CSVOptions(), origin: "t.csv")
        #expect(try decoder.feed(Array("a,b\n1,2\n3,4".utf8)).count == 1)
        let last = try decoder.finish()
        #expect(last.map(S.render) == [#"record line=3 n=2 path=- raw="3,4" {"a":"3","b":"4"}"#])
    }
}
