import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL + PostGIS cluster that Datenwerk starts itself from the system's server binaries
/// when no `DATABASE_URL` is given.
///
/// Layout under `root` (default `/var/lib/datenwerk/postgres` for root, `~/.local/share/datenwerk/postgres` otherwise):
/// `data/` (the cluster), `socket/` (Unix socket), `postgres.log`, `password` (for TCP clients), `lock`, `users`.
///
/// Several `datenwerk` processes share one running cluster: each holds a shared lock on `users` while it runs;
/// the last one to leave stops the server (unless told to keep it running).
// `@unchecked Sendable`, justified: the two mutable fields (`startedServer`, `usersLock`) are written only by
// `start()` and `stop()`, which the owner calls once each, in that order, and both run under the cluster's
// cross-process file lock (`root/lock`).
package final class EmbeddedPostgres: @unchecked Sendable {
    package struct Configuration: Sendable {
        package var root: String
        package var port: Int
        package var binDirectory: String?
        package var keepRunning: Bool
        /// Server `max_connections` (each datenwerk process uses a pool of up to 8).
        package var maxConnections = 100
        package var database: String = "datenwerk"
        package var user: String = "datenwerk"

        package init(root: String? = nil, port: Int? = nil, binDirectory: String? = nil, keepRunning: Bool = false) {
            let env = ProcessInfo.processInfo.environment
            self.root = root ?? env["DATENWERK_PG_ROOT"] ?? EmbeddedPostgres.defaultRoot()
            self.port = port ?? env["DATENWERK_PG_PORT"].flatMap(Int.init) ?? 54329
            self.binDirectory = binDirectory ?? env["DATENWERK_PG_BIN"]
            self.keepRunning = keepRunning || env["DATENWERK_PG_KEEP"] == "1"
        }
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package let configuration: Configuration
    /// True when this process started the server (rather than reusing a running one).
    package private(set) var startedServer = false
    private var usersLock: Int32 = -1
    private let serverUser: String?

    package init(_ configuration: Configuration) {
        self.configuration = configuration
        self.serverUser = getuid() == 0 ? "postgres" : nil
    }

    package static func defaultRoot() -> String {
        let env = ProcessInfo.processInfo.environment
        if getuid() == 0 { return "/var/lib/datenwerk/postgres" }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/datenwerk/postgres" }
        return NSHomeDirectory() + "/.local/share/datenwerk/postgres"
    }

    package var dataDirectory: String { configuration.root + "/data" }
    package var socketDirectory: String { configuration.root + "/socket" }
    package var socketPath: String { socketDirectory + "/.s.PGSQL.\(configuration.port)" }
    package var logFile: String { configuration.root + "/postgres.log" }
    /// Present while the cluster was started by `datenwerk db start`: then no other command stops it at its exit,
    /// only `datenwerk db stop` (`shutdown()`) does.
    package var keepMarker: String { configuration.root + "/kept-running" }

    /// Marks the cluster as started on purpose (`datenwerk db start`): commands that use it leave it running.
    package func keepUntilShutdown() throws {
        try Data("started by `datenwerk db start`; `datenwerk db stop` stops it\n".utf8).write(to: URL(fileURLWithPath: keepMarker))
    }

    /// The password for TCP connections on the loopback port (Unix-socket connections need none).
    package var password: String? {
        (try? String(contentsOfFile: configuration.root + "/password", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A `psql` command line that connects to this cluster.
    package var psqlCommand: String {
        "psql -h \(socketDirectory) -p \(configuration.port) -U \(configuration.user) \(configuration.database)"
    }

    /// Initialises the cluster if needed, starts it unless running, and registers this process as a user.
    package func start() throws {
        let bin = try Self.findBinaries(configuration.binDirectory)
        try FileManager.default.createDirectory(atPath: configuration.root, withIntermediateDirectories: true)
        try withFileLock(configuration.root + "/lock") {
            if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
                try initialise(bin: bin)
            }
            if try !isRunning(bin: bin) {
                try writeSettings()
                try startServer(bin: bin)
                startedServer = true
            } else if let runningPort = runningPort(), runningPort != configuration.port {
                throw Failure(description: "the embedded PostgreSQL in \(configuration.root) already runs on port \(runningPort), not \(configuration.port); set DATENWERK_PG_PORT=\(runningPort) or stop it with: pg_ctl -D \(dataDirectory) stop")
            }
            usersLock = open(configuration.root + "/users", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if usersLock >= 0 { _ = flock(usersLock, LOCK_SH) }
        }
    }

    /// Unregisters this process; stops the server when no other `datenwerk` uses it (unless `keepRunning`).
    package func stop() {
        guard usersLock >= 0 else { return }
        try? withFileLock(configuration.root + "/lock") {
            _ = flock(usersLock, LOCK_UN)
            let lastUser = flock(usersLock, LOCK_EX | LOCK_NB) == 0
            _ = flock(usersLock, LOCK_UN)
            close(usersLock)
            usersLock = -1
            if lastUser, !configuration.keepRunning, !FileManager.default.fileExists(atPath: keepMarker),
               let bin = try? Self.findBinaries(configuration.binDirectory) {
                _ = try? Subprocess.run([bin + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "stop"], asUser: serverUser)
            }
        }
    }

    /// True when the cluster's server process runs.
    package func isRunning() throws -> Bool {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return false }
        return try isRunning(bin: Self.findBinaries(configuration.binDirectory))
    }

    /// Stops the server now, whoever uses it (`datenwerk db stop`).
    package func shutdown() throws {
        try? FileManager.default.removeItem(atPath: keepMarker)
        guard try isRunning() else { return }
        let bin = try Self.findBinaries(configuration.binDirectory)
        let result = try Subprocess.run([bin + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "stop"], asUser: serverUser)
        guard result.status == 0 else { throw Failure(description: "pg_ctl stop failed: \(result.output)") }
    }

    // MARK: - Steps

    private func initialise(bin: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        let password = Self.randomPassword()
        let passwordFile = configuration.root + "/password"
        fm.createFile(atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let pwfile = configuration.root + "/initdb.pw"
        fm.createFile(atPath: pwfile, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        defer { try? fm.removeItem(atPath: pwfile) }
        if let user = serverUser {
            try checkReachable(user: user)
            for path in [configuration.root, socketDirectory, pwfile] {
                _ = try Subprocess.run(["/bin/chown", user, path])
            }
            chmod(configuration.root, 0o755)
        }
        let result = try Subprocess.run([
            bin + "/initdb", "-D", dataDirectory, "-U", configuration.user, "--pwfile", pwfile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        ], asUser: serverUser)
        guard result.status == 0 else {
            throw Failure(description: "initdb failed for \(dataDirectory) (exit \(result.status)):\n\(result.output)")
        }
    }

    /// Server settings for a data hub's bulk loads; PostgreSQL's own defaults are sized for a small machine.
    /// Measured on 10M rows of 10-minute data (docs/loading.md, "The embedded server"): with the defaults
    /// (128 MB shared buffers, 4 MB WAL buffers, a checkpoint every 1 GB of WAL) a first load checkpointed every
    /// few seconds and took 26.1 s, 29.1 s with the dashboard aggregates; with these 24.8 s and 26.2 s.
    /// `shared_buffers` is a quarter of the memory, at least 128 MB and at most 1 GB (shared memory is taken as
    /// it is used); `wal_buffers` a sixteenth of that, 16–64 MB.
    package static func loadSettings(physicalMemory: UInt64) -> [(name: String, value: String)] {
        let megabytes = physicalMemory / 1_048_576
        let shared = min(max(megabytes / 4, 128), 1024)
        let wal = min(max(shared / 16, 16), 64)
        return [
            ("shared_buffers", "\(shared)MB"),
            ("wal_buffers", "\(wal)MB"),
            ("max_wal_size", "4GB"),
            ("min_wal_size", "256MB"),
            ("checkpoint_timeout", "15min"),
        ]
    }

    /// The file of `loadSettings` in the data directory, written at every start (a newer Datenwerk brings newer
    /// figures) and included at the end of `postgresql.conf`; `ALTER SYSTEM` (postgresql.auto.conf, read later)
    /// still overrides each of them.
    package var settingsFile: String { dataDirectory + "/datenwerk.conf" }

    private func writeSettings() throws {
        var text = "# Written by Datenwerk at every start of the embedded server; change a value with ALTER SYSTEM.\n"
        for (name, value) in Self.loadSettings(physicalMemory: ProcessInfo.processInfo.physicalMemory) {
            text += "\(name) = '\(value)'\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: settingsFile))
        let conf = dataDirectory + "/postgresql.conf"
        let include = "include_if_exists = 'datenwerk.conf'"
        let current = try String(contentsOfFile: conf, encoding: .utf8)
        if !current.split(separator: "\n").contains(where: { $0 == include }) {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: conf))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(((current.hasSuffix("\n") ? "" : "\n") + include + "\n").utf8))
        }
        if let user = serverUser { _ = try Subprocess.run(["/bin/chown", user, settingsFile]) }
    }

    /// As root the server runs as `postgres`, which must be able to reach the data directory.
    private func checkReachable(user: String) throws {
        let result = try Subprocess.run(["/usr/bin/test", "-w", configuration.root], asUser: user)
        if result.status != 0 {
            _ = try Subprocess.run(["/bin/chown", user, configuration.root])
            let again = try Subprocess.run(["/usr/bin/test", "-x", configuration.root], asUser: user)
            guard again.status == 0 else {
                throw Failure(description: "the system user '\(user)' cannot reach \(configuration.root) (a parent folder is private, e.g. /root); choose another place with DATENWERK_PG_ROOT")
            }
        }
    }

    /// What `pg_ctl status` checks, without starting it as a subprocess (through `runuser` as root: ~5 ms of
    /// every command's start): the pid file names a process that lives (a negative pid: a single-user server).
    private func isRunning(bin: String) throws -> Bool {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first, let pid = pid_t(first.trimmingCharacters(in: .whitespaces)), pid != 0 else { return false }
        return kill(abs(pid), 0) == 0 || errno == EPERM
    }

    private func runningPort() -> Int? {
        guard let pid = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = pid.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 3 ? Int(lines[3].trimmingCharacters(in: .whitespaces)) : nil
    }

    /// glibc's malloc settings for the server's processes (the environment's own win): memory a backend frees
    /// stays in it, up to 64 MiB, instead of going back to the system and being faulted in again by its next sort
    /// or COPY buffer. glibc moves its thresholds there anyway once a backend has freed a large block; from the
    /// start, a first load's index builds (seven months in a row) reuse one another's sort memory. Measured,
    /// `datenwerk run` of the bench's 1M first load, 4 + 4 runs around two restarts: the fresh tables' indexes
    /// and ATTACH 469–521 → 411–435 ms, the COPY 882–969 → 833–901 ms, wall 1.58–1.71 → 1.46–1.56 s.
    package static var serverMalloc: [String: String] {
        let own = ProcessInfo.processInfo.environment
        var settings: [String: String] = [:]
        if own["MALLOC_MMAP_THRESHOLD_"] == nil { settings["MALLOC_MMAP_THRESHOLD_"] = String(32 << 20) }
        if own["MALLOC_TRIM_THRESHOLD_"] == nil { settings["MALLOC_TRIM_THRESHOLD_"] = String(64 << 20) }
        return settings
    }

    private func startServer(bin: String) throws {
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if let user = serverUser {
            _ = try Subprocess.run(["/bin/chown", user, socketDirectory])
            if !FileManager.default.fileExists(atPath: logFile) { FileManager.default.createFile(atPath: logFile, contents: nil) }
            _ = try Subprocess.run(["/bin/chown", user, logFile])
        }
        let options = "-p \(configuration.port) -k \(socketDirectory) -c listen_addresses=127.0.0.1 -c max_connections=\(configuration.maxConnections) -c fsync=on"
        let result = try Subprocess.run([
            bin + "/pg_ctl", "-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-o", options, "start",
        ], asUser: serverUser, environment: Self.serverMalloc)
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            let tail = log.split(separator: "\n").suffix(8).joined(separator: "\n")
            throw Failure(description: "could not start the embedded PostgreSQL in \(dataDirectory) on port \(configuration.port) (exit \(result.status)):\n\(result.output)\(tail)\nIs the port taken? Set DATENWERK_PG_PORT, or set DATABASE_URL to use another server.")
        }
    }

    // MARK: - Helpers

    /// The directory with `initdb`, `pg_ctl` and `postgres`: the given one, or the newest `/usr/lib/postgresql/N/bin`.
    package static func findBinaries(_ explicit: String?) throws -> String {
        let fm = FileManager.default
        if let explicit {
            guard fm.isExecutableFile(atPath: explicit + "/initdb") else {
                throw Failure(description: "no initdb in \(explicit) (DATENWERK_PG_BIN)")
            }
            return explicit
        }
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where fm.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        throw Failure(description: "PostgreSQL server binaries not found under /usr/lib/postgresql. Install them with: apt-get install postgresql-15 postgresql-15-postgis-3 — or set DATABASE_URL to use an existing server.")
    }

    static func randomPassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}

/// Holds an exclusive `flock` on `path` while `body` runs.
func withFileLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw EmbeddedPostgres.Failure(description: "cannot open lock file \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    _ = flock(fd, LOCK_EX)
    defer { _ = flock(fd, LOCK_UN) }
    return try body()
}
