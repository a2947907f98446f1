import DatenwerkPipeline
import DatenwerkTesting
import Testing

/// `PipelineSpec.readingDigest` decides whether remembered files may be skipped (`FileMemory`): it must change
/// with everything that changes what a file becomes, and with nothing else.
@Suite struct ReadingDigestTests {
    static let base = """
        version: 1
        name: klima
        tenant: "05515000"
        description: Klimadaten
        schedule: "every 1h"
        source: { kind: file, path: klima.csv, format: { kind: csv, delimiter: ";" } }
        observations:
          station: { id: station }
          time: { field: zeit, format: iso8601 }
          values: [{ field: temp, property: air_temperature, unit: Cel }]
        """

    static func digest(_ yaml: String) throws -> String? { try spec(yaml, in: "/tmp").readingDigest }

    @Test func sameRulesSameDigestWhateverTheDescriptionAndSchedule() throws {
        let a = try #require(try Self.digest(Self.base))
        #expect(a.count == 64)
        #expect(try Self.digest(Self.base) == a)
        let other = Self.base.replacingOccurrences(of: "description: Klimadaten", with: "description: Klima, stündlich")
            .replacingOccurrences(of: "every 1h", with: "every 15m")
        #expect(try Self.digest(other) == a)
    }

    @Test(arguments: [
        ("unit: Cel", "unit: K"),
        ("delimiter: \";\"", "delimiter: \",\""),
        ("format: iso8601", "format: \"dd.MM.yyyy HH:mm\""),
        ("tenant: \"05515000\"", "tenant: \"05315000\""),
        ("path: klima.csv", "path: klima2.csv"),
    ])
    func everyReadingRuleChangesIt(_ from: String, _ to: String) throws {
        let changed = Self.base.replacingOccurrences(of: from, with: to)
        #expect(changed != Self.base)
        let a = try Self.digest(Self.base), b = try Self.digest(changed)
        #expect(b != nil)
        #expect(a != b, "\(from) → \(to)")
        #expect(try Self.digest(Self.base + "\ntransform: [{ rename: { temp: t2 } }]\n") != a)
        #expect(try Self.digest(Self.base + "\non_bad_record: skip\n") != a)
    }

    @Test func aSpecChangedInCodeHasNoDigestAndPlaceholdersKeepIt() throws {
        var s = try spec(Self.base, in: "/tmp")
        #expect(s.readingDigest != nil)
        #expect(s.substituting(["since": "2024-01-01T00:00:00Z"]).readingDigest == s.readingDigest)
        s.observations!.values[0].scale = 10
        #expect(s.readingDigest == nil)
        var t = try spec(Self.base, in: "/tmp")
        t.maxBadRecords = 3
        #expect(t.readingDigest == nil)
    }
}
