import ArgumentParser
import DatenwerkCore
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkPublishing
import Foundation
import Logging
import NIOCore

/// `datenwerk export <dataset>`: a snapshot of a dataset as files, for portals that harvest from a plain
/// web server — the observations (streamed from PostgreSQL straight into the files), `datapackage.json`
/// with the CSV's Table Schema, and the DCAT-AP.de record `dcat.ttl`.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a dataset's observations, datapackage.json and DCAT-AP.de record (dcat.ttl) into a folder.",
        discussion: """
            The DCAT record links the downloads as <base-url>/datasets/<id>/observations.<ext>, the layout of
            `datenwerk serve`: publish the folder's files there (or pass the --base-url they will have).
            Exit codes: 0 ok, 64 unknown dataset or invalid configuration.
            """
    )

    @Argument(help: "The dataset id (the pipeline name unless its dataset block sets `id`).")
    var dataset: String

    @Option(name: .customLong("format"), help: "csv, geojson or ndjson; repeat or comma-separate for several (default: all three).")
    var formats: [String] = []

    @Option(help: "The folder to write into (created if missing; existing files of the export are replaced).")
    var out: String

    @Option(name: .customLong("pipelines"), help: "Pipeline files or folders that declare the datasets.")
    var pipelinePaths: [String] = ["Pipelines"]

    @Option(help: "The catalog file (who publishes the data).")
    var catalog = "catalog.yaml"

    @Option(help: "The public URL the DCAT record and datapackage.json point to.")
    var baseURL = "http://127.0.0.1:8080"

    @Flag(name: .shortAndLong, help: "Log more.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        var chosen: [ObservationFormat] = []
        for name in formats.flatMap({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }) {
            guard let format = ObservationFormat(fileExtension: name) else {
                stderr("error: --format '\(name)' is not a download format; use csv, geojson or ndjson")
                throw Exit.invalidConfiguration
            }
            if !chosen.contains(format) { chosen.append(format) }
        }
        if chosen.isEmpty { chosen = ObservationFormat.allCases }
        guard let catalogMetadata = try loadCatalog(catalog, logger: logger) else { throw Exit.invalidConfiguration }
        let (specs, problems, invalid) = loadPipelines(pipelinePaths)
        guard problems == 0 else {
            stderr("error: \(problems) problem\(problems == 1 ? "" : "s") in \(invalid) pipeline file\(invalid == 1 ? "" : "s"); nothing was exported.")
            throw Exit.invalidConfiguration
        }
        let datasets = specs.compactMap(\.datasetMetadata)
        guard let metadata = datasets.first(where: { $0.id == dataset }) else {
            let hint = closestMatch(to: dataset, in: datasets.map(\.id)).map { "; did you mean '\($0)'?" } ?? ""
            stderr("error: no dataset '\(dataset)' in \(pipelinePaths.joined(separator: ", "))\(hint) (datasets: \(datasets.map(\.id).joined(separator: ", ")))")
            throw Exit.invalidConfiguration
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let directory = out
        let base = baseURL
        let formats = chosen
        let written = try await DatabaseEnvironment(keepRunning: false, logger: logger).with { opened in
            try await Self.export(metadata, formats: formats, catalog: catalogMetadata, baseURL: base, into: directory, database: opened.database)
        }
        for (file, detail) in written { print("wrote \((directory as NSString).appendingPathComponent(file)) (\(detail))") }
    }

    /// Writes the files; returns (file name, what it holds) per file.
    static func export(
        _ dataset: DatasetMetadata, formats: [ObservationFormat], catalog: CatalogMetadata, baseURL: String, into directory: String, database: Database
    ) async throws -> [(String, String)] {
        let connections = ServerConnections(database: database, limit: 2, acquireTimeout: .seconds(30))
        do {
            let written = try await export(dataset, formats: formats, catalog: catalog, baseURL: baseURL, into: directory,
                                           store: ObservationStore(connections: connections))
            await connections.shutdown()
            return written
        } catch {
            await connections.shutdown()
            throw error
        }
    }

    private static func export(
        _ dataset: DatasetMetadata, formats: [ObservationFormat], catalog: CatalogMetadata, baseURL: String, into directory: String, store: ObservationStore
    ) async throws -> [(String, String)] {
        let state = try await store.state(pipeline: dataset.pipeline)
        let snapshot = try await store.snapshot(dataset, state: state)
        var written: [(String, String)] = []
        for format in formats {
            let name = "observations.\(format.fileExtension)"
            let path = (directory as NSString).appendingPathComponent(name)
            let temporary = path + ".partial"
            guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
                throw ExportError("cannot write \(temporary)")
            }
            var bytes = 0
            let rows: Int
            do {
                rows = try await store.writeObservations(dataset, snapshot: snapshot, filter: ObservationFilter(),
                                                         encoder: ObservationEncoder(format: format, bbox: snapshot.facts.bbox)) { chunk in
                    try handle.write(contentsOf: Data(chunk.readableBytesView))
                    bytes += chunk.readableBytes
                }
                try handle.close()
            } catch {
                try? handle.close()
                try? FileManager.default.removeItem(atPath: temporary)
                throw error
            }
            _ = try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
            written.append((name, "\(rows) observations, \(bytes) bytes"))
        }
        let package = DataPackage.json(dataset: dataset, facts: snapshot.facts, catalog: catalog, baseURL: baseURL, formats: formats)
        try Data(package.prettySerialized.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("datapackage.json")))
        written.append(("datapackage.json", "Frictionless data package with the Table Schema"))
        let record = DCATCatalog(catalog: catalog, baseURL: baseURL, datasets: [(dataset, snapshot.facts)], catalogModifiedMicros: state.lastModifiedMicros)
            .render(.turtle, collectionURL: "\(baseURL)/datasets/\(dataset.id)/dcat.ttl")
        try Data(record.utf8).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent("dcat.ttl")))
        written.append(("dcat.ttl", "DCAT-AP.de record"))
        return written
    }
}

struct ExportError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
