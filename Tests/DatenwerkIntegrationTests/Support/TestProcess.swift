import DatenwerkTesting
import Foundation

/// Outside programs the tests run (validators, gzip, chromium, `datenwerk` itself), to their end.
///
/// `run` waits on a thread of its own, never on one of Swift's cooperative threads: the machine has 2, and a
/// test waiting there for a validator that takes seconds (pySHACL, kubectl, chromium) stalls every other test's
/// tasks meanwhile — servers under test stopped answering and requests ran into their 30 s timeout.
/// Output goes to files, not pipes (a pipe nobody reads fills up and the child blocks).
enum TestProcess {
    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Standard output, then standard error after a marker when there is any.
        var combined: String { stdout + (stderr.isEmpty ? "" : "\n-- stderr --\n" + stderr) }
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    directory: String? = nil, input: Data? = nil) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try runBlocking(executable, arguments, environment: environment, directory: directory, input: input)
                })
            }.start()
        }
    }

    /// The same, waiting on the calling thread: only for code that is on a thread of its own already.
    static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                            directory: String? = nil, input: Data? = nil) throws -> Output {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (inPath, outPath, errPath) = (dir + "/in", dir + "/out", dir + "/err")
        FileManager.default.createFile(atPath: inPath, contents: input ?? Data())
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let stdin = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
        try? stdin.close()
        try? stdout.close()
        try? stderr.close()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}
