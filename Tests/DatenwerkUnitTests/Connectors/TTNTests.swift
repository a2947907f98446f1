import DatenwerkConnectors
import DatenwerkCore
import DatenwerkPipeline
import Foundation
import Testing
import DatenwerkTesting

@Suite struct TTNTests {
    @Test func configurationProblemsNameTheirKey() throws {
        let error = try #require(throws: DiagnosticError.self) {
            try PipelineSpec.parse(yaml: """
                version: 1
                name: ttn
                tenant: "03402000"
                source:
                  kind: ttn
                  fields: { TempC_SHT: air_temprature, BatV: battery_voltage, Bat_mV: battery_voltage }
                  units: { BatV: kg, Hum: "%" }
                  latitude_field: lat
                """, file: "p.yaml", connectors: BuiltinConnectors.registry)
        }
        let messages = error.diagnostics.map(\.message)
        #expect(messages.contains { $0.contains("'air_temprature' (for TempC_SHT) is not a known property; did you mean 'air_temperature'?") })
        #expect(messages.contains { $0.contains("BatV and Bat_mV both map to battery_voltage") })
        #expect(messages.contains { $0.contains("BatV:") && $0.contains("kg") })
        #expect(messages.contains { $0.contains("'Hum' has a unit but is not in fields") })
        #expect(messages.contains { $0.contains("latitude_field and longitude_field go together") })
    }

    @Test func admissionRoutesByTheTopLevelKey() throws {
        let connector = try #require(BuiltinConnectors.registry.connector("ttn") as? any PushConnector)
        let config = ConnectorConfig(kind: "ttn", values: ["fields": .stringMap(["TempC_SHT": "air_temperature"]), "applications": .strings(["klima"])])
        func admit(_ text: String) -> PushAdmission { connector.admit(Array(text.utf8), config: config, pipeline: "ttn") }
        let ids = #""end_device_ids":{"device_id":"d1","application_ids":{"application_id":"klima"}}"#
        let uplink = #""uplink_message":{"received_at":"2024-06-26T13:24:35Z","decoded_payload":{"TempC_SHT":21.5}}"#
        #expect(admit("{\(ids),\(uplink)}") == .accept)
        // Checked exactly as a run maps it: an uplink without values or time is no message to store.
        #expect(admit("{\(ids),\"uplink_message\":{}}") == .reject("uplink_message.received_at: missing"))
        #expect(admit("{\(ids),\"join_accept\":{\"session_key_id\":\"x\"}}") == .ignore("join_accept messages carry no measurements"))
        #expect(admit(#"{"end_device_ids":{"device_id":"d1","application_ids":{"application_id":"other"}},"uplink_message":{}}"#)
                == .forbidden("application 'other' is not in this pipeline's applications (klima)"))
        #expect(admit(#"{"uplink_message":{}}"#) == .reject("end_device_ids.device_id is missing: not a The Things Stack v3 message"))
        #expect(admit("[1,2]") == .reject("the body is not a JSON object but an array: send one message per request, as The Things Stack does"))
        #expect(admit("\"text\"") == .reject("the body is not a JSON object"))
        guard case .reject(let reason) = admit(#"{"end_device_ids": "#) else { Issue.record("truncated JSON was admitted"); return }
        #expect(reason.hasPrefix("the body is not JSON"))
    }

    /// No decoded_payload (codec missing or failed): the message is kept whole in quarantine, with the warnings;
    /// nothing of it (not even its station) is stored.
    @Test func uplinkWithoutDecodedPayloadIsQuarantined() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data(#"""
            {"end_device_ids":{"device_id":"eui-1","application_ids":{"application_id":"klima"}},
             "received_at":"2024-06-26T13:24:35.323956942Z",
             "uplink_message":{"f_port":2,"frm_payload":"Dm8AAAEMAAEXAfY=","decoded_payload_warnings":["codec timed out"],
               "received_at":"2024-06-26T13:24:35.116615676Z"}}
            """#.utf8).write(to: URL(fileURLWithPath: dir + "/up.json"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-nocodec
            tenant: "03402000"
            source: { kind: ttn, url: up.json, fields: { TempC_SHT: air_temperature } }
            """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.succeeded)
        #expect(sink.observations.isEmpty)
        #expect(sink.stations.isEmpty)
        let bad = try #require(sink.quarantined.first)
        #expect(bad.error.field == "uplink_message.decoded_payload")
        #expect(bad.error.reason == "missing (no codec is configured for the device, or it failed; decoded_payload_warnings: codec timed out); the message is kept with its frm_payload")
        #expect(bad.raw.contains("Dm8AAAEMAAEXAfY="))
    }

    /// A pipeline without `url` only receives pushes: `datenwerk run` says so instead of reading nothing.
    @Test func pullWithoutURLExplainsPush() async throws {
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-push
            tenant: "03402000"
            source: { kind: ttn, fields: { TempC_SHT: air_temperature } }
            """, file: "/tmp/p.yaml", connectors: BuiltinConnectors.registry)
        let report = try await PipelineRunner(fetcher: testFetcher, sink: RecordingSink(), connectors: BuiltinConnectors.registry).run(spec)
        #expect(report.failure?.step == .configure)
        #expect(report.failure?.message.contains("POST /ingest/ttn-push") == true)
    }
}

@Suite struct TTNAccountingTests {
    static let ids = #""end_device_ids":{"device_id":"d1","application_ids":{"application_id":"klima"}}"#

    /// Every decoded_payload key is a value read: configured ones load, the others are `unmapped_property`, nulls
    /// `missing_value`; a quarantined message stands for the values it offered; the station key starts with the
    /// pipeline's name (device ids are only unique per application and server).
    @Test func pushedUplinksBalanceAndKeysStartWithThePipeline() async throws {
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-books
            tenant: "03402000"
            source: { kind: ttn, fields: { TempC_SHT: air_temperature, Hum_SHT: relative_humidity } }
            """, file: "/tmp/ttn-books.yaml", connectors: BuiltinConnectors.registry)
        let bodies = [
            #"{\#(Self.ids),"uplink_message":{"received_at":"2024-06-26T13:24:35Z","decoded_payload":{"TempC_SHT":21.5,"Hum_SHT":null,"BatV":3.1,"Work_mode":"IIC"}}}"#,
            #"{\#(Self.ids),"uplink_message":{"received_at":"2024-06-26T13:34:35Z","decoded_payload":{"TempC_SHT":"x","Hum_SHT":40}}}"#,
        ].map { PushedDocument(origin: "test", body: Array($0.utf8)) }
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry)
            .run(spec, trigger: "push", pushed: bodies)
        #expect(sink.stations.map(\.key) == ["ttn-books:klima:d1"])
        #expect(report.totals.observations == 1)
        #expect(report.totals.skips[.unmappedProperty] == 2)
        #expect(report.totals.skips[.missingValue] == 1)
        #expect(report.totals.quarantinedValues == 2)
        #expect(report.totals.valuesRead == 6)
        #expect(report.totals.isBalanced)
    }

    @Test func stationPrefixReplacesThePipelineName() async throws {
        let dir = try Paths.temporaryDirectory()
        try Data(#"{\#(Self.ids),"uplink_message":{"received_at":"2024-06-26T13:24:35Z","decoded_payload":{"TempC_SHT":21.5}}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/up.json"))
        let spec = try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-prefix
            tenant: "03402000"
            source: { kind: ttn, url: up.json, station_prefix: emden-tts, applications: [other], fields: { TempC_SHT: air_temperature } }
            """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        let sink = RecordingSink()
        let report = try await PipelineRunner(fetcher: testFetcher, sink: sink, connectors: BuiltinConnectors.registry).run(spec)
        // Another application in a captured file: counted as filtered, not silently dropped.
        #expect(sink.items.isEmpty)
        #expect(report.totals.skips[.filtered] == 1)
        #expect(report.totals.isBalanced)
        let open = try PipelineSpec.parse(yaml: """
            version: 1
            name: ttn-prefix
            tenant: "03402000"
            source: { kind: ttn, url: up.json, station_prefix: emden-tts, fields: { TempC_SHT: air_temperature } }
            """, file: dir + "/p.yaml", connectors: BuiltinConnectors.registry)
        let sink2 = RecordingSink()
        _ = try await PipelineRunner(fetcher: testFetcher, sink: sink2, connectors: BuiltinConnectors.registry).run(open)
        #expect(sink2.stations.map(\.key) == ["emden-tts:klima:d1"])
    }
}
