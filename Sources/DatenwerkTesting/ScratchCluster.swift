import DatenwerkPostgres
import Foundation
import Logging

/// A private PostgreSQL cluster for one test that stops or restarts the server under a running `datenwerk`
/// (the shared test cluster must stay up for every other test): its own root under /tmp, a kernel-chosen free
/// port, an empty `datenwerk` database, and a logger that stays quiet while the server is away.
/// Call `remove()` when done (in a `defer`).
package final class ScratchCluster: Sendable {
    package let cluster: EmbeddedPostgres
    package let root: String
    package let location: DatabaseLocation
    package let logger: Logger

    package init(_ name: String) async throws {
        root = "/tmp/datenwerk-\(name)-pg-\(getpid())"
        cluster = EmbeddedPostgres(EmbeddedPostgres.Configuration(root: root, port: try freeLoopbackPort()))
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = .critical
        self.logger = logger
        location = DatabaseLocation(socketPath: cluster.socketPath, username: "datenwerk", database: "datenwerk")
        try cluster.start()
        do {
            try await Database.createDatabaseIfMissing(location, logger: logger)
        } catch {
            remove()
            throw error
        }
    }

    /// Stops the cluster and deletes its files.
    package func remove() {
        try? cluster.shutdown()
        try? FileManager.default.removeItem(atPath: root)
    }
}
