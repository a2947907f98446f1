import ArgumentParser
import DatenwerkPostgres
import Foundation

struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the embedded PostgreSQL cluster (not used when DATABASE_URL is set).",
        subcommands: [Start.self, Stop.self, Status.self]
    )

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the embedded cluster and leave it running.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init(keepRunning: true))
            try cluster.start()
            cluster.stop()
            print("running: \(cluster.psqlCommand)")
            if let password = cluster.password, !password.isEmpty {
                print("TCP clients (Grafana, QGIS): host 127.0.0.1 port \(cluster.configuration.port) user datenwerk, password in \(cluster.configuration.root)/password")
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded cluster.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init())
            try cluster.shutdown()
            print("stopped")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether the embedded cluster runs.")
        func run() throws {
            let cluster = EmbeddedPostgres(.init())
            print(try cluster.isRunning() ? "running: \(cluster.psqlCommand)" : "not running (data in \(cluster.configuration.root))")
        }
    }
}
