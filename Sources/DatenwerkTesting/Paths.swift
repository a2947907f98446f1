import Foundation
import Synchronization

/// The temporary folders this process made; removed when it exits (`Paths.temporaryDirectory`).
private let madeFolders = Mutex<[String]>([])

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

    /// A fresh temporary folder, removed with everything in it when the process exits normally (a full test
    /// run made ~500 and left them all: 15,000 `datenwerk-test-*` folders had piled up in /tmp here).
    /// Test artifacts meant to be kept go to `.build/test-artifacts/`, not here.
    package static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "datenwerk-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let first = madeFolders.withLock { folders in
            folders.append(path)
            return folders.count == 1
        }
        if first {
            atexit {
                for folder in madeFolders.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: folder) }
            }
        }
        return path
    }
}
