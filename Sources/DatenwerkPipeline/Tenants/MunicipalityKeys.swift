import DatenwerkCore
import Foundation

/// The bundled list of German municipality keys (`Resources/municipality-keys.txt`): every Gemeinde, Kreis and
/// Land of Destatis' Gemeindeverzeichnis with its official name, and `00000000` for nationwide data.
/// Source and licence (dl-de/by-2-0, © Statistisches Bundesamt) in `Resources/README.md`.
package enum MunicipalityKeys {
    /// The Gebietsstand of the bundled list.
    package static let asOf = "31.12.2021"

    package struct Entry: Sendable, Hashable {
        package var level: Tenant.Level
        package var name: String

        package init(level: Tenant.Level, name: String) {
            self.level = level
            self.name = name
        }
    }

    /// Every key of the list (read once, on first use).
    package static let all: [String: Entry] = {
        guard let url = Bundle.module.url(forResource: "municipality-keys", withExtension: "txt", subdirectory: "Resources"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            preconditionFailure("the bundled municipality-keys.txt is missing from the DatenwerkPipeline resources")
        }
        return parse(text)
    }()

    /// `ags;level;name` lines (`#` starts a comment); level G, K, L or B. Read as bytes: every `datenwerk`
    /// command that loads a pipeline reads the list (11,000 lines) first; split into `Substring`s it took
    /// ~10 ms of each command's start.
    package static func parse(_ text: String) -> [String: Entry] {
        var entries: [String: Entry] = [:]
        entries.reserveCapacity(11_200)
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                defer { start = end + 1 }
                var line = start..<end
                if line.last.map({ bytes[$0] == UInt8(ascii: "\r") }) == true { line = line.lowerBound..<line.upperBound - 1 }
                guard !line.isEmpty, bytes[line.lowerBound] != UInt8(ascii: "#"),
                      let first = line.first(where: { bytes[$0] == UInt8(ascii: ";") }),
                      first + 2 < line.upperBound, bytes[first + 2] == UInt8(ascii: ";") else { continue }
                let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[line.lowerBound..<first]), as: UTF8.self)
                guard Tenant.isKeyShaped(key) else { continue }
                let level: Tenant.Level
                switch bytes[first + 1] {
                case UInt8(ascii: "G"): level = .municipality
                case UInt8(ascii: "K"): level = .district
                case UInt8(ascii: "L"): level = .state
                case UInt8(ascii: "B"): level = .federal
                default: continue
                }
                entries[key] = Entry(level: level, name: String(decoding: UnsafeBufferPointer(rebasing: bytes[first + 3..<line.upperBound]), as: UTF8.self))
            }
        }
        return entries
    }

    package static func lookup(_ ags: String) -> Entry? { all[ags] }

    /// The keys of the same Kreis (first five digits) closest to `ags`, for a "did you mean" hint.
    static func suggestion(for ags: String) -> (String, Entry)? {
        guard ags.utf8.count == 8 else { return nil }
        let kreis = ags.prefix(5)
        // Keys have one length: the fewest differing digits wins, then the smaller key.
        let differing = { (key: String) in zip(key.utf8, ags.utf8).filter { $0 != $1 }.count }
        let best = all.keys.filter { $0.hasPrefix(kreis) }.min { (differing($0), $0) < (differing($1), $1) }
        guard let key = best, let entry = all[key] else { return nil }
        return (key, entry)
    }
}
