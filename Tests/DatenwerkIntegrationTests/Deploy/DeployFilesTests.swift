import DatenwerkTesting
import Foundation
import Testing

/// The deployment files (`Deploy/`), checked by the tools that judge them for real: hadolint for the Dockerfile,
/// the Compose specification's JSON schema (check-jsonschema's vendored copy), `kubectl kustomize` and
/// kubernetes-validate (Kubernetes' own schemas, strict) for `Deploy/k8s`, promtool for the Prometheus
/// configuration, `systemd-analyze verify` for the units; and `Deploy/check_deploy.py` for what no schema says
/// (non-root user, probes on /health, two workers, the pipelines ConfigMap). Each check also runs on a broken
/// copy, which must fail, so a checker that accepts anything fails here.
///
/// The Python tools live in the venv `scripts/ensure-validators.sh` makes (`venv-deploy`). Without it the
/// tests are skipped; under CI (`CI=true`) they fail instead.
@Suite struct DeployFilesTests {
    static let deploy = Paths.root + "/Deploy"
    static let ci = ProcessInfo.processInfo.environment["CI"] == "true"

    /// `${HUB_VALIDATORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hub-validators}/venv-deploy/bin` (lib/common.sh).
    static var venvBin: String? {
        let env = ProcessInfo.processInfo.environment
        let cache = env["HUB_VALIDATORS_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache")) + "/hub-validators"
        let bin = cache + "/venv-deploy/bin"
        let tools = ["python", "hadolint", "check-jsonschema", "kubernetes-validate", "kubectl"]
        return tools.allSatisfy { FileManager.default.isExecutableFile(atPath: bin + "/" + $0) } ? bin : nil
    }
    static var runsValidators: Bool { venvBin != nil || ci }
    static let missing = "the deploy validators are missing: run sh scripts/ensure-validators.sh (venv-deploy)"

    static func tool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin"]).map { $0 + "/" + name }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Run {
        var status: Int32
        var output: String
    }

    /// Runs a program to its end (off the cooperative threads: `TestProcess`); standard output, then error.
    static func run(_ executable: String, _ arguments: [String], in directory: String = Paths.root) async throws -> Run {
        let output = try await TestProcess.run(executable, arguments, directory: directory)
        return Run(status: output.status, output: output.stdout + output.stderr)
    }

    /// `file` with each (old, new) replaced, written to a new temporary folder under `name`; every `old` must occur.
    static func brokenCopy(of file: String, as name: String, replacing edits: [(String, String)], beside extra: [String] = []) throws -> String {
        var text = try String(contentsOfFile: file, encoding: .utf8)
        for (old, new) in edits {
            #expect(text.contains(old), "\(old) is not in \(file)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        let dir = try Paths.temporaryDirectory()
        for path in extra {
            try FileManager.default.copyItem(atPath: path, toPath: dir + "/" + (path as NSString).lastPathComponent)
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
        return dir + "/" + name
    }

    // MARK: Dockerfile

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func hadolintAcceptsTheDockerfile() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let dockerfile = Self.deploy + "/Dockerfile"
        let good = try await Self.run(bin + "/hadolint", [dockerfile])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.isEmpty, "\(good.output)")
        // Recommended packages would come along without --no-install-recommends: hadolint's DL3015.
        let broken = try Self.brokenCopy(of: dockerfile, as: "Dockerfile", replacing: [("apt-get install -y --no-install-recommends libxml2 ", "apt-get install -y libxml2 ")])
        let bad = try await Self.run(bin + "/hadolint", [broken])
        #expect(bad.status != 0)
        #expect(bad.output.contains("DL3015"), "\(bad.output)")
    }

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func dockerfileBuildsTheBinaryInOneStageAndRunsItAsNonRootInAnother() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let dockerfile = Self.deploy + "/Dockerfile"
        let check = Self.deploy + "/check_deploy.py"
        let good = try await Self.run(bin + "/python", [check, "dockerfile", dockerfile, "--root", Paths.root])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("ok: \(dockerfile): 2 stages (build, runtime)"), "\(good.output)")

        let ignore = dockerfile + ".dockerignore"
        let rootUser = try Self.brokenCopy(of: dockerfile, as: "Dockerfile", replacing: [("USER 10001:10001", "USER root")], beside: [ignore])
        let asRoot = try await Self.run(bin + "/python", [check, "dockerfile", rootUser, "--root", Paths.root])
        #expect(asRoot.status == 1)
        #expect(asRoot.output.contains("error: the final stage's USER is root"), "\(asRoot.output)")

        let noBundles = try Self.brokenCopy(of: dockerfile, as: "Dockerfile",
                                            replacing: [(" && find \"$bin\" -maxdepth 1 -name '*.resources' -exec cp -R {} /staging/ \\; \\\n", "")], beside: [ignore])
        let withoutMigrations = try await Self.run(bin + "/python", [check, "dockerfile", noBundles, "--root", Paths.root])
        #expect(withoutMigrations.status == 1)
        #expect(withoutMigrations.output.contains("does not put the resource bundle Datenwerk_DatenwerkPostgres.resources beside the binary"),
                "\(withoutMigrations.output)")

        let noHealth = try Self.brokenCopy(of: dockerfile, as: "Dockerfile", replacing: [("HEALTHCHECK --interval", "# HEALTHCHECK --interval"), ("  CMD [\"bash\"", "# CMD [\"bash\"")], beside: [ignore])
        let unchecked = try await Self.run(bin + "/python", [check, "dockerfile", noHealth, "--root", Paths.root])
        #expect(unchecked.status == 1)
        #expect(unchecked.output.contains("error: the final stage has no HEALTHCHECK"), "\(unchecked.output)")

        let ignoringPipelines = try Self.brokenCopy(of: ignore, as: "Dockerfile.dockerignore", replacing: [("!Pipelines/\n", "")], beside: [dockerfile])
        let excluded = try await Self.run(bin + "/python", [check, "dockerfile", (ignoringPipelines as NSString).deletingLastPathComponent + "/Dockerfile", "--root", Paths.root])
        #expect(excluded.status == 1)
        #expect(excluded.output.contains("COPY Pipelines: excluded by Dockerfile.dockerignore"), "\(excluded.output)")
    }

    // MARK: compose.yaml

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func composeFileMatchesTheComposeSpecification() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let compose = Self.deploy + "/compose.yaml"
        let good = try await Self.run(bin + "/check-jsonschema", ["--builtin-schema", "vendor.compose-spec", compose])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("ok -- validation done"), "\(good.output)")

        let broken = try Self.brokenCopy(of: compose, as: "compose.yaml", replacing: [("condition: service_completed_successfully", "condition: service_done")])
        let bad = try await Self.run(bin + "/check-jsonschema", ["--builtin-schema", "vendor.compose-spec", broken])
        #expect(bad.status == 1)
        #expect(bad.output.contains("depends_on"), "\(bad.output)")
    }

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func composeRunsTwoWorkersAndWaitsForHealthyServices() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let compose = Self.deploy + "/compose.yaml"
        let check = Self.deploy + "/check_deploy.py"
        let good = try await Self.run(bin + "/python", [check, "compose", compose])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("ok: \(compose): 6 services"), "\(good.output)")

        // The copy sits in Deploy/ itself, so its relative mounts resolve as the real file's do.
        let oneWorker = Self.deploy + "/.compose-test-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: oneWorker) }
        var text = try String(contentsOfFile: compose, encoding: .utf8)
        for (old, new) in [("replicas: 2", "replicas: 1"), ("      GF_AUTH_ANONYMOUS_ENABLED: \"false\"", "      GF_AUTH_ANONYMOUS_ENABLED: \"false\"\n      GF_SECURITY_ADMIN_PASSWORD: admin")] {
            #expect(text.contains(old))
            text = text.replacingOccurrences(of: old, with: new)
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: oneWorker))
        let bad = try await Self.run(bin + "/python", [check, "compose", oneWorker])
        #expect(bad.status == 1)
        #expect(bad.output.contains("error: fewer than 2 workers (deploy.replicas: 1)"), "\(bad.output)")
        #expect(bad.output.contains("error: grafana: GF_SECURITY_ADMIN_PASSWORD is written in compose.yaml"), "\(bad.output)")
        #expect(bad.output.split(separator: "\n").filter { $0.hasPrefix("error: ") }.count == 2, "\(bad.output)")
    }

    @Test(.enabled(if: AlertRulesTests.runsPromtool, "promtool is not installed (apt-get install prometheus); CI=true makes this a failure"))
    func composePrometheusConfigurationLoadsTheAlertRules() async throws {
        let promtool = try #require(AlertRulesTests.promtool, "promtool is missing: scripts/ensure-validators.sh installs the Debian package prometheus")
        // Laid out as compose.yaml mounts it: /etc/prometheus/prometheus.yml and rules/alerts.yaml beside it.
        let dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/rules", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.deploy + "/compose-prometheus.yml", toPath: dir + "/prometheus.yml")
        try FileManager.default.copyItem(atPath: Self.deploy + "/prometheus/alerts.yaml", toPath: dir + "/rules/alerts.yaml")
        let compose = try String(contentsOfFile: Self.deploy + "/compose.yaml", encoding: .utf8)
        #expect(compose.contains("./compose-prometheus.yml:/etc/prometheus/prometheus.yml:ro"))
        #expect(compose.contains("./prometheus/alerts.yaml:/etc/prometheus/rules/alerts.yaml:ro"))
        let good = try await Self.run(promtool, ["check", "config", dir + "/prometheus.yml"])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("SUCCESS: 1 rule files found"), "\(good.output)")
        try FileManager.default.removeItem(atPath: dir + "/rules/alerts.yaml")
        let bad = try await Self.run(promtool, ["check", "config", dir + "/prometheus.yml"])
        #expect(bad.status != 0, "\(bad.output)")
    }

    // MARK: Kubernetes

    /// `kubectl kustomize --load-restrictor LoadRestrictionsNone Deploy/k8s`, written to a file.
    static func kustomize(_ bin: String) async throws -> String {
        let built = try await Self.run(bin + "/kubectl", ["kustomize", "--load-restrictor", "LoadRestrictionsNone", Self.deploy + "/k8s"])
        #expect(built.status == 0, "\(built.output)")
        let file = try Paths.temporaryDirectory() + "/datenwerk.yaml"
        try Data(built.output.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func kubernetesManifestsMatchTheKubernetesSchemas() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let built = try await Self.kustomize(bin)
        let secret = Self.deploy + "/k8s/secret.example.yaml"
        let good = try await Self.run(bin + "/kubernetes-validate", ["--strict", built, secret])
        #expect(good.status == 0, "\(good.output)")
        for resource in ["service/datenwerk", "deployment/datenwerk-serve", "deployment/datenwerk-worker", "secret/datenwerk"] {
            #expect(good.output.contains("passed for resource \(resource) against version"), "\(resource): \(good.output)")
        }
        #expect(good.output.matches(of: /passed for resource configmap\/datenwerk-(pipelines|catalog)-[a-z0-9]+ against/).count == 2, "\(good.output)")
        #expect(!good.output.contains("fail"), "\(good.output)")

        let broken = try Self.brokenCopy(of: built, as: "broken.yaml", replacing: [("readinessProbe:", "readinesProbe:")])
        let bad = try await Self.run(bin + "/kubernetes-validate", ["--strict", broken])
        #expect(bad.status != 0)
        #expect(bad.output.contains("readinesProbe"), "\(bad.output)")
    }

    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func kubernetesManifestsProbeHealthRunTwoWorkersAsNonRootAndCarryEveryPipeline() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let built = try await Self.kustomize(bin)
        let check = Self.deploy + "/check_deploy.py"
        let good = try await Self.run(bin + "/python", [check, "k8s", built, "--root", Paths.root])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("5 objects (1 Service, 2 ConfigMap, 2 Deployment)"), "\(good.output)")

        let broken = try Self.brokenCopy(of: built, as: "broken.yaml", replacing: [
            ("readinessProbe:", "startupProbe2:"), ("replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: worker",
                                                    "replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: worker"),
            ("runAsNonRoot: true", "runAsNonRoot: false"),
        ])
        let bad = try await Self.run(bin + "/python", [check, "k8s", broken, "--root", Paths.root])
        #expect(bad.status == 1)
        for message in ["error: datenwerk-serve: the readiness probe does not ask /health", "error: the worker Deployment has replicas: 1",
                        "error: datenwerk-serve: the pod does not set runAsNonRoot: true", "error: datenwerk-worker: the pod does not set runAsNonRoot: true"] {
            #expect(bad.output.contains(message), "\(message): \(bad.output)")
        }
    }

    /// The ConfigMap as the kubelet mounts it (hidden `..data` folders beside the files) holds every pipeline
    /// twice for a folder scan; the init container's script unpacks it into a plain folder that
    /// `datenwerk validate` reads as exactly the repository's pipelines.
    @Test(.enabled(if: runsValidators, "venv-deploy is missing (sh scripts/ensure-validators.sh); CI=true makes this a failure"))
    func pipelinesConfigMapUnpacksIntoValidPipelines() async throws {
        let bin = try #require(Self.venvBin, "\(Self.missing)")
        let built = try await Self.kustomize(bin)
        let check = Self.deploy + "/check_deploy.py"
        let good = try await Self.run(bin + "/python", [check, "configmap-pipelines", built, "--root", Paths.root, "--datenwerk", Paths.executable,
                                                  "--work", try Paths.temporaryDirectory()])
        #expect(good.status == 0, "\(good.output)")
        // What `datenwerk validate` says about the repository's Pipelines/, e.g. "ok: 19 pipelines valid, 13 templates valid".
        let repository = try #require(good.output.firstMatch(of: /the repository's Pipelines\/: (ok: [0-9]+ pipelines? valid[^\n]*)/)?.output.1,
                                      "\(good.output)")
        #expect(Int(repository.firstMatch(of: /ok: ([0-9]+) pipeline/)?.output.1 ?? "") ?? 0 > 10, "\(repository)")
        for deployment in ["datenwerk-serve", "datenwerk-worker"] {
            #expect(good.output.contains("\(deployment): unpacked by the init container: \(repository)\n"), "\(good.output)")
        }

        let broken = try Self.brokenCopy(of: built, as: "broken.yaml", replacing: [("cp -L \"$key\" \"$target\"", ":")])
        let bad = try await Self.run(bin + "/python", [check, "configmap-pipelines", broken, "--root", Paths.root, "--datenwerk", Paths.executable,
                                                 "--work", try Paths.temporaryDirectory()])
        #expect(bad.status == 1, "\(bad.output)")
        #expect(bad.output.contains("error: datenwerk-serve: datenwerk validate on the unpacked pipelines: expected '\(repository)'"), "\(bad.output)")
    }

    // MARK: systemd

    static var runsSystemdAnalyze: Bool { tool("systemd-analyze") != nil || ci }

    /// `systemd-analyze verify` in a root of its own: the system's unit folder (for the targets the units name)
    /// and an executable at /usr/local/bin/datenwerk, where the units expect the binary.
    static func verifySystemdUnits(_ units: [String: String]) async throws -> Run {
        let analyze = try #require(tool("systemd-analyze"), "systemd-analyze is missing (Debian package systemd)")
        let root = try Paths.temporaryDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/usr/local/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/usr/lib/systemd", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
        // systemd only checks that the ExecStart= program exists and is executable: a stub stands in for the binary.
        fm.createFile(atPath: root + "/usr/local/bin/datenwerk", contents: Data("#!/bin/sh\nexit 0\n".utf8), attributes: [.posixPermissions: 0o755])
        try fm.copyItem(atPath: "/usr/lib/systemd/system", toPath: root + "/usr/lib/systemd/system")
        for (name, text) in units {
            try Data(text.utf8).write(to: URL(fileURLWithPath: root + "/etc/systemd/system/" + name))
        }
        return try await run(analyze, ["verify", "--root=" + root] + units.keys.sorted().map { "/etc/systemd/system/" + $0 })
    }

    @Test(.enabled(if: runsSystemdAnalyze, "systemd-analyze is not installed; CI=true makes this a failure"))
    func systemdUnitsVerify() async throws {
        let folder = Self.deploy + "/systemd"
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".service") || $0.hasSuffix(".timer") }
        #expect(names.count >= 3)
        var units: [String: String] = [:]
        for name in names { units[name] = try String(contentsOfFile: folder + "/" + name, encoding: .utf8) }
        let good = try await Self.verifySystemdUnits(units)
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.isEmpty, "\(good.output)")

        // systemd-analyze only warns (status 0) about unknown keys: the output has to be empty.
        var broken = units
        broken["datenwerk-db.service"] = units["datenwerk-db.service"]?.replacingOccurrences(of: "ExecStart=", with: "ExecStrat=")
        let bad = try await Self.verifySystemdUnits(broken)
        #expect(bad.output.contains("Unknown key 'ExecStrat' in section [Service]"), "\(bad.output)")
    }
}
