/// Appends `text` between double quotes with the escapes JSON strings and Turtle literals share: `\"`, `\\`,
/// `\n`, `\r`, `\t`, and `\uXXXX` for the other control characters below U+0020 — and for U+007F when
/// `escapingDelete` (Turtle). Hex digits are lowercase unless `uppercaseHex`.
package func appendQuoted(_ text: String, to out: inout String, uppercaseHex: Bool = false, escapingDelete: Bool = false) {
    out += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || (escapingDelete && scalar.value == 0x7F):
            let hex = String(scalar.value, radix: 16, uppercase: uppercaseHex)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
}
