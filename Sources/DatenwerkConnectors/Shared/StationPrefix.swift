/// `station_prefix`: the first part of every `<prefix>:<id>` station key of a connector whose ids are unique
/// only per server (SensorThings Things, NGSI entities, DATEX II sites, parking sites). Default: the pipeline's
/// name, so two servers' `1` never meet; pipelines that read the same server set the same prefix to share
/// stations. Spelled like the LoRaWAN connectors' key: letters, digits, `.`, `_` and `-`.
enum StationPrefix {
    static func help(_ ids: String) -> String {
        "station keys are <station_prefix>:<\(ids)>; default: the pipeline name (these ids are unique only per server)"
    }

    static func isValid(_ prefix: String) -> Bool {
        !prefix.isEmpty && prefix.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "." || $0 == "_" || $0 == "-" }
    }

    static func problem(_ prefix: String) -> String {
        "'\(prefix)' must be letters, digits, '.', '_' or '-' (it starts every station key: '<prefix>:<id>')"
    }
}
