import DatenwerkCore
import DatenwerkPipeline

/// Deutscher Wetterdienst open data: Climate Data Center station products (`produkt_*.txt`, usually in
/// the station zips of `observations_germany/climate/{hourly,10_minutes}/…`) and the POI current
/// observations feed (`weather/weather_reports/poi/<id>-BEOB.csv`).
///
/// Stations are `dwd-cdc:<5-digit CDC id>` (`dwd-cdc:00020`); POI stations, whose ids are a different
/// (WMO/SYNOP) numbering, are `dwd-cdc:poi-<id>` so the two never collide. Coordinates and heights come
/// from the archive's `Metadaten_Geographie_*` member, or from the station list given as `station_list`.
///
/// Columns are mapped by name (`DWDProductMapping.columns`, `DWDPOIMapping.columns`); every other value column
/// is counted as `unmapped_property`, `-999` / `---` as `missing_value`, rows of stations not in `stations` as
/// `filtered`. Cloud cover comes in eighths (okta) and is stored in %; DWD's −1 ("not determinable") is outside
/// 0…100 % and quarantined. Hourly and 10-minute products of one property in one pipeline share the natural key
/// (station, property, start) at full hours: load them in separate pipelines.
struct DWDConnector: ConfiguredConnector {
    let kind = "dwd-cdc"
    let summary = "Deutscher Wetterdienst: CDC station zips/produkt files (hourly and 10-minute temperature, humidity, dew point, precipitation, pressure, sunshine, radiation, wind, gusts, visibility, cloud cover) and POI current observations"

    struct Configuration: ConnectorConfiguration {
        static let url = Setting<String>("url", .location, required: true,
                                         "a station zip or produkt_*.txt (URL or path, `*` matches several files), or a POI *-BEOB.csv; `{station}` is replaced by each id of `stations`")
        static let product = DefaultedSetting("product", default: DWDRun.Product.auto,
                                              "climate for CDC zips/produkt files, poi for *-BEOB.csv; auto decides by the file name")
        static let stations = Setting<[String]>("stations", "only these stations (CDC ids with or without leading zeros, or POI ids); default: all")
        static let stationList = Setting<String>("station_list", .location,
                                                 "a *_Beschreibung_Stationen.txt station list (names, coordinates, heights, Bundesland) for files without Metadaten_Geographie")
        static let keys = [url.key, product.key, stations.key, stationList.key]

        var url: String
        var product: DWDRun.Product
        var stations: [String]?
        var stationList: String?

        init(_ config: ConnectorConfig) throws {
            url = try config.required(Self.url)
            product = config[Self.product]
            stations = config[Self.stations]
            stationList = config[Self.stationList]
        }
    }
    let sampleYAML = """
        version: 1
        name: dwd-hourly-temperature-muenster
        tenant: "05515000"
        schedule: "30 * * * *"
        source:
          kind: dwd-cdc
          # Recent hourly air temperature and humidity of station 01766 (Münster/Osnabrück); one zip per station.
          url: https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/hourly/air_temperature/recent/stundenwerte_TU_{station}_akt.zip
          stations: ["01766", "03404"]
          station_list: https://opendata.dwd.de/climate_environment/CDC/observations_germany/climate/hourly/air_temperature/recent/TU_Stundenwerte_Beschreibung_Stationen.txt
        """

    func check(_ config: ConnectorConfig) -> [ConfigProblem] {
        typealias C = Configuration
        var problems: [ConfigProblem] = []
        let url = config[C.url] ?? ""
        if url.contains("{station}"), (config[C.stations] ?? []).isEmpty {
            problems.append(ConfigProblem(key: C.url.name, "'{station}' in url needs the station ids in 'stations'"))
        }
        for id in config[C.stations] ?? [] where id.isEmpty || !id.allSatisfy({ $0.isLetter || $0.isNumber }) {
            problems.append(ConfigProblem(key: C.stations.name, "'\(id)' is not a station id (letters and digits only, e.g. \"01766\" or \"10315\")"))
        }
        if config[C.product] == .poi, config.has(C.stationList) {
            problems.append(ConfigProblem(key: C.stationList.name, "station_list applies to climate products only; POI files carry no CDC station ids"))
        }
        return problems
    }

    func start(_ config: Configuration, context: ConnectorContext) throws -> any ConnectorRun {
        let url = config.url
        let ids = config.stations
        var locations: [String] = []
        if url.contains("{station}"), let ids {
            for id in ids {
                let fileID = DWDMetadata.stationID(id) ?? id
                locations += try expandLocation(url.replacingOccurrences(of: "{station}", with: fileID))
            }
        } else {
            locations = try expandLocation(url)
        }
        let filter = ids.map { Set($0.flatMap { id in [id, DWDMetadata.stationID(id)].compactMap { $0 } }) }
        return try DWDRun(locations: locations, product: config.product, filter: filter,
                          stationList: config.stationList, session: context.session, logger: context.logger)
    }
}
