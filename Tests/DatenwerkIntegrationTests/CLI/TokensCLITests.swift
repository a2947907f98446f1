import DatenwerkConnectors
import DatenwerkPipeline
import DatenwerkPostgres
import DatenwerkTesting
import Foundation
import Testing

/// `datenwerk tokens create|list|revoke` as an operator runs it, with the token used on a real server in between.
@Suite struct TokensCLITests {
    @Test func createShowsTheTokenOnceListNeverAndRevokeStopsIt() async throws {
        try await TestDatabase.with { db in
            let env = ["DATABASE_URL": db.location.url]
            let created = try await PublishingServer.blocking {
                try CLITests.datenwerkBlocking(["tokens", "create", "--scope", "run:musterstadt-klima", "--scope", "read:musterstadt-intern",
                                        "--expires", "30d", "--name", "Leitstelle"], environment: env)
            }
            #expect(created.status == 0, "\(created.stderr)")
            let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.hasPrefix("dwk_") && token.count == 47, "\(token)")
            #expect(created.stderr.contains("token #1 (run:musterstadt-klima read:musterstadt-intern), expires 20"), "\(created.stderr)")
            #expect(!created.stderr.contains(token))

            let list = try await PublishingServer.blocking { try CLITests.datenwerkBlocking(["tokens", "list"], environment: env) }
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("#1\t\(token.prefix(8))…\tactive until 20"), "\(list.stdout)")
            #expect(list.stdout.contains("never used\trun:musterstadt-klima read:musterstadt-intern\tLeitstelle"), "\(list.stdout)")
            #expect(!list.stdout.contains(token))

            let klima = try PipelineSpec.load(file: Paths.pipeline("examples/musterstadt-klima.yaml"), connectors: BuiltinConnectors.registry)
            let server = try await ServerHarness.start(database: db, pipelines: [klima])
            do {
                let run = try await server.request(.POST, "/pipelines/musterstadt-klima/runs", headers: [("Authorization", "Bearer \(token)")])
                #expect(run.status == 202, "\(run.text)")
                let revoked = try await PublishingServer.blocking { try CLITests.datenwerkBlocking(["tokens", "revoke", "1"], environment: env) }
                #expect(revoked.status == 0, "\(revoked.stderr)")
                #expect(revoked.stdout.contains("token #1 revoked"))
                let after = try await server.request(.POST, "/pipelines/musterstadt-klima/runs", headers: [("Authorization", "Bearer \(token)")])
                #expect(after.status == 401)
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()

            let again = try await PublishingServer.blocking { try CLITests.datenwerkBlocking(["tokens", "revoke", "1"], environment: env) }
            #expect(again.status == 64)
            let listed = try await PublishingServer.blocking { try CLITests.datenwerkBlocking(["tokens", "list"], environment: env) }
            #expect(listed.stdout.contains("\trevoked 20"), "\(listed.stdout)")
            #expect(!listed.stdout.contains("never used"), "\(listed.stdout)")
            for bad in [["--scope", "write:klima"], ["--scope", "read:*"], ["--scope", "admin", "--expires", "soon"], []] {
                let refused = try await PublishingServer.blocking { try CLITests.datenwerkBlocking(["tokens", "create"] + bad, environment: env) }
                #expect(refused.status == 64, "\(bad): \(refused.stderr)")
                #expect(refused.stdout.isEmpty, "\(bad)")
            }
        }
    }
}
