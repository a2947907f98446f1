import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkPostgres
import Foundation
import PostgresNIO
import DatenwerkTesting

/// A generated CSV pipeline large enough that a run takes a moment (for kills, restarts and concurrent readers).
enum BigLoad {
    /// Writes `<name>.yaml` and `<name>.csv` with `rows` rows × 3 values over `stations` stations, every `step`
    /// seconds (hourly by default) from 2024-01-01.
    @discardableResult
    static func write(_ dir: String, name: String = "big-load", rows: Int, stations: Int = 20, step: Int = 3600, schedule: String? = nil) throws -> String {
        var csv = "station,time,t,h,p\n"
        csv.reserveCapacity(rows * 48)
        let start = 1_704_067_200   // 2024-01-01T00:00:00Z
        for i in 0..<rows {
            let station = i % stations
            let t = start + (i / stations) * step
            let date = Date(timeIntervalSince1970: TimeInterval(t)).formatted(.iso8601)
            csv += "s\(station),\(date),\(Double(i % 400) / 10 - 10),\(Double(i % 100)),\(950 + i % 80)\n"
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name).csv"))
        let yaml = """
            version: 1
            name: \(name)
            tenant: "09162000"
            \(schedule.map { "schedule: \"\($0)\"" } ?? "")
            source:
              kind: file
              path: \(name).csv
              format: { kind: csv, delimiter: "," }
            observations:
              station: { id: station, prefix: \(name) }
              time: { field: time, format: iso8601 }
              values:
                - { field: t, property: air_temperature }
                - { field: h, property: relative_humidity }
                - { field: p, property: air_pressure }
            """
        let file = "\(dir)/\(name).yaml"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }
}

/// Count and an order-independent checksum of everything in observations: equal means the same rows.
func observationChecksum(_ db: Database) async throws -> (count: Int64, checksum: String) {
    let rows = try await db.client.query("""
        SELECT count(*)::bigint, coalesce(md5(string_agg(concat_ws('|', s.key, o.property, o.phenomenon_start, o.result), ',' ORDER BY s.key, o.property, o.phenomenon_start)), '')
        FROM datenwerk.observations o JOIN datenwerk.stations s ON s.id = o.station_id
        """, logger: db.logger).decode((Int64, String).self).collect()
    return (rows[0].0, rows[0].1)
}

func scalar(_ db: Database, _ sql: String) async throws -> Int64 {
    let rows = try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode(Int64.self).collect()
    return rows.first ?? -1
}

/// A `datenwerk` child process (for kill -9 and many-worker tests).
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let output: String

    init(_ arguments: [String], environment: [String: String], directory: String = Paths.root) throws {
        process.executableURL = URL(fileURLWithPath: Paths.executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let dir = try Paths.temporaryDirectory()
        output = dir + "/output"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// SIGKILL, then until the process is gone (without blocking a thread of the cooperative pool).
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning, exitStatus() == nil { usleep(10_000) }
    }

    /// The exit status. Foundation notices a child's exit through a socket the child holds; should it miss
    /// one, the kernel is asked directly (without reaping, so Foundation still can).
    func wait() async -> Int32 {
        while process.isRunning {
            if let status = exitStatus() { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        // Foundation reports a signal's number; the shell's convention (and `exitStatus`) is 128 + signal.
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// The child's exit status if it has exited, from `waitid(…, WNOWAIT)`; nil while it runs.
    private func exitStatus() -> Int32? {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(process.processIdentifier), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
              info._sifields._sigchld.si_pid != 0 else { return nil }
        let code = info._sifields._sigchld.si_status
        return info.si_code == CLD_EXITED ? code : 128 + code
    }

    var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
}
