import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

@Suite struct ChirpStackTests {
    static let connector = BuiltinConnectors.registry.connector("chirpstack") as! any PushConnector
    static let config = ConnectorConfig(kind: "chirpstack", values: ["fields": .stringMap(["temperature": "air_temperature"]), "applications": .strings(["Klima"])])

    static func admit(_ text: String) -> PushAdmission { connector.admit(Array(text.utf8), config: config, pipeline: "cs") }

    static let device = #""deviceInfo":{"applicationId":"a1","applicationName":"Klima","deviceName":"d","devEui":"0101010101010101"}"#

    @Test func admissionReadsTheEventTypeFromTheBody() {
        let up = #""time":"2025-03-30T01:00:00Z","fCnt":1,"fPort":2,"rxInfo":[],"object":{"temperature":21.5}"#
        #expect(Self.admit("{\(Self.device),\(up)}") == .accept)
        #expect(Self.admit(#"{\#(Self.device),"time":"2025-03-30T01:00:00Z","devAddr":"01020304"}"#) == .ignore("join events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"margin":7,"batteryLevel":80}"#) == .ignore("status events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"level":"ERROR","code":"UPLINK_CODEC","description":"x"}"#) == .ignore("log events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"queueItemId":"q","acknowledged":true,"fCntDown":3}"#) == .ignore("ack events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"downlinkId":1,"gatewayId":"g","queueItemId":"q","txInfo":{}}"#) == .ignore("txack events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"location":{"latitude":51,"longitude":7}}"#) == .ignore("location events carry no measurements"))
        #expect(Self.admit(#"{\#(Self.device),"integrationName":"loracloud","eventType":"x","object":{"temperature":3}}"#)
                == .ignore("integration events carry no measurements"))
    }

    @Test func admissionRejectsWhatARunWouldQuarantine() {
        // Checked exactly as a run maps it: no object (no codec), a value that is no number, no time at all.
        #expect(Self.admit(#"{\#(Self.device),"time":"2025-03-30T01:00:00Z","fCnt":1,"rxInfo":[],"object":null}"#)
                == .reject("object: missing (the device profile has no codec, or it failed: see the device's log events, code UPLINK_CODEC); the event is kept with its data"))
        #expect(Self.admit(#"{\#(Self.device),"time":"2025-03-30T01:00:00Z","fCnt":1,"object":{"temperature":"warm"}}"#)
                == .reject("object.temperature: 'warm' is not a number (air_temperature)"))
        #expect(Self.admit(#"{\#(Self.device),"time":null,"fCnt":1,"rxInfo":[{"gwTime":null}],"object":{"temperature":1}}"#)
                == .reject("time: missing (and no rxInfo nsTime)"))
        #expect(Self.admit(#"{"applicationID":"1","devEUI":"AQEBAQEBAQE="}"#)
                == .reject("deviceInfo.devEui is missing: this looks like a ChirpStack v3 event (devEUI, applicationID); this connector reads ChirpStack v4 events"))
        #expect(Self.admit(#"{"temperature":21}"#) == .reject("deviceInfo.devEui is missing: not a ChirpStack v4 event"))
        #expect(Self.admit("[1]") == .reject("the body is not a JSON object but an array: send one message per request, as ChirpStack does"))
        #expect(Self.admit(#"{"deviceInfo":{"applicationName":"Wasser","applicationId":"w1","devEui":"01"},"fCnt":1}"#)
                == .forbidden("application 'Wasser' ('w1' is not in this pipeline's applications (Klima)"))
    }

    @Test func configurationProblemsNameTheirKey() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: cs
                tenant: "05515000"
                source:
                  kind: chirpstack
                  fields: { temperature: air_temprature }
                  units: { vdd: mV }
                  station_prefix: "a b"
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains("'air_temprature' (for temperature) is not a known property; did you mean 'air_temperature'? (at 'source.fields')"))
        #expect(messages.contains("'vdd' has a unit but is not in fields (at 'source.units')"))
        #expect(messages.contains("'a b' must be letters, digits, '.', '_' or '-' (it starts every station key: '<prefix>:<device>') (at 'source.station_prefix')"))
    }

    /// Pushed bodies balance their books: values read = loaded + quarantined + skipped, per rule.
    @Test func pushedBodiesAreAccountedFor() async throws {
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: cs-books
            tenant: "05515000"
            source:
              kind: chirpstack
              fields: { temperature: air_temperature, humidity: relative_humidity }
            """, file: "/tmp/cs-books.yaml", connectors: BuiltinConnectors.registry)
        let bodies = [
            #"{\#(Self.device),"time":"2025-03-30T01:00:00Z","fCnt":1,"object":{"temperature":21.5,"humidity":null,"light":3}}"#,
            #"{\#(Self.device),"time":"2025-03-30T01:05:00Z","fCnt":2,"object":{"temperature":"x","humidity":40}}"#,
            #"{\#(Self.device),"time":"2025-03-30T01:06:00Z","devAddr":"01"}"#,
            "not json",
        ].map { PushedDocument(origin: "test", body: Array($0.utf8)) }
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry)
            .run(spec, trigger: "push", pushed: bodies)
        #expect(report.totals.observations == 1)
        #expect(report.totals.quarantined == 2)
        #expect(report.totals.quarantinedValues == 3)
        #expect(report.totals.skips[.missingValue] == 1)
        #expect(report.totals.skips[.unmappedProperty] == 1)
        #expect(report.totals.valuesRead == 6)
        #expect(report.totals.isBalanced)
    }
}
