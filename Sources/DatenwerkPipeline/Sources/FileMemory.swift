import Crypto
import DatenwerkCore
import Foundation

/// What a file source remembers of the files a successful run read, so that the next run skips a file that has
/// not changed since: the file analogue of an HTTP conditional request (ETag → 304).
///
/// A file counts as unchanged only when its size and the SHA-256 of its bytes are what the last successful run
/// read, and the pipeline reads it the same way (`PipelineSpec.readingDigest`: source, transform, observations,
/// tenant and bad-record rules, templates included). Anything else — another size, one changed byte, an edited
/// mapping, a failed last run (its checkpoint never moved) — reads the file in full, and the load compares its
/// rows as always. `datenwerk run --full` (`RunContext.full`) reads every file regardless.
///
/// Kept in the checkpoint's cursor as `"files": {"reading": "<digest>", "read": {"<path>": {"size": 123, "sha256": "…"}}}`.
/// At most `maxFiles` files are remembered: a source matching more reads all of them, every run.
package struct FileMemory: Sendable, Equatable {
    package struct Fingerprint: Sendable, Equatable {
        package var size: Int
        /// Hexadecimal SHA-256 of the file's bytes as read (before any decoding).
        package var sha256: String

        package init(size: Int, sha256: String) {
            self.size = size
            self.sha256 = sha256
        }
    }

    /// More files than this in one source are not remembered (the checkpoint would hold an entry for each).
    package static let maxFiles = 100_000

    /// The `PipelineSpec.readingDigest` the files were read with.
    package var reading: String
    /// Path (as the source expanded it) → what was read.
    package var files: [String: Fingerprint]

    package init(reading: String, files: [String: Fingerprint] = [:]) {
        self.reading = reading
        self.files = files
    }

    /// The memory in a checkpoint cursor, if it was written for `reading` (nil when the pipeline now reads
    /// differently, or nothing was remembered).
    package init?(cursor: JSONValue?, reading: String) {
        guard let memory = cursor?["files"], memory["reading"]?.stringValue == reading,
              case .object(let members) = memory["read"] ?? .null else { return nil }
        var files: [String: Fingerprint] = [:]
        for member in members {
            // A cursor edited by hand may hold anything: an entry that is not a size and a hash is not remembered.
            guard let number = member.value["size"]?.numberValue, let size = Int(exactly: number), size >= 0,
                  let sha = member.value["sha256"]?.stringValue else { continue }
            files[member.key] = Fingerprint(size: size, sha256: sha)
        }
        self.init(reading: reading, files: files)
    }

    /// The checkpoint member (files in path order, so that the same memory is the same text).
    package var checkpointMember: JSONValue.Member {
        .init("files", .object([
            .init("reading", .string(reading)),
            .init("read", .object(files.sorted { $0.key < $1.key }.map { path, f in
                .init(path, .object([.init("size", .number(Double(f.size))), .init("sha256", .string(f.sha256))]))
            })),
        ]))
    }

    /// SHA-256 of a whole file, read in 1 MiB pieces (memory stays bounded whatever its size).
    package static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ExtractError("cannot open \(displayPath(path))") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let data: Data
            do {
                data = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw ExtractError("reading \(displayPath(path)) failed: \(error.localizedDescription)")
            }
            if data.isEmpty { break }
            hasher.update(data: data)
        }
        return hexString(hasher.finalize())
    }

    /// The size of a regular file (nil when it cannot be read).
    static func size(ofFile path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
    }
}

extension PipelineSpec {
    /// The reading rules' digest: SHA-256 over the parts of a pipeline that decide which observations a file
    /// becomes (`FileMemory`). Other keys (description, dataset, schedule) can change without reading files again.
    static func readingDigest(_ parts: [(String, String)]) -> String {
        var hasher = SHA256()
        // Raised when Datenwerk itself starts reading the same files differently (a fix in a decoder or a rule):
        // every remembered file is then read again once.
        hasher.update(data: Data("datenwerk-reading-rules-1\n".utf8))
        for (key, text) in parts {
            hasher.update(data: Data("\(key)\u{1F}\(text)\u{1E}".utf8))
        }
        return hexString(hasher.finalize())
    }
}
