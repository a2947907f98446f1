import Foundation

/// Runs a system command to completion and captures its output. Used for the PostgreSQL server binaries only.
struct Subprocess {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `arguments[0]` with the rest as arguments, optionally as another system user (via `runuser`).
    static func run(_ arguments: [String], asUser user: String? = nil, environment: [String: String]? = nil) throws -> Result {
        var argv = arguments
        if let user { argv = ["/usr/sbin/runuser", "-u", user, "--"] + argv }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
