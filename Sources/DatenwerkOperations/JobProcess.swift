import DatenwerkCore
import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// One job run in a child process (`datenwerk run-job …`), so that a crash (a trap, a signal) in a connector or
/// decoder ends that process only, never the worker or `datenwerk serve` around it.
///
/// The child is started with `posix_spawn` (every descriptor above 3 closed in the child, see `Subprocess`) from a
/// dedicated thread that lives exactly as long as the child: the child asks for SIGKILL when that thread ends
/// (`PR_SET_PDEATHSIG`), so it never outlives a killed worker. The same thread waits for it (poll + `waitpid`),
/// never a thread of the cooperative pool. The child's standard error is passed through and its end kept (a
/// Swift trap prints its "Fatal error: …" there); descriptor 3 is a pipe on which the child reports the fail
/// points it passes (`FailPoint`), i.e. how far the run got.
package final class JobProcess: Sendable {
    package enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signaled(Int32)
    }

    package struct Outcome: Sendable {
        package var termination: Termination
        /// The last point the run passed (`run-started`, `extract`, `after-copy`, `after-merge`, `before-commit`).
        package var lastPoint: String?
        /// The last lines of the child's standard error.
        package var errorTail: String
        /// The last line of standard error that says why a Swift program stopped ("Fatal error: …",
        /// "Precondition failed", "fatal: …"), kept even when a long backtrace followed it.
        package var fatalLine: String?

        package init(termination: Termination, lastPoint: String? = nil, errorTail: String = "", fatalLine: String? = nil) {
            self.termination = termination
            self.lastPoint = lastPoint
            self.errorTail = errorTail
            self.fatalLine = fatalLine
        }

        /// "SIGILL (illegal instruction …)" or "exit status 75".
        package var describeTermination: String {
            switch termination {
            case .signaled(let signal): return "died of \(FailPoint.describe(signal: signal))"
            case .exited(let code): return "exited with status \(code)"
            }
        }

        /// The Swift runtime's own words, when the child trapped ("Fatal error: Index out of range").
        package var fatalMessage: String? {
            (fatalLine ?? errorTail.split(separator: "\n").last(where: Self.isFatal).map(String.init))
                .map { String($0.trimmingCharacters(in: .whitespaces).prefix(300)) }
        }

        static func isFatal(_ line: Substring) -> Bool {
            line.contains("Fatal error") || line.hasPrefix("fatal:") || line.contains("Precondition failed") || line.contains("Assertion failed")
        }
    }

    /// The running executable (`/proc/self/exe`), for spawning `datenwerk` itself.
    package static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    package let pid: pid_t
    private struct State {
        var outcome: Outcome?
        var waiters: [CheckedContinuation<Outcome, Never>] = []
    }

    private let state = Mutex(State())

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `executable arguments…` with the current environment plus `environment` (without blocking a thread
    /// of the cooperative pool: the spawn happens on the child's own thread).
    package static func start(executable: String, arguments: [String], environment: [String: String] = [:]) async throws -> JobProcess {
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<JobProcess, any Error>) in
            let thread = Thread {
                let spawned: Spawned
                do {
                    spawned = try Spawned(executable: executable, arguments: arguments, environment: environment)
                } catch {
                    started.resume(throwing: error)
                    return
                }
                let process = JobProcess(pid: spawned.pid)
                started.resume(returning: process)
                process.finish(spawned.watch())
            }
            thread.name = "datenwerk-job-process"
            thread.start()
        }
    }

    /// Until the child has ended (does not block a thread).
    package func wait() async -> Outcome {
        await withCheckedContinuation { continuation in
            let ended = state.withLock { state -> Outcome? in
                if let outcome = state.outcome { return outcome }
                state.waiters.append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    /// Sends `signal` unless the child has already been reaped.
    package func kill(_ signal: Int32 = SIGKILL) {
        // Under the lock: the pid cannot be reaped (and reused) between the check and the signal.
        state.withLock { state in
            if state.outcome == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    package var hasEnded: Bool { state.withLock { $0.outcome != nil } }

    private func finish(_ result: Outcome) {
        let waiting = state.withLock { state in
            state.outcome = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for continuation in waiting { continuation.resume(returning: result) }
    }

    package struct SpawnError: Error, CustomStringConvertible {
        package var description: String
    }

    /// The spawned child and the read ends of its pipes (only touched by the watching thread).
    private struct Spawned {
        let pid: pid_t
        let errorPipe: Int32
        let progressPipe: Int32

        init(executable: String, arguments: [String], environment: [String: String]) throws {
            var errorFDs: [Int32] = [0, 0], progressFDs: [Int32] = [0, 0]
            guard pipe(&errorFDs) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
            guard pipe(&progressFDs) == 0 else {
                close(errorFDs[0]); close(errorFDs[1])
                throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
            }
            // Not inherited by other children (spawns elsewhere close everything above stderr anyway).
            for fd in errorFDs + progressFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, errorFDs[1], 2)
            posix_spawn_file_actions_adddup2(&actions, progressFDs[1], 3)
            if let closeFrom = Spawning.addCloseFrom {
                _ = closeFrom(&actions, 4)
            } else {
                Spawning.markOpenDescriptorsCloseOnExec()
            }
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            env["DATENWERK_PROGRESS_FD"] = "3"
            env["DATENWERK_JOB_PARENT"] = String(getpid())
            let argv = ([executable] + arguments).map { strdup($0) } + [nil]
            let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for p in argv { free(p) }
                for p in envp { free(p) }
            }
            var pid: pid_t = 0
            let status = posix_spawn(&pid, executable, &actions, nil, argv, envp)
            close(errorFDs[1])
            close(progressFDs[1])
            guard status == 0 else {
                close(errorFDs[0]); close(progressFDs[0])
                throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))")
            }
            self.pid = pid
            self.errorPipe = errorFDs[0]
            self.progressPipe = progressFDs[0]
        }

        /// Passes the child's stderr through and follows its progress until it has ended; reaps it.
        func watch() -> Outcome {
            var tail: [UInt8] = []
            var line: [UInt8] = []
            var fatalLine: String?
            var progress: [UInt8] = []
            var open = [errorPipe, progressPipe]
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var status: Int32 = 0
            var reaped = false
            defer {
                close(errorPipe)
                close(progressPipe)
            }
            func drain(_ fd: Int32) -> Bool {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 { return false }   // end of file
                if n < 0 { return errno == EINTR || errno == EAGAIN }
                let bytes = buffer[0..<n]
                if fd == errorPipe {
                    bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
                    tail.append(contentsOf: bytes)
                    if tail.count > 8192 { tail.removeFirst(tail.count - 8192) }
                    for byte in bytes {
                        if byte == UInt8(ascii: "\n") {
                            let text = Substring(String(decoding: line, as: UTF8.self))
                            if Outcome.isFatal(text) { fatalLine = String(text) }
                            line.removeAll(keepingCapacity: true)
                        } else if line.count < 2048 {
                            line.append(byte)
                        }
                    }
                } else {
                    progress.append(contentsOf: bytes)
                    if progress.count > 4096 { progress.removeFirst(progress.count - 4096) }
                }
                return true
            }
            while !reaped || !open.isEmpty {
                if !open.isEmpty {
                    var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                    // After the child has been reaped, only what is already buffered is read (a grandchild that
                    // inherited a pipe must not keep us waiting).
                    let ready = poll(&fds, nfds_t(fds.count), reaped ? 0 : 200)
                    if ready > 0 {
                        for entry in fds where entry.revents != 0 {
                            if !drain(entry.fd) { open.removeAll { $0 == entry.fd } }
                        }
                    } else if reaped {
                        open = []
                    }
                }
                if !reaped {
                    let r = waitpid(pid, &status, open.isEmpty ? 0 : WNOHANG)
                    if r == pid { reaped = true } else if r == -1 && errno != EINTR { reaped = true; status = 0x7f00 }
                }
            }
            let termination: Termination = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            let lines = String(decoding: progress, as: UTF8.self).split(separator: "\n")
            return Outcome(termination: termination, lastPoint: lines.last.map(String.init),
                           errorTail: String(decoding: tail, as: UTF8.self), fatalLine: fatalLine)
        }
    }
}

/// What every `posix_spawn` of ours needs (here for `JobProcess`; `DatenwerkPostgres`'s `Subprocess` uses it too).
package enum Spawning {
    package typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// `posix_spawn_file_actions_addclosefrom_np`, looked up at run time (the Glibc module does not export it).
    package static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Sets FD_CLOEXEC on every open descriptor above stderr (Glibc's posix_spawn has no portable "close from").
    package static func markOpenDescriptorsCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let fd = Int32(entry), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
