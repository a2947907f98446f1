/// Byte-level helpers for the per-record hot path: trimming and comparing cell text without Foundation.
///
/// The white space is exactly what `Foundation`'s `CharacterSet.whitespaces` holds (Unicode general category Zs,
/// U+200B and the tab): U+0009, U+0020, U+00A0, U+1680, U+2000…U+200B, U+202F, U+205F, U+3000. Like
/// `trimmingCharacters(in: .whitespaces)` it trims whole Unicode scalars from both ends, so a space before a
/// combining mark at the start goes (the mark stays) and line breaks stay. Bytes that are not well-formed UTF-8
/// are never white space.
package enum FieldText {
    /// The length of the white-space scalar that starts at `i` (before `end`), or 0.
    @inline(__always)
    package static func spaceLength(_ p: UnsafeBufferPointer<UInt8>, at i: Int, end: Int) -> Int {
        let b = p[i]
        if b == 0x20 || b == 0x09 { return 1 }
        if b < 0xC2 { return 0 }
        if b == 0xC2 { return i + 1 < end && p[i + 1] == 0xA0 ? 2 : 0 }
        guard b >= 0xE1 && b <= 0xE3, i + 2 < end else { return 0 }
        return isThreeByteSpace(b, p[i + 1], p[i + 2]) ? 3 : 0
    }

    /// The length of the white-space scalar that ends just before `end` (at or after `start`), or 0.
    @inline(__always)
    package static func spaceLength(_ p: UnsafeBufferPointer<UInt8>, before end: Int, start: Int) -> Int {
        let b = p[end - 1]
        if b == 0x20 || b == 0x09 { return 1 }
        if b < 0x80 { return 0 }
        if b == 0xA0 && end - 2 >= start && p[end - 2] == 0xC2 { return 2 }
        guard end - 3 >= start else { return 0 }
        return isThreeByteSpace(p[end - 3], p[end - 2], b) ? 3 : 0
    }

    /// U+1680 (E1 9A 80), U+2000…U+200B (E2 80 80…8B), U+202F (E2 80 AF), U+205F (E2 81 9F), U+3000 (E3 80 80).
    @inline(__always)
    private static func isThreeByteSpace(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8) -> Bool {
        switch b0 {
        case 0xE2:
            if b1 == 0x80 { return (b2 >= 0x80 && b2 <= 0x8B) || b2 == 0xAF }
            return b1 == 0x81 && b2 == 0x9F
        case 0xE1: return b1 == 0x9A && b2 == 0x80
        case 0xE3: return b1 == 0x80 && b2 == 0x80
        default: return false
        }
    }

    /// The byte range of `p` without white space at either end (empty when it is all white space).
    @inline(__always)
    package static func trimmedRange(_ p: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        var s = 0, e = p.count
        while s < e {
            let n = spaceLength(p, at: s, end: e)
            if n == 0 { break }
            s += n
        }
        while e > s {
            let n = spaceLength(p, before: e, start: s)
            if n == 0 { break }
            e -= n
        }
        return s..<e
    }

    /// `text` without white space at either end: the same result as `trimmingCharacters(in: .whitespaces)`,
    /// and `text` itself (no copy) when there is nothing to trim.
    package static func trimmed(_ text: String) -> String {
        var copy = text
        let trimmed: String? = copy.withUTF8 { p in
            let range = trimmedRange(p)
            if range.count == p.count { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
        }
        return trimmed ?? text
    }

    /// Whether `text` is empty or all white space.
    package static func isBlank(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { trimmedRange($0).isEmpty }
    }

    /// Whether `a` and `b` hold the same bytes (`==` would also call canonically equivalent spellings equal).
    @inline(__always)
    package static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a, b = b
        return a.withUTF8 { pa in b.withUTF8 { pb in pa.elementsEqual(pb) } }
    }

    /// Whether `p` is all ASCII.
    @inline(__always)
    package static func isASCII(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        for b in p where b >= 0x80 { return false }
        return true
    }
}
