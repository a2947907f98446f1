@testable import DatenwerkPostgres
import Foundation
import Testing
import DatenwerkTesting

/// Server daemons started with `Subprocess` must not inherit our descriptors: Foundation's `Process` sees a
/// child's exit through a socket the child holds, and a daemon holding a copy keeps that child "running".
@Suite struct SubprocessTests {
    @Test func childrenInheritNothingAboveStderr() throws {
        let fd = open("/dev/null", O_RDONLY)   // deliberately without O_CLOEXEC
        #expect(fd > 2)
        defer { close(fd) }
        #expect(Subprocess.addCloseFrom != nil, "glibc ≥ 2.34 has posix_spawn_file_actions_addclosefrom_np")
        let result = try Subprocess.run(["/bin/sh", "-c", "ls /proc/$$/fd"])
        #expect(result.status == 0, "\(result.output)")
        let inherited = result.output.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        #expect(inherited.contains(0) && inherited.contains(1))
        #expect(!inherited.contains(fd), "the child inherited descriptor \(fd): \(inherited)")
    }

    @Test func theChildGetsOurEnvironmentWithTheGivenVariablesAddedOrReplaced() throws {
        let result = try Subprocess.run(["/usr/bin/env"], environment: ["DATENWERK_SUBPROCESS_TEST": "eins", "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("DATENWERK_SUBPROCESS_TEST=eins"), "\(lines)")
        #expect(lines.filter { $0.hasPrefix("PATH=") } == ["PATH=/usr/bin:/bin"])
        if let home = ProcessInfo.processInfo.environment["HOME"] { #expect(lines.contains("HOME=\(home)")) }
    }
}
