#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Named points in a run where a test can make the process die, deterministically.
///
/// `DATENWERK_FAILPOINT=<point>[:<pipeline>][=<signal>][,…]` is read once per process. When a run of `<pipeline>`
/// (any pipeline without it) reaches `<point>`, the process dies at once with `<signal>` (default `SIGKILL`;
/// also `SIGILL`, `SIGSEGV`, `SIGABRT`, `SIGBUS`, `SIGFPE`, `SIGTRAP`, `abort`, or `trap`: a real Swift
/// `fatalError`, message and backtrace included), like a crash in that spot would. The points, in the order a run passes them:
///
/// | point | where |
/// |---|---|
/// | `run-started` | the run row exists, nothing read yet |
/// | `extract` (alias `crash-in-connector`, default signal SIGILL) | before each batch is read from the source/connector |
/// | `after-copy` | every batch is copied (into `observations` on a first load, else into staging), stations and quarantine not yet written, nothing committed |
/// | `after-merge` | observations merged in the load transaction, not committed |
/// | `before-commit` | run row and checkpoint written, the transaction not yet committed |
/// | `after-commit` | a first load committed, its new hourly and daily dashboard buckets' second transaction not yet (HourlySideLoad) |
///
/// Every point passed is also reported, when `DATENWERK_PROGRESS_FD` names a descriptor (a job's child process,
/// see `JobProcess`), as one line `<point>\n`, so the worker can say where a crashed job's process was.
package enum FailPoint {
    package struct Armed: Sendable, Hashable {
        package var point: String
        package var pipeline: String?
        /// A signal number, or nil for `abort()`.
        package var signal: Int32?
        /// A real Swift runtime trap (`fatalError`: message on stderr, then SIGILL), as a failed precondition would.
        package var trap = false

        package init(point: String, pipeline: String? = nil, signal: Int32? = SIGKILL) {
            self.point = point
            self.pipeline = pipeline
            self.signal = signal
        }
    }

    /// The points run steps map to (for "last step" in a crash report).
    package static let steps: [String: String] = [
        "run-started": "configure", "extract": "extract", "after-copy": "load", "after-merge": "load", "before-commit": "load", "after-commit": "load",
    ]

    package static let signalNames: [(String, Int32)] = [
        ("SIGKILL", SIGKILL), ("SIGILL", SIGILL), ("SIGSEGV", SIGSEGV), ("SIGABRT", SIGABRT), ("SIGBUS", SIGBUS),
        ("SIGFPE", SIGFPE), ("SIGTRAP", SIGTRAP), ("SIGTERM", SIGTERM), ("SIGINT", SIGINT), ("SIGQUIT", SIGQUIT),
        ("SIGSYS", SIGSYS), ("SIGXCPU", SIGXCPU), ("SIGXFSZ", SIGXFSZ), ("SIGHUP", SIGHUP), ("SIGPIPE", SIGPIPE),
    ]

    /// `SIGILL (illegal instruction — a Swift trap)`-style name of a signal number.
    package static func describe(signal: Int32) -> String {
        let name = signalNames.first { $0.1 == signal }?.0 ?? "signal \(signal)"
        let meaning: String
        switch signal {
        case SIGILL, SIGTRAP: meaning = "illegal instruction: a Swift runtime trap, e.g. a failed precondition or overflow"
        case SIGSEGV: meaning = "segmentation fault: bad memory access or stack overflow"
        case SIGBUS: meaning = "bus error"
        case SIGABRT: meaning = "abort"
        case SIGFPE: meaning = "arithmetic fault"
        case SIGKILL: meaning = "killed: out of memory, or by an operator or a fail point"
        case SIGTERM, SIGINT, SIGQUIT, SIGHUP: meaning = "asked to stop"
        default: meaning = ""
        }
        return meaning.isEmpty ? name : "\(name) (\(meaning))"
    }

    /// Parses `DATENWERK_FAILPOINT`; unknown signal names fall back to SIGKILL.
    package static func parse(_ text: String) -> [Armed] {
        text.split(separator: ",").compactMap { item in
            var spec = item.trimmingSpaces
            guard !spec.isEmpty else { return nil }
            var signal: Int32? = SIGKILL
            var trap = false
            if let eq = spec.firstIndex(of: "=") {
                let name = spec[spec.index(after: eq)...].uppercased()
                spec = String(spec[..<eq])
                if name == "TRAP" { signal = SIGILL; trap = true } else if name == "ABORT" { signal = nil } else {
                    let full = name.hasPrefix("SIG") ? name : "SIG" + name
                    signal = signalNames.first { $0.0 == full }?.1 ?? SIGKILL
                }
            } else if spec.hasPrefix("crash-in-connector") {
                signal = SIGILL
            }
            var point = spec
            var pipeline: String?
            if let colon = spec.firstIndex(of: ":") {
                point = String(spec[..<colon])
                pipeline = String(spec[spec.index(after: colon)...])
            }
            if point == "crash-in-connector" { point = "extract" }
            var armed = Armed(point: point, pipeline: pipeline, signal: signal)
            armed.trap = trap
            return armed
        }
    }

    /// What this process has armed (read once).
    package static let armed: [Armed] = getenv("DATENWERK_FAILPOINT").map { parse(String(cString: $0)) } ?? []

    private static let progressFD: Int32? = getenv("DATENWERK_PROGRESS_FD").flatMap { Int32(String(cString: $0)) }
    /// The last point written to the progress descriptor (a point is reported once per change).
    private static let lastReported = Mutex("")

    /// A run of `pipeline` reached `point`: die here if a test armed it; report it to a watching worker.
    package static func hit(_ point: String, pipeline: String? = nil) {
        if progressFD != nil { report(point) }
        guard !armed.isEmpty else { return }
        for a in armed where a.point == point && (a.pipeline == nil || a.pipeline == pipeline) {
            if a.trap { fatalError("fail point '\(point)' armed with DATENWERK_FAILPOINT") }
            die(a.signal)
        }
    }

    /// Ends the process with `signal` (nil: `abort()`), bypassing any handler (no backtrace, no clean-up).
    package static func die(_ number: Int32?) -> Never {
        guard let number else {
            signal(SIGABRT, SIG_DFL)   // no backtrace handler in the way
            abort()
        }
        if number != SIGKILL {
            signal(number, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, number)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
        kill(getpid(), number)
        while true { pause() }
    }

    private static func report(_ point: String) {
        guard let fd = progressFD else { return }
        lastReported.withLock { last in
            guard point != last else { return }
            last = point
            var line = point + "\n"
            line.withUTF8 { bytes in _ = write(fd, bytes.baseAddress, bytes.count) }
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
