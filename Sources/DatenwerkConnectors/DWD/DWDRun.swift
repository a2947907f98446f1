import DatenwerkCore
import DatenwerkFormats
import DatenwerkHTTP
import DatenwerkPipeline
import Foundation
import Logging
import ZIPFoundation

/// One run of the DWD connector: reads station zips, extracted `produkt_*.txt` files and POI CSVs one
/// after another. A zip from a URL is downloaded to a temporary file first (a zip's directory sits at
/// its end); its `produkt_*` member is extracted to a temporary file and streamed through the CSV decoder.
struct DWDRun: ConnectorRun {
    enum Product: String, ConfigChoice {
        case auto, climate, poi
    }

    private enum DocumentKind {
        case archive, product, poi
    }

    private enum Mapping {
        case product(DWDProductMapping)
        case poi(DWDPOIMapping)
    }

    private struct Document {
        var reader: ChunkReader
        var decoder: CSVDecoder
        var mapping: Mapping
        var temporary: [URL]
        /// False for a member extracted from a zip (the zip's bytes were counted already).
        var countsBytes: Bool
    }

    private var documents: [(location: String, kind: DocumentKind)]
    private let session: FetchSession
    private let filter: Set<String>?
    private let stationListLocation: String?
    private let logger: Logger?
    private var stationList: [String: DWDStationInfo]?
    /// Locations and MEZ periods learnt from metadata during this run, by five-digit station id.
    private var known: [String: DWDStationInfo] = [:]
    private var mezPeriods: [String: [ClosedRange<Int>]] = [:]
    private var current: Document?
    private var stations = StationTracker()
    private var finishedBytes = 0
    private(set) var origins: [String] = []

    init(locations: [String], product: Product, filter: Set<String>?, stationList: String?, session: FetchSession, logger: Logger? = nil) throws {
        var documents: [(String, DocumentKind)] = []
        for location in locations {
            let name = (location as NSString).lastPathComponent
            if let kind = Self.kind(of: name, product: product) { documents.append((location, kind)) }
        }
        guard !documents.isEmpty else {
            throw ExtractError("no DWD data file among \(locations.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")); expected *.zip, produkt_*.txt or *-BEOB.csv")
        }
        // Metadata-only zips (Meta_Daten_*) first, so the locations they hold reach the product files.
        let metadataFirst = documents.filter { ($0.0 as NSString).lastPathComponent.hasPrefix("Meta_Daten") }
            + documents.filter { !($0.0 as NSString).lastPathComponent.hasPrefix("Meta_Daten") }
        self.documents = metadataFirst.map { (location: $0.0, kind: $0.1) }
        self.session = session
        self.filter = filter
        self.stationListLocation = stationList
        self.logger = logger
    }

    /// What a file is, by its name; nil for files that are only read as companions (`Metadaten_*`, station lists, HTML).
    private static func kind(of name: String, product: Product) -> DocumentKind? {
        let lower = name.lowercased()
        if lower.hasSuffix(".zip") { return product == .poi ? .poi : .archive }
        switch product {
        case .poi: return .poi
        case .climate: break
        case .auto: if lower.hasSuffix("-beob.csv") || lower.hasSuffix(".csv") { return .poi }
        }
        if lower.hasPrefix("metadaten_") || lower.contains("beschreibung_stationen") || lower.hasSuffix(".html") || lower.hasSuffix(".pdf") {
            return nil
        }
        return .product
    }

    var bytesRead: Int { finishedBytes + (current.map { $0.countsBytes ? $0.reader.bytesRead : 0 } ?? 0) }

    mutating func next() async throws -> ConnectorBatch? {
        if stationList == nil { stationList = try await loadStationList() }
        while true {
            if current == nil {
                guard !documents.isEmpty else { return nil }
                let (location, kind) = documents.removeFirst()
                var items: [StagedItem] = []
                switch kind {
                case .archive: current = try await openArchive(location, stationOnly: &items)
                case .product: current = try await openProduct(location)
                case .poi: current = try await openPOI(location)
                }
                if !items.isEmpty { return ConnectorBatch(items: items, recordsRead: 0, valuesRead: 0) }
                continue
            }
            let decoded: [DecodedRecord]
            var ended = false
            if let chunk = try await current!.reader.next() {
                decoded = try current!.decoder.feed(chunk)
            } else {
                decoded = try current!.decoder.finish()
                ended = true
            }
            defer { if ended { close() } }
            guard !decoded.isEmpty else { continue }
            var items: [StagedItem] = []
            // Accounting: the mappings count the values of each row; a quarantined row stands for those of its
            // values that were neither loaded nor skipped (an unreadable line for one).
            var tally = ValueTally()
            for entry in decoded {
                switch entry {
                case .rejected(let bad):
                    tally.read()
                    items.append(.quarantined(bad))
                case .record(let record):
                    let problems: [RecordError]
                    let firstItem = items.count
                    var books = ValueTally()
                    switch current!.mapping {
                    case .product(var m):
                        problems = m.map(record, stations: &stations, into: &items, tally: &books)
                        current!.mapping = .product(m)
                    case .poi(var m):
                        problems = m.map(record, stations: &stations, into: &items, tally: &books)
                        current!.mapping = .poi(m)
                    }
                    if var first = problems.first {
                        if problems.count > 1 { first.reason += " (and \(problems.count - 1) more in this record)" }
                        let values = books.unsettled(since: ValueTally(), items: items, from: firstItem)
                        items.append(.quarantined(QuarantinedRecord(error: first, raw: record.raw, values: values)))
                    }
                    tally.read(books.valuesRead)
                    tally.skipped.merge(books.skipped)
                }
            }
            return ConnectorBatch(items: items, recordsRead: decoded.count, valuesRead: tally.valuesRead, skipped: tally.skipped)
        }
    }

    private mutating func close() {
        guard let document = current else { return }
        if document.countsBytes { finishedBytes += document.reader.bytesRead }
        for url in document.temporary { try? FileManager.default.removeItem(at: url) }
        current = nil
    }

    // MARK: - Opening documents

    private mutating func loadStationList() async throws -> [String: DWDStationInfo] {
        guard let location = stationListLocation else { return [:] }
        let reader = try await ChunkReader.open(location, session: session)
        let bytes = try await reader.readAll(limit: 32 << 20)
        finishedBytes += reader.bytesRead
        origins.append(reader.origin)
        let (list, skipped) = DWDMetadata.stationList(DWDMetadata.latin1(bytes))
        if !skipped.isEmpty {
            logger?.warning("\(reader.origin): \(skipped.count) lines are not stations and were skipped (first: line \(skipped[0]))")
        }
        if list.isEmpty { throw ExtractError("\(reader.origin) holds no station lines; is it a *_Beschreibung_Stationen.txt file?") }
        return list
    }

    private func productOptions() -> CSVOptions {
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: ";")
        options.quote = nil
        options.encoding = .latin1
        options.trimFields = true
        return options
    }

    private mutating func openProduct(_ location: String) async throws -> Document? {
        let name = (location as NSString).lastPathComponent
        let fileID = DWDMetadata.stationID(inFileName: name)
        if let filter, let fileID, !filter.contains(fileID) { return nil }
        // Extracted archives: the Metadaten_* files next to the product file.
        if let fileID, !location.hasPrefix("http://"), !location.hasPrefix("https://") {
            let folder = (location as NSString).deletingLastPathComponent
            let geography = "\(folder)/Metadaten_Geographie_\(fileID).txt"
            if let bytes = FileManager.default.contents(atPath: geography) {
                learnGeography(Array(bytes), origin: displayPath(geography))
            }
            let parameters = "\(folder)/Metadaten_Parameter_\(fileID).txt"
            if let bytes = FileManager.default.contents(atPath: parameters) {
                mezPeriods[fileID] = try DWDMetadata.mezPeriods(Array(bytes), origin: displayPath(parameters))
            }
        }
        let reader = try await ChunkReader.open(location, session: session)
        origins.append(reader.origin)
        let mapping = try productMapping(fileName: name, stationID: fileID)
        return Document(reader: reader, decoder: CSVDecoder(options: productOptions(), origin: reader.origin),
                        mapping: .product(mapping), temporary: [], countsBytes: true)
    }

    private func productMapping(fileName: String, stationID: String?) throws -> DWDProductMapping {
        let metadata = stationID.flatMap { known[$0] }
        return try DWDProductMapping(fileName: fileName, metadata: metadata, stationList: stationList ?? [:], filter: filter,
                                     mezPeriods: stationID.flatMap { mezPeriods[$0] })
    }

    private mutating func learnGeography(_ bytes: [UInt8], origin: String) {
        guard let info = try? DWDMetadata.geography(bytes, origin: origin) else { return }
        known[info.id] = info.filled(from: known[info.id])
    }

    private mutating func openPOI(_ location: String) async throws -> Document {
        let reader = try await ChunkReader.open(location, session: session)
        origins.append(reader.origin)
        var options = CSVOptions()
        options.delimiter = UInt8(ascii: ";")
        options.quote = nil
        options.encoding = .latin1
        options.trimFields = true
        return Document(reader: reader, decoder: CSVDecoder(options: options, origin: reader.origin),
                        mapping: .poi(try DWDPOIMapping(filter: filter)), temporary: [], countsBytes: true)
    }

    /// Opens a station zip: reads its `Metadaten_*` members, extracts the `produkt_*` member.
    /// A metadata-only zip (`Meta_Daten_*`) yields its station and no document.
    private mutating func openArchive(_ location: String, stationOnly items: inout [StagedItem]) async throws -> Document? {
        var temporary: [URL] = []
        do {
            let origin: String
            let path: String
            if location.hasPrefix("http://") || location.hasPrefix("https://") {
                let reader = try await ChunkReader.open(location, session: session)
                origin = reader.origin
                let file = Self.temporaryFile("zip")
                temporary.append(file)
                guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
                    throw ExtractError("cannot create a temporary file in \(FileManager.default.temporaryDirectory.path)")
                }
                let handle = try FileHandle(forWritingTo: file)
                defer { try? handle.close() }
                var written = 0
                while let chunk = try await reader.next() {
                    written += chunk.count
                    guard written <= Self.maxTemporaryBytes else {
                        throw ExtractError("\(origin) is larger than \(Self.maxTemporaryBytes) bytes (DATENWERK_MAX_EXTRACT_BYTES); not downloaded further")
                    }
                    try handle.write(contentsOf: chunk)
                }
                finishedBytes += reader.bytesRead
                path = file.path
            } else {
                origin = displayPath(location)
                path = location
                finishedBytes += ((try? FileManager.default.attributesOfItem(atPath: location)[.size]) as? Int) ?? 0
            }
            origins.append(origin)

            let archive: Archive
            do {
                archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
            } catch {
                throw ExtractError("\(origin) is not a readable zip archive (\(error)); is the URL right?")
            }
            // The archive holds the file open: its name can go now, so nothing is left behind even after kill -9.
            Self.unlink(temporary)
            let entries = Array(archive).filter { $0.type == .file }
            func member(_ prefix: String) -> Entry? {
                entries.first {
                    let name = ($0.path as NSString).lastPathComponent
                    return name.hasPrefix(prefix) && name.lowercased().hasSuffix(".txt")
                }
            }
            func bytes(of entry: Entry) throws -> [UInt8] {
                guard entry.uncompressedSize < 16 << 20 else { throw ExtractError("\(origin): member \(entry.path) is larger than 16 MB") }
                var data = Data()
                _ = try archive.extract(entry) { data.append($0) }
                return Array(data)
            }

            let product = member("produkt_")
            let productName = product.map { ($0.path as NSString).lastPathComponent }
            let stationID = productName.flatMap(DWDMetadata.stationID(inFileName:))
                ?? DWDMetadata.stationID(inFileName: (location as NSString).lastPathComponent)
            if let filter, let stationID, !filter.contains(stationID) {
                for url in temporary { try? FileManager.default.removeItem(at: url) }
                return nil
            }
            let geography = member("Metadaten_Geographie_")
            if let geography { learnGeography(try bytes(of: geography), origin: "\(origin)!/\(geography.path)") }
            if let parameters = member("Metadaten_Parameter_") {
                let periods = try DWDMetadata.mezPeriods(try bytes(of: parameters), origin: "\(origin)!/\(parameters.path)")
                if let id = DWDMetadata.stationID(inFileName: parameters.path) { mezPeriods[id] = periods }
            }

            guard let product, let productName else {
                guard geography != nil, let info = stationID.flatMap({ known[$0] }) else {
                    throw ExtractError("\(origin) holds no produkt_*.txt member (members: \(entries.map(\.path).joined(separator: ", ")))")
                }
                // A metadata zip: the station itself is the news.
                let key = "dwd-cdc:\(info.id)"
                stations.emit(key, into: &items) { DWDProductMapping.station(id: info.id, key: key, info: info.filled(from: stationList?[info.id])) }
                for url in temporary { try? FileManager.default.removeItem(at: url) }
                return nil
            }
            let extracted = Self.temporaryFile("txt")
            temporary.append(extracted)
            try Self.extract(product, of: archive, to: extracted, origin: origin)
            let reader = try await ChunkReader.open(extracted.path, session: session)
            Self.unlink(temporary)
            let mapping = try productMapping(fileName: productName, stationID: stationID)
            return Document(reader: reader, decoder: CSVDecoder(options: productOptions(), origin: "\(origin)!/\(product.path)"),
                            mapping: .product(mapping), temporary: temporary, countsBytes: false)
        } catch {
            for url in temporary { try? FileManager.default.removeItem(at: url) }
            throw error
        }
    }

    /// Largest downloaded zip and largest extracted member (the declared size of a zip member can lie: the
    /// bytes are counted as they are written).
    /// `DATENWERK_MAX_EXTRACT_BYTES` overrides the default of 2 GiB.
    static let maxTemporaryBytes = ProcessInfo.processInfo.environment["DATENWERK_MAX_EXTRACT_BYTES"].flatMap { Int($0) }.map { max(1, $0) } ?? 2 << 30

    /// `datenwerk-dwd-<pid>-<uuid>.<ext>` in the temporary directory; files of processes that are gone are
    /// removed the first time one is made (a process killed between creating and opening one).
    private static func temporaryFile(_ ext: String) -> URL {
        sweepOnce
        return FileManager.default.temporaryDirectory.appendingPathComponent("datenwerk-dwd-\(getpid())-\(UUID().uuidString).\(ext)")
    }

    private static let sweepOnce: Void = {
        let directory = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] where name.hasPrefix("datenwerk-dwd-") {
            let parts = name.split(separator: "-")
            guard parts.count > 3, let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }()

    /// Removes the names of open temporary files (their bytes stay readable until they are closed).
    private static func unlink(_ files: [URL]) {
        for url in files { try? FileManager.default.removeItem(at: url) }
    }

    /// Extracts `entry`, counting the bytes as they come: a member larger than `maxTemporaryBytes` is an error
    /// naming it (a zip bomb fills no disk).
    private static func extract(_ entry: Entry, of archive: Archive, to url: URL, origin: String) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw ExtractError("cannot create a temporary file in \(FileManager.default.temporaryDirectory.path)")
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var written = 0
        _ = try archive.extract(entry, skipCRC32: false) { data in
            written += data.count
            guard written <= maxTemporaryBytes else {
                throw ExtractError("\(origin): member \(entry.path) unpacks to more than \(maxTemporaryBytes) bytes (DATENWERK_MAX_EXTRACT_BYTES); not extracted")
            }
            try handle.write(contentsOf: data)
        }
    }
}
