import DatenwerkOperations
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a system command to completion and captures its output. Used for the PostgreSQL server binaries only.
///
/// Uses `posix_spawn` and `waitpid` directly. Output goes through a temporary file, not a pipe:
/// `pg_ctl start` leaves a daemon behind that inherits the output descriptors, and reading a pipe to its
/// end would wait for the server to exit.
struct Subprocess {
    /// `posix_spawn_file_actions_addclosefrom_np` when the C library has it (shared with `JobProcess`).
    static var addCloseFrom: Spawning.AddCloseFrom? { Spawning.addCloseFrom }

    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs `arguments[0]` with the rest as arguments, optionally as another system user (via `runuser`).
    /// `environment`: variables added to (or replacing) this process's own for the command.
    static func run(_ arguments: [String], asUser user: String? = nil, environment: [String: String] = [:]) throws -> Result {
        var argv = arguments
        if let user { argv = ["/usr/sbin/runuser", "-u", user, "--"] + argv }
        let outputPath = NSTemporaryDirectory() + "datenwerk-\(getpid())-\(UUID().uuidString).out"
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours may leak into the child: a server daemon that inherited a lock file or a
        // socket would hold the lock (or keep the connection open) for as long as it runs. Worse, Foundation's
        // `Process` notices a child's exit by a socket the child holds: a daemon that inherited one created by
        // another thread keeps that child "running" forever. Closing every descriptor above stderr in the child
        // (glibc ≥ 2.34) is atomic; marking them close-on-exec first is the fallback and races with other threads.
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, 3)
        } else {
            Spawning.markOpenDescriptorsCloseOnExec()
        }

        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        var inherited: [String] = []
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            let name = text.split(separator: "=", maxSplits: 1).first.map(String.init) ?? text
            if environment[name] == nil { inherited.append(text) }
            p += 1
        }
        let cEnvironment = (inherited + environment.map { "\($0.key)=\($0.value)" }).map { strdup($0) } + [nil]
        defer { for pointer in cEnvironment { free(pointer) } }
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else {
            throw EmbeddedPostgres.Failure(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { break }
        }
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return Result(status: code, output: text)
    }
}
