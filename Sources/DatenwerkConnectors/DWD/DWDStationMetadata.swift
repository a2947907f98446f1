import DatenwerkCore
import DatenwerkFormats
import Foundation

/// What is known about one CDC station: from its `Metadaten_Geographie_*` member and/or the
/// `*_Beschreibung_Stationen.txt` list.
struct DWDStationInfo: Sendable, Hashable {
    /// Five digits, as in file names and the station list (`00020`).
    var id: String
    var name: String?
    var latitude: Double?
    var longitude: Double?
    /// Station height above sea level in metres.
    var height: Double?
    /// The Bundesland (station list only).
    var state: String?
    /// `yyyyMMdd` since when the station has been at this location.
    var since: String?
    /// `yyyyMMdd` until when the station reported (station list only).
    var until: String?

    /// This entry, with gaps filled from `other` (the more precise source comes first).
    func filled(from other: DWDStationInfo?) -> DWDStationInfo {
        guard let other else { return self }
        var merged = self
        if merged.name == nil { merged.name = other.name }
        if merged.latitude == nil || merged.longitude == nil {
            merged.latitude = other.latitude
            merged.longitude = other.longitude
        }
        if merged.height == nil { merged.height = other.height }
        if merged.state == nil { merged.state = other.state }
        if merged.since == nil { merged.since = other.since }
        if merged.until == nil { merged.until = other.until }
        return merged
    }
}

/// Readers for the DWD metadata files. All of them are ISO-8859-1.
enum DWDMetadata {
    /// ISO-8859-1 bytes as a string: every byte is one code point, so nothing is ever lost.
    static func latin1(_ bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
        return String(scalars)
    }

    /// The five-digit form of a station id (`20` → `00020`); nil when it is not a number.
    static func stationID(_ text: some StringProtocol) -> String? {
        let digits = text.trimmingCharacters(in: .whitespaces)
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        return String(repeating: "0", count: 5 - digits.count) + digits
    }

    /// The station id in a CDC file name (`produkt_rr_stunde_20180914_20200316_00020.txt`,
    /// `stundenwerte_RR_00020_akt.zip`, `Metadaten_Geographie_01766.txt`).
    static func stationID(inFileName name: String) -> String? {
        let stem = (name as NSString).deletingPathExtension
        for part in stem.split(separator: "_").reversed() where part.count == 5 && part.allSatisfy(\.isASCIIDigit) {
            return String(part)
        }
        return nil
    }

    /// Decodes a small `;`-separated metadata file (Latin-1, padded fields, `generiert:`/`Legende:` footers).
    static func records(_ bytes: [UInt8], origin: String) throws -> [Record] {
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: ";")
        options.quote = nil
        options.encoding = .latin1
        options.trimFields = true
        options.commentPrefixes = ["generiert:", "Legende:"]
        var decoder = CSVDecoder(options: options, origin: origin)
        return (try decoder.feed(bytes) + decoder.finish()).compactMap(\.record)
    }

    /// The current location from `Metadaten_Geographie_*.txt`: the row whose `bis_datum` is empty,
    /// else the row that ends last. Nil when the file has no usable row.
    static func geography(_ bytes: [UInt8], origin: String) throws -> DWDStationInfo? {
        var best: (until: String, info: DWDStationInfo)?
        for r in try records(bytes, origin: origin) {
            guard let id = r["Stations_id"].flatMap({ stationID($0.text) }),
                  let lat = r["Geogr.Breite"].flatMap({ Double($0.text) }),
                  let lon = r["Geogr.Laenge"].flatMap({ Double($0.text) }) else { continue }
            let until = r["bis_datum"]?.text ?? ""
            let info = DWDStationInfo(
                id: id, name: r["Stationsname"].map(\.text).flatMap { $0.isEmpty ? nil : $0 },
                latitude: lat, longitude: lon, height: r["Stationshoehe"].flatMap { Double($0.text) },
                since: r["von_datum"].map(\.text).flatMap { $0.isEmpty ? nil : $0 })
            // An empty end date (the current location) sorts after every real date.
            let key = until.isEmpty ? "99999999" : until
            if best == nil || key >= best!.until { best = (key, info) }
        }
        return best?.info
    }

    /// The periods (`yyyyMMdd` as numbers) whose times `Metadaten_Parameter_*.txt` states in MEZ
    /// ("Zeitbezug ist MEZ"); the rest of the file is UTC.
    static func mezPeriods(_ bytes: [UInt8], origin: String) throws -> [ClosedRange<Int>] {
        var periods: [ClosedRange<Int>] = []
        for r in try records(bytes, origin: origin) {
            let text = r.values.map(\.text).joined(separator: " ")
            guard text.contains("Zeitbezug ist MEZ"),
                  let from = r["Von_Datum"].flatMap({ Int($0.text) }) else { continue }
            let to = r["Bis_Datum"].flatMap { Int($0.text) } ?? 99_999_999
            if from <= to { periods.append(from...to) }
        }
        return periods
    }

    /// Parses the fixed-width station list (`*_Beschreibung_Stationen.txt`): a header line, a ruler of
    /// dashes, then one station per line. The ruler does not match the data columns, and names contain
    /// single spaces, so the numeric columns are read as tokens and the rest is split where two or
    /// more spaces separate the name from the Bundesland (and, in newer lists, the `Abgabe` column).
    static func stationList(_ text: String) -> (stations: [String: DWDStationInfo], skipped: [Int]) {
        var stations: [String: DWDStationInfo] = [:]
        var skipped: [Int] = []
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("Stations_id") || line.hasPrefix("---") { continue }
            guard let info = stationListEntry(line) else {
                skipped.append(index + 1)
                continue
            }
            stations[info.id] = info
        }
        return (stations, skipped)
    }

    /// One data line of the station list, already trimmed.
    static func stationListEntry(_ line: String) -> DWDStationInfo? {
        var rest = Substring(line)
        var tokens: [Substring] = []
        for _ in 0..<6 {
            rest = rest.drop(while: { $0 == " " })
            guard let end = rest.firstIndex(of: " ") else { return nil }
            tokens.append(rest[..<end])
            rest = rest[end...]
        }
        guard let id = stationID(tokens[0]),
              tokens[1].count == 8, tokens[2].count == 8,
              let height = Double(tokens[3]), let lat = Double(tokens[4]), let lon = Double(tokens[5]) else { return nil }
        let columns = rest.trimmingCharacters(in: .whitespaces)
            .components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let name = columns.first else { return nil }
        return DWDStationInfo(id: id, name: name, latitude: lat, longitude: lon, height: height,
                              state: columns.count > 1 ? columns[1] : nil, since: String(tokens[1]), until: String(tokens[2]))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
