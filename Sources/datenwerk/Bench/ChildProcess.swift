import DatenwerkOperations
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process of `datenwerk bench`, started with `posix_spawn` (not Foundation's `Process`, which on Linux
/// can wait forever for a child that left a descriptor to a daemon) and reaped with `wait4`, which also gives its
/// peak RSS and CPU. Output goes to a file. Everything blocks the calling thread: the bench is a synchronous
/// command, so no wait sits on the cooperative pool.
struct ChildProcess {
    let pid: pid_t
    let started: Double
    let arguments: [String]
    let outputPath: String

    struct Result {
        var status: Int32
        var wallSeconds: Double
        var userSeconds: Double
        var systemSeconds: Double
        /// Peak resident set of the child, bytes.
        var maxRSS: Int
        var output: String

        var cpuSeconds: Double { userSeconds + systemSeconds }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `arguments[0]` (a path, or a name looked up in `PATH`) with `environment` (nil values remove a
    /// variable) and stdout + stderr in `outputPath`.
    static func start(_ arguments: [String], environment: [String: String?] = [:], outputPath: String) throws -> ChildProcess {
        var env = ProcessInfo.processInfo.environment
        for (name, value) in environment { env[name] = value }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let closeFrom = Spawning.addCloseFrom {
            _ = closeFrom(&actions, 3)
        } else {
            Spawning.markOpenDescriptorsCloseOnExec()
        }
        let cArguments = arguments.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        let cEnvironment = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in cEnvironment { free(pointer) } }
        var pid: pid_t = 0
        let started = now()
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        return ChildProcess(pid: pid, started: started, arguments: arguments, outputPath: outputPath)
    }

    /// Runs to the end and returns what it used.
    static func run(_ arguments: [String], environment: [String: String?] = [:], outputPath: String) throws -> Result {
        try start(arguments, environment: environment, outputPath: outputPath).wait()
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the child's end (`wait4`) and returns its status, times and peak RSS.
    func wait() -> Result {
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 {
            guard errno == EINTR else { break }
        }
        let wall = ChildProcess.now() - started
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return Result(
            status: code, wallSeconds: wall,
            userSeconds: Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
            systemSeconds: Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6,
            maxRSS: Int(usage.ru_maxrss) * 1024, output: text
        )
    }

    /// Monotonic seconds.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}

/// CPU used by every process of a PostgreSQL cluster, from `/proc`: the postmaster's own time plus that of the
/// children it has reaped (`cutime`, `cstime`: backends that ended) plus that of its live children. The
/// difference of two readings is the server's CPU in between, whichever backends came and went.
struct ClusterCPU {
    let postmaster: pid_t
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// The postmaster's pid from the first line of `postmaster.pid` in the data directory.
    init?(dataDirectory: String) {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let pid = pid_t(first.trimmingCharacters(in: .whitespaces))
        else { return nil }
        postmaster = pid
    }

    /// Fields after the command name of `/proc/<pid>/stat` (field 3 of stat(5) is element 0).
    static func stat(_ pid: pid_t) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// The postmaster's children now, with their state (`Z`: ended, not yet reaped).
    func children() -> [(pid: pid_t, state: Substring)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = pid_t(entry), pid != postmaster, let fields = Self.stat(pid), fields.count > 1,
                  pid_t(fields[1]) == postmaster else { return nil }
            return (pid, fields[0])
        }
    }

    /// Waits (up to `timeout` seconds) until the client backends that were not there `before` have ended and been
    /// reaped: a backend ends a moment after its client, and an ended backend that the postmaster has not reaped
    /// yet shows no CPU at all, so reading earlier would miss its work.
    func settle(after before: Set<pid_t>, timeout: Double = 5) {
        let deadline = ChildProcess.now() + timeout
        while ChildProcess.now() < deadline {
            let pending = children().filter { child in
                if child.state == "Z" { return true }
                guard !before.contains(child.pid),
                      let command = try? String(contentsOfFile: "/proc/\(child.pid)/cmdline", encoding: .utf8) else { return false }
                return command.contains("[local]") || command.contains("127.0.0.1")
            }
            if pending.isEmpty { return }
            usleep(10_000)
        }
    }

    /// Seconds of CPU so far.
    func seconds() -> Double {
        var total = 0.0
        if let own = Self.stat(postmaster), own.count > 14 {
            // utime 14, stime 15, cutime 16, cstime 17 (1-based stat(5) fields) → elements 11…14.
            total += (11...14).reduce(0.0) { $0 + (Double(own[$1]) ?? 0) }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = pid_t(entry), pid != postmaster, let fields = Self.stat(pid), fields.count > 12,
                  pid_t(fields[1]) == postmaster else { continue }
            total += (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        }
        return total / ticks
    }
}

/// Peak and current RSS of a live process (`VmHWM`, `VmRSS` in `/proc/<pid>/status`); `resetPeak` starts a new peak.
enum ProcessMemory {
    static func peakRSS(_ pid: pid_t) -> Int? { field("VmHWM", pid) }

    static func resetPeak(_ pid: pid_t) {
        // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
        if let handle = FileHandle(forWritingAtPath: "/proc/\(pid)/clear_refs") {
            handle.write(Data("5".utf8))
            try? handle.close()
        }
    }

    /// True while the process runs (not ended, not a zombie waiting to be reaped).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let fields = ClusterCPU.stat(pid), let state = fields.first else { return false }
        return state != "Z" && state != "X"
    }

    static func cpuSeconds(_ pid: pid_t) -> Double {
        guard let fields = ClusterCPU.stat(pid), fields.count > 12 else { return 0 }
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private static func field(_ name: String, _ pid: pid_t) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let number = line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return number.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
