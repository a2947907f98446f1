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

    /// `ags;level;name` lines (`#` starts a comment); level G, K, L or B.
    package static func parse(_ text: String) -> [String: Entry] {
        var entries: [String: Entry] = [:]
        entries.reserveCapacity(11_200)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#") {
            let fields = line.split(separator: ";", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, Tenant.isKeyShaped(String(fields[0])) else { continue }
            let level: Tenant.Level
            switch fields[1] {
            case "G": level = .municipality
            case "K": level = .district
            case "L": level = .state
            case "B": level = .federal
            default: continue
            }
            entries[String(fields[0])] = Entry(level: level, name: String(fields[2]))
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
