import DatenwerkCore
import DatenwerkFormats
import DatenwerkPipeline
import DatenwerkTesting
import Foundation
import Testing

/// `FileRecordSource` with a `FileMemory`, without a database: what it skips, what it says, and its limits.
@Suite struct FileRecordSourceMemoryTests {
    static let format = FormatSpec.csv(CSVOptions())

    /// A folder of `count` small CSV files `f-00.csv` …, each with one record.
    static func folder(_ count: Int) throws -> String {
        let dir = try Paths.temporaryDirectory()
        for i in 0..<count {
            try Data("a,b\n\(i),x\n".utf8).write(to: URL(fileURLWithPath: dir + String(format: "/f-%02d.csv", i)))
        }
        return dir
    }

    static func readAll(_ source: inout FileRecordSource) async throws -> Int {
        var records = 0
        while let batch = try await source.next() { records += batch.count }
        return records
    }

    /// What a first run remembers, read back from its checkpoint member as the next run would.
    static func remembered(_ source: FileRecordSource, reading: String) throws -> FileMemory {
        try #require(FileMemory(cursor: .object(source.sourceState), reading: reading))
    }

    @Test func aFolderOfUnchangedFilesNamesTheFirstTwentyAndCountsTheRest() async throws {
        let dir = try Self.folder(25)
        var first = try FileRecordSource(path: dir + "/f-*.csv", format: Self.format, memory: FileMemory(reading: "r"))
        #expect(try await Self.readAll(&first) == 25)
        let memory = try Self.remembered(first, reading: "r")
        #expect(memory.files.count == 25)

        var second = try FileRecordSource(path: dir + "/f-*.csv", format: Self.format, memory: memory)
        #expect(try await Self.readAll(&second) == 0)
        #expect(second.events.count == 21)
        let f00 = try #require(memory.files[dir + "/f-00.csv"])
        #expect(f00.size == 8)   // "a,b\n0,x\n"
        #expect(f00.sha256 == sha256Hex(Array("a,b\n0,x\n".utf8)))
        #expect(second.events.first?.hasSuffix("f-00.csv: unchanged since the last successful run (8 bytes, sha256 \(f00.sha256.prefix(12))…), not read again") == true)
        #expect(second.events.last == "… and 5 more files unchanged since the last successful run, not read again")
        // Skipped files stay remembered.
        #expect(try Self.remembered(second, reading: "r") == memory)
    }

    @Test func moreFilesThanTheLimitAreReadEveryTimeAndNotRemembered() async throws {
        let dir = try Self.folder(12)
        var first = try FileRecordSource(path: dir + "/f-*.csv", format: Self.format, memory: FileMemory(reading: "r"), maxFiles: 10)
        #expect(try await Self.readAll(&first) == 12)
        #expect(first.sourceState.isEmpty)
        #expect(first.events == ["12 files match \(dir)/f-*.csv; more than 10 are not remembered, so every one is read"])
    }

    /// A checkpoint edited by hand: entries that are not a size and a hash are dropped, never trapped on.
    @Test func aHostileCursorLosesItsBadEntriesOnly() throws {
        let entries: [(String, JSONValue)] = [
            ("nan", .object([.init("size", .number(.nan)), .init("sha256", .string("x"))])),
            ("huge", .object([.init("size", .number(1e300)), .init("sha256", .string("x"))])),
            ("negative", .object([.init("size", .number(-1)), .init("sha256", .string("x"))])),
            ("fraction", .object([.init("size", .number(1.5)), .init("sha256", .string("x"))])),
            ("no-hash", .object([.init("size", .number(3))])),
            ("text", .string("size 3")),
            ("good", .object([.init("size", .number(3)), .init("sha256", .string("abc"))])),
        ]
        let cursor = JSONValue.object([.init("files", .object([.init("reading", .string("r")), .init("read", .object(entries.map { .init($0.0, $0.1) }))]))])
        let memory = try #require(FileMemory(cursor: cursor, reading: "r"))
        #expect(memory.files == ["good": FileMemory.Fingerprint(size: 3, sha256: "abc")])
        #expect(FileMemory(cursor: cursor, reading: "other") == nil)
    }
}
