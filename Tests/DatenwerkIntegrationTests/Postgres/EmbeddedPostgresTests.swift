import DatenwerkPostgres
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import DatenwerkTesting

/// The private cluster: initialised from the system binaries, shared by concurrent users, stopped by the last.
@Suite(.serialized) struct EmbeddedPostgresTests {
    static func postmasterPID(_ cluster: EmbeddedPostgres) -> String? {
        (try? String(contentsOfFile: cluster.dataDirectory + "/postmaster.pid", encoding: .utf8))?.split(separator: "\n").first.map(String.init)
    }

    @Test func startsReusesAndStopsWithTheLastUser() async throws {
        let root = try Paths.temporaryDirectory() + "/pg"
        let port = try freeLoopbackPort()
        let first = EmbeddedPostgres(.init(root: root, port: port))
        try first.start()
        #expect(first.startedServer)
        #expect(try first.isRunning())
        let pid = try #require(Self.postmasterPID(first))
        // The server's processes keep freed memory (glibc's settings in their environment, unless ours has them).
        let serverEnvironment = try String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8).split(separator: "\0").map(String.init)
        for (name, value) in EmbeddedPostgres.serverMalloc {
            #expect(serverEnvironment.contains("\(name)=\(value)"), "\(name) not in the server's environment")
        }
        let own = ProcessInfo.processInfo.environment
        #expect(EmbeddedPostgres.serverMalloc.count == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"].filter { own[$0] == nil }.count)

        // A second user reuses the same server instead of starting (and corrupting) another.
        let second = EmbeddedPostgres(.init(root: root, port: port))
        try second.start()
        #expect(!second.startedServer)
        #expect(Self.postmasterPID(second) == pid)

        // PostGIS is available, and clients connect over the Unix socket.
        let location = DatabaseLocation(socketPath: first.socketPath, username: "datenwerk", database: "datenwerk")
        try await Database.createDatabaseIfMissing(location)
        let version = try await Database.with(location) { db in
            try await db.client.query("CREATE EXTENSION IF NOT EXISTS postgis", logger: db.logger)
            return try await db.client.query("SELECT postgis_lib_version()", logger: db.logger).decode(String.self).collect().first
        }
        #expect(version?.hasPrefix("3.") == true)

        // The first user leaves: the server keeps running for the second.
        first.stop()
        #expect(try second.isRunning())
        // The last user leaves: the server stops.
        second.stop()
        #expect(try !second.isRunning())

        // Started again later, it reuses the data directory.
        let third = EmbeddedPostgres(.init(root: root, port: port))
        try third.start()
        #expect(third.startedServer)
        let still = try await Database.with(location) { db in
            try await db.client.query("SELECT count(*)::bigint FROM pg_extension WHERE extname = 'postgis'", logger: db.logger).decode(Int64.self).collect()
        }
        #expect(still == [1])
        third.stop()
        #expect(try !third.isRunning())
        #expect(FileManager.default.fileExists(atPath: root + "/password"))

        // Started by `datenwerk db start`: a command that uses it and exits leaves it running; `db stop` stops it.
        let kept = EmbeddedPostgres(.init(root: root, port: port, keepRunning: true))
        try kept.start()
        try kept.keepUntilShutdown()
        kept.stop()
        let command = EmbeddedPostgres(.init(root: root, port: port))
        try command.start()
        #expect(!command.startedServer)
        command.stop()
        #expect(try command.isRunning())
        try command.shutdown()
        #expect(try !command.isRunning())
        #expect(!FileManager.default.fileExists(atPath: command.keepMarker))
        // After `db stop`, the last user stops it again.
        let later = EmbeddedPostgres(.init(root: root, port: port))
        try later.start()
        later.stop()
        #expect(try !later.isRunning())

        // A server that died leaves its pid file behind: a pid that no process has is not a running server, and
        // the next start starts one.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try "\(gone.processIdentifier)\n\(later.dataDirectory)\n".write(toFile: later.dataDirectory + "/postmaster.pid", atomically: false, encoding: .utf8)
        #expect(try !later.isRunning())
        let afterCrash = EmbeddedPostgres(.init(root: root, port: port))
        try afterCrash.start()
        #expect(afterCrash.startedServer)
        #expect(try afterCrash.isRunning())
        afterCrash.stop()
        #expect(try !afterCrash.isRunning())
    }

    @Test func loadSettingsScaleWithTheMachineWithinBounds() {
        func value(_ name: String, _ memory: UInt64) -> String? {
            EmbeddedPostgres.loadSettings(physicalMemory: memory).first { $0.name == name }?.value
        }
        let gib: UInt64 = 1 << 30
        #expect(value("shared_buffers", 256 << 20) == "128MB")
        #expect(value("wal_buffers", 256 << 20) == "16MB")
        #expect(value("shared_buffers", 2 * gib) == "512MB")
        #expect(value("wal_buffers", 2 * gib) == "32MB")
        #expect(value("shared_buffers", 24 * gib) == "1024MB")
        #expect(value("wal_buffers", 24 * gib) == "64MB")
        #expect(value("max_wal_size", 24 * gib) == "4GB")
    }

    /// The server runs with `loadSettings` (included once into postgresql.conf), and `ALTER SYSTEM` still wins.
    @Test func runsWithTheLoadSettingsAndAlterSystemOverridesThem() async throws {
        let root = try Paths.temporaryDirectory() + "/pg"
        let port = try freeLoopbackPort()
        let location = { (cluster: EmbeddedPostgres) in DatabaseLocation(socketPath: cluster.socketPath, username: "datenwerk", database: "postgres") }
        func setting(_ name: String, _ cluster: EmbeddedPostgres) async throws -> Int64? {
            try await Database.with(location(cluster)) { db in
                try await db.client.query("SELECT pg_size_bytes(current_setting(\(name)))", logger: db.logger).decode(Int64.self).collect().first
            }
        }
        let expected = Dictionary(uniqueKeysWithValues: EmbeddedPostgres.loadSettings(physicalMemory: ProcessInfo.processInfo.physicalMemory).map { ($0.name, $0.value) })
        let megabytes = { (name: String) in Int64(try #require(expected[name]).dropLast(2)).map { $0 << 20 } }

        let first = EmbeddedPostgres(.init(root: root, port: port))
        try first.start()
        #expect(try await setting("shared_buffers", first) == megabytes("shared_buffers"))
        #expect(try await setting("wal_buffers", first) == megabytes("wal_buffers"))
        #expect(try await setting("max_wal_size", first) == 4 << 30)
        try await Database.with(location(first)) { db in
            try await db.client.query("ALTER SYSTEM SET max_wal_size = '2GB'", logger: db.logger)
        }
        first.stop()
        #expect(try !first.isRunning())

        let second = EmbeddedPostgres(.init(root: root, port: port))
        try second.start()
        defer { second.stop() }
        #expect(try await setting("max_wal_size", second) == 2 << 30)
        #expect(try await setting("shared_buffers", second) == megabytes("shared_buffers"))
        let conf = try String(contentsOfFile: second.dataDirectory + "/postgresql.conf", encoding: .utf8)
        #expect(conf.components(separatedBy: "include_if_exists = 'datenwerk.conf'").count == 2)
    }

    @Test func aTakenPortGivesAClearError() throws {
        let root = try Paths.temporaryDirectory() + "/pg"
        let port = try freeLoopbackPort()
        let a = EmbeddedPostgres(.init(root: root, port: port))
        try a.start()
        defer { a.stop() }
        let otherRoot = try Paths.temporaryDirectory() + "/pg"
        let b = EmbeddedPostgres(.init(root: otherRoot, port: port))
        let error = try #require(throws: EmbeddedPostgres.Failure.self) { try b.start() }
        #expect(error.description.contains("could not start the embedded PostgreSQL"))
        #expect(error.description.contains("DATENWERK_PG_PORT"))
    }

    @Test func parsesDatabaseURLsWithoutShowingThePassword() throws {
        let location = try DatabaseLocation(url: "postgres://dw:s3cr%40t@db.example.org:6543/hub?sslmode=require")
        #expect(location.username == "dw")
        #expect(location.password == "s3cr@t")
        #expect(location.host == "db.example.org")
        #expect(location.port == 6543)
        #expect(location.database == "hub")
        #expect(location.requireTLS)
        #expect(location.description == "postgres://dw@db.example.org:6543/hub")
        #expect(!location.description.contains("s3cr"))
        let socket = try DatabaseLocation(url: "postgresql://me@/x?host=/var/run/postgresql")
        #expect(socket.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(throws: DatabaseLocation.InvalidURL.self) { try DatabaseLocation(url: "mysql://x") }
    }

    @Test func splitsMigrationScriptsAtTopLevelSemicolons() {
        let sql = """
            CREATE TABLE a (x text DEFAULT ';'); -- comment; with semicolon
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
            SELECT 'it''s; fine';
            """
        let statements = splitSQLStatements(sql)
        #expect(statements.count == 3)
        #expect(statements[1].hasSuffix("END $$"))
        #expect(statements[2] == "SELECT 'it''s; fine'")
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EBADF) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
