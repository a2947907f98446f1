import Crypto
import Foundation

/// The API tokens of `datenwerk tokens create` (docs/access.md): `dwk_` and 43 URL-safe characters (32 random
/// bytes from the system's CSPRNG, base64url without padding). The prefix makes a leaked token recognisable
/// (secret scanners, log checks); only the SHA-256 of the whole token is stored.
package enum APIToken {
    package static let prefix = "dwk_"

    /// A new token; show it once and store only `hash(_:)`.
    package static func generate() -> String {
        let key = SymmetricKey(size: .bits256)
        let bytes = key.withUnsafeBytes { Array($0) }
        return prefix + base64URL(bytes)
    }

    /// SHA-256 of the token's UTF-8 bytes (32 bytes): what the database keeps and the server looks up.
    package static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// What `tokens list` shows of a token: the prefix and 4 characters.
    package static func hint(_ token: String) -> String { String(token.prefix(prefix.count + 4)) }

    /// Whether `text` has the shape of one of our tokens (the prefix and 43 base64url characters).
    package static func looksLikeOne(_ text: String) -> Bool {
        guard text.hasPrefix(prefix) else { return false }
        let rest = text.utf8.dropFirst(prefix.utf8.count)
        return rest.count == 43 && rest.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
        }
    }

    package static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
