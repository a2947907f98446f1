import Foundation
import Testing

import DatenwerkTransforms

/// The byte-level trim must keep what `trimmingCharacters(in: .whitespaces)` did for cell text.
@Suite struct FieldTextTests {
    /// Every scalar of `CharacterSet.whitespaces`.
    static let whitespace: [Unicode.Scalar] = [0x09, 0x20, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
                                               0x2007, 0x2008, 0x2009, 0x200A, 0x200B, 0x202F, 0x205F, 0x3000].map { Unicode.Scalar($0)! }

    @Test func whiteSpaceIsExactlyFoundationsWhitespacesSet() {
        var set: [Unicode.Scalar] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if CharacterSet.whitespaces.contains(scalar) { set.append(scalar) }
            if CharacterSet.whitespaces.contains(scalar) != FieldText.isBlank(String(scalar)) {
                Issue.record("U+\(String(value, radix: 16)): Foundation \(CharacterSet.whitespaces.contains(scalar)), FieldText \(FieldText.isBlank(String(scalar)))")
            }
            let text = String(scalar) + "x" + String(scalar) + "y" + String(scalar)
            if !FieldText.trimmed(text).unicodeScalars.elementsEqual(text.trimmingCharacters(in: .whitespaces).unicodeScalars) {
                Issue.record("U+\(String(value, radix: 16)) at both ends and inside")
            }
        }
        #expect(set == Self.whitespace)
    }

    @Test func sameResultAsFoundationOnHostileCells() {
        let cells = [
            "", " ", "\t", "\u{A0}", "   \t \u{A0}\u{3000}", " 12,5 ", "\t-999\t", "\u{A0}-999\u{A0}", "\u{202F}1\u{202F}",
            " \u{301}x ", "x \u{301}", "x\u{A0}\u{301}", " \r\n x \n", "\u{85}x\u{2028}", "\u{FEFF}x\u{FEFF}", "x\u{200B}",
            "\u{1680}S 01\u{1680}", "Störung ", " Ä ", "\u{1F600} ", "  \u{1F1E9}\u{1F1EA}  ", "a\u{0}", "\u{0} ", "\u{2000}\u{2001}\u{200A}",
            "\u{FFFD}\u{A0}", "\u{2060}x",
        ]
        for cell in cells {
            #expect(FieldText.trimmed(cell).unicodeScalars.elementsEqual(cell.trimmingCharacters(in: .whitespaces).unicodeScalars), "\(Array(cell.unicodeScalars))")
            #expect(FieldText.isBlank(cell) == cell.trimmingCharacters(in: .whitespaces).isEmpty)
        }
    }

    @Test func bytesThatAreNotUTF8AreNeverWhiteSpace() {
        func trimmed(_ bytes: [UInt8]) -> [UInt8] {
            bytes.withUnsafeBufferPointer { p in Array(p[FieldText.trimmedRange(p)]) }
        }
        #expect(trimmed([]) == [])
        #expect(trimmed([0x20, 0x20]) == [])
        #expect(trimmed([0x09, 0x41, 0x09]) == [0x41])
        // Latin-1 NBSP (A0) on its own, a lone C2, cut-off sequences, overlong and stray continuation bytes stay.
        #expect(trimmed([0xA0, 0x41, 0xA0]) == [0xA0, 0x41, 0xA0])
        #expect(trimmed([0xC2, 0x41, 0xC2]) == [0xC2, 0x41, 0xC2])
        #expect(trimmed([0xE2, 0x80, 0x41, 0x80, 0x80]) == [0xE2, 0x80, 0x41, 0x80, 0x80])
        #expect(trimmed([0xE3, 0x80]) == [0xE3, 0x80])
        #expect(trimmed([0xC0, 0xA0, 0x41]) == [0xC0, 0xA0, 0x41])
        #expect(trimmed([0xFF, 0x20, 0xFE]) == [0xFF, 0x20, 0xFE])
        // Well-formed white space around invalid bytes still goes.
        #expect(trimmed([0xC2, 0xA0, 0xFF, 0x20]) == [0xFF])
        #expect(trimmed([0xE3, 0x80, 0x80, 0xE2, 0x80, 0xAF, 0xC3, 0x28, 0xE2, 0x81, 0x9F]) == [0xC3, 0x28])
    }

    @Test func nothingToTrimGivesTheSameString() {
        let text = "a long station name that is not a small string"
        #expect(FieldText.trimmed(text) == text)
        #expect(FieldText.trimmed(" \(text)\u{A0}") == text)
        #expect(FieldText.sameBytes("S01", "S01"))
        #expect(!FieldText.sameBytes("S01", "S02"))
        // Canonically equivalent, but not the same bytes: `==` says equal, `sameBytes` does not.
        #expect("\u{E9}" == "e\u{301}")
        #expect(!FieldText.sameBytes("\u{E9}", "e\u{301}"))
    }
}
