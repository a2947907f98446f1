import Foundation
import Testing
import DatenwerkTesting

/// The house rules the README draws, checked on the sources: each target imports only targets of a lower layer,
/// and SQL is written only in DatenwerkPostgres.
@Suite("Architecture")
struct LayeringTests {
    /// The layers, lowest first (README "Architecture": the same picture).
    static let layers: [[String]] = [
        ["DatenwerkCore", "CLibXML2"],
        ["DatenwerkFormats", "DatenwerkTransforms", "DatenwerkHTTP"],
        ["DatenwerkPublishing"],
        ["DatenwerkPipeline"],
        ["DatenwerkConnectors", "DatenwerkOperations"],
        ["DatenwerkPostgres"],
        ["DatenwerkServer", "DatenwerkTesting"],
        ["datenwerk"],
    ]

    static var sources: URL { URL(fileURLWithPath: Paths.root).appendingPathComponent("Sources") }

    static func swiftFiles(in target: String) -> [URL] {
        let base = sources.appendingPathComponent(target)
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        return walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
    }

    @Test("every target is in a layer and imports only targets of lower layers")
    func importsGoDownward() throws {
        let layerOf = Dictionary(uniqueKeysWithValues: Self.layers.enumerated().flatMap { index, names in names.map { ($0, index) } })
        let targets = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(Set(targets) == Set(layerOf.keys), "Sources/ and the layer list differ: add the new target to a layer here and in the README")
        var checked = 0
        for target in targets {
            guard let own = layerOf[target] else { continue }
            for file in Self.swiftFiles(in: target) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let module = String(line.split(separator: " ").last ?? "")
                    guard let imported = layerOf[module] else { continue }
                    checked += 1
                    #expect(imported < own, "\(target)/\(file.lastPathComponent) imports \(module), which is not below it")
                }
            }
        }
        #expect(checked > 50)
    }

    @Test("SQL is written only in DatenwerkPostgres")
    func sqlOnlyInPostgres() throws {
        let statement = try Regex(#"\b(SELECT|INSERT INTO|UPDATE [a-z_.]+ SET|DELETE FROM|CREATE (TABLE|DATABASE|INDEX|EXTENSION)|DROP (TABLE|DATABASE|INDEX)|TRUNCATE|ON CONFLICT)\b"#)
        var found: [String] = []
        let targets = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { !$0.hasPrefix(".") && $0 != "DatenwerkPostgres" }
        for target in targets {
            for file in Self.swiftFiles(in: target) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(statement) {
                    found.append("\(target)/\(file.lastPathComponent):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(found.isEmpty, "SQL outside DatenwerkPostgres:\n\(found.joined(separator: "\n"))")
        // The check finds SQL where it is allowed, so it can fail.
        let sink = try String(contentsOf: Self.sources.appendingPathComponent("DatenwerkPostgres/PostgresObservationSink.swift"), encoding: .utf8)
        #expect(sink.contains(statement))
    }
}
