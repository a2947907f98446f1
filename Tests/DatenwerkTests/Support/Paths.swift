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

    /// The shared public reference samples, read in place (never copied): `$DATENWERK_REFERENCE_DATA`, or
    /// `shared/reference-data` next to the repository. The one place that knows where they are — fixture
    /// pipelines write `$REFERENCE_DATA/<folder>/<file>` and `FixtureCase` puts this in.
    static let referenceData: String = {
        if let path = ProcessInfo.processInfo.environment["DATENWERK_REFERENCE_DATA"], !path.isEmpty { return path }
        return URL(fileURLWithPath: root + "/../shared/reference-data").standardizedFileURL.path
    }()

    /// `<reference data>/<folder>/<file>`.
    static func reference(_ path: String) -> String { referenceData + "/" + path }

    /// The built `datenwerk` executable.
    static var executable: String { root + "/.build/debug/datenwerk" }

    /// A fresh temporary folder.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "datenwerk-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
