import Foundation

/// Paths of the repository, its sample data and the shared public reference samples.
package enum Paths {
    /// The package root (this file is Sources/DatenwerkTesting/Paths.swift).
    package static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    package static func sample(_ name: String) -> String { root + "/SampleData/" + name }
    package static func pipeline(_ name: String) -> String { root + "/Pipelines/" + name }

    /// The shared public reference samples, read in place (never copied): `$DATENWERK_REFERENCE_DATA`, or
    /// `shared/reference-data` next to the repository. The one place that knows where they are — fixture
    /// pipelines write `$REFERENCE_DATA/<folder>/<file>` and `FixtureCase` puts this in.
    package static let referenceData: String = {
        if let path = ProcessInfo.processInfo.environment["DATENWERK_REFERENCE_DATA"], !path.isEmpty { return path }
        return URL(fileURLWithPath: root + "/../shared/reference-data").standardizedFileURL.path
    }()

    /// `<reference data>/<folder>/<file>`.
    package static func reference(_ path: String) -> String { referenceData + "/" + path }

    /// The built `datenwerk` executable.
    package static var executable: String { root + "/.build/debug/datenwerk" }

    /// A fresh temporary folder.
    package static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "datenwerk-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
