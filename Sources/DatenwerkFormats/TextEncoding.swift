/// The character encodings found in municipal and agency files. Decoders turn everything into UTF-8.
package enum TextEncoding: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case latin1 = "iso-8859-1"
    case windows1252 = "windows-1252"

    /// Reads a charset label as it appears in configurations and `Content-Type` headers
    /// (`UTF8`, `latin1`, `ISO-8859-1`, `cp1252`, …); nil for an encoding that is not supported.
    package init?(label: String) {
        let key = label.lowercased().filter { $0.isLetter || $0.isNumber }
        switch key {
        case "utf8": self = .utf8
        case "iso88591", "latin1", "l1", "iso885915", "latin9": self = .latin1
        case "windows1252", "cp1252", "win1252", "xcp1252": self = .windows1252
        default: return nil
        }
    }

    /// Appends `bytes`, decoded from this single-byte encoding, to `out` as UTF-8. For `.utf8` the bytes are copied unchanged.
    func appendTranscodingToUTF8(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        if self == .utf8 {
            out.append(contentsOf: bytes)
            return
        }
        out.reserveCapacity(out.count + bytes.count + bytes.count / 8)
        var runStart = 0
        for i in 0..<bytes.count where bytes[i] >= 0x80 {
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            runStart = i + 1
            let b = bytes[i]
            let scalar: UInt32 = (self == .windows1252 && b < 0xA0) ? windows1252High[Int(b) - 0x80] : UInt32(b)
            appendUTF8(scalar, to: &out)
        }
        if runStart < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
    }
}

/// Windows-1252 code points for 0x80–0x9F. The five unassigned bytes map to the C1 controls of the same value, as browsers do.
private let windows1252High: [UInt32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
]

@inline(__always) func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(0xC0 | UInt8(scalar >> 6))
        out.append(0x80 | UInt8(scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(0xE0 | UInt8(scalar >> 12))
        out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
        out.append(0x80 | UInt8(scalar & 0x3F))
    default:
        out.append(0xF0 | UInt8(scalar >> 18))
        out.append(0x80 | UInt8((scalar >> 12) & 0x3F))
        out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
        out.append(0x80 | UInt8(scalar & 0x3F))
    }
}

/// The offset of the first byte that is not part of a well-formed UTF-8 sequence, or nil when all of `bytes` is valid.
func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        if b < 0x80 { i += 1; continue }
        @inline(__always) func cont(_ k: Int) -> Bool { k < n && bytes[k] & 0xC0 == 0x80 }
        switch b {
        case 0xC2...0xDF:
            guard cont(i + 1) else { return i }
            i += 2
        case 0xE0...0xEF:
            guard cont(i + 1), cont(i + 2) else { return i }
            let b1 = bytes[i + 1]
            if b == 0xE0 && b1 < 0xA0 { return i }   // overlong
            if b == 0xED && b1 >= 0xA0 { return i }  // surrogate
            i += 3
        case 0xF0...0xF4:
            guard cont(i + 1), cont(i + 2), cont(i + 3) else { return i }
            let b1 = bytes[i + 1]
            if b == 0xF0 && b1 < 0x90 { return i }   // overlong
            if b == 0xF4 && b1 >= 0x90 { return i }  // above U+10FFFF
            i += 4
        default:
            return i
        }
    }
    return nil
}
