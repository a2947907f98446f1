import Foundation
import Testing
import DatenwerkTesting

/// Zip members are extracted with a size cap, and no temporary file outlives the process that made it (its
/// name is removed as soon as it is open; files of processes that are gone are swept).
@Suite(.serialized, .timeLimit(.minutes(2))) struct DWDTemporaryFileTests {
    static func pipeline(_ dir: String) throws -> String {
        let file = "\(dir)/dwd-cap.yaml"
        try Data("""
            version: 1
            name: dwd-cap
            tenant: "08136000"
            source:
              kind: dwd-cdc
              url: \(Paths.reference("dwd-cdc/observations_recent_RR_akt.zip"))
              product: climate
            """.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    static func leftovers(pid: Int32) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        return names.filter { $0.hasPrefix("datenwerk-dwd-\(pid)-") }
    }

    @Test func aMemberLargerThanTheCapIsAnErrorNamingIt() async throws {
        let dir = try Paths.temporaryDirectory()
        let run = try ChildProcess(["run", try Self.pipeline(dir), "--dry-run"], environment: ["DATENWERK_MAX_EXTRACT_BYTES": "300"])
        #expect(await run.wait() != 0)
        #expect(run.text.contains("member produkt_rr_stunde_20180914_20200316_00020.txt unpacks to more than 300 bytes"), "\(run.text)")
        #expect(Self.leftovers(pid: run.process.processIdentifier).isEmpty)
        // The same file within the cap reads.
        let fine = try ChildProcess(["run", try Self.pipeline(dir), "--dry-run"], environment: ["DATENWERK_MAX_EXTRACT_BYTES": "100000"])
        #expect(await fine.wait() == 0, "\(fine.text)")
        #expect(Self.leftovers(pid: fine.process.processIdentifier).isEmpty)
    }

    @Test func filesOfDeadProcessesAreSwept() async throws {
        // A pid that cannot be running (above the kernel's pid_max of 4194304).
        let stale = NSTemporaryDirectory() + "/datenwerk-dwd-9999999-\(UUID().uuidString).txt"
        FileManager.default.createFile(atPath: stale, contents: Data("x".utf8))
        let dir = try Paths.temporaryDirectory()
        let run = try ChildProcess(["run", try Self.pipeline(dir), "--dry-run"], environment: [:])
        #expect(await run.wait() == 0, "\(run.text)")
        #expect(!FileManager.default.fileExists(atPath: stale))
    }
}
