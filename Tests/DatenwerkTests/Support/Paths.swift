import Foundation

/// Paths of the repository, its sample data and the shared public reference samples.
enum Paths {
    /// The package root (this file is Tests/DatenwerkTests/Support/Paths.swift).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func sample(_ name: String) -> String { root + "/SampleData/" + name }
    static func pipeline(_ name: String) -> String { root + "/Pipelines/" + name }

    /// `../shared/reference-data/<folder>/<file>`: real public samples, read in place (never copied).
    static func reference(_ path: String) -> String { root + "/../shared/reference-data/" + path }

    /// The built `datenwerk` executable.
    static var executable: String { root + "/.build/debug/datenwerk" }

    /// A fresh temporary folder.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "datenwerk-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
