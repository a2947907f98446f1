/// A point in WGS84 (EPSG:4326), longitude first as in GeoJSON and PostGIS.
package struct GeoPoint: Sendable, Hashable {
    package var longitude: Double
    package var latitude: Double
    package var altitude: Double?

    package init(longitude: Double, latitude: Double, altitude: Double? = nil) {
        self.longitude = longitude
        self.latitude = latitude
        self.altitude = altitude
    }
}

/// A position in a projected or other non-WGS84 reference system (e.g. EPSG:25832 easting/northing).
package struct SourceCoordinates: Sendable, Hashable {
    package var x: Double
    package var y: Double
    package var epsg: Int

    package init(x: Double, y: Double, epsg: Int) {
        self.x = x
        self.y = y
        self.epsg = epsg
    }
}

/// A station (feature of interest) in the common model.
package struct Station: Sendable, Hashable {
    /// Stable key `<source>:<external id>`, unique per tenant.
    package var key: String
    package var name: String?
    package var kind: String?
    package var location: GeoPoint?
    /// The coordinates as the source gave them, when not in WGS84: the database computes the stored
    /// geometry from these with PostGIS `ST_Transform`, so stored positions agree with PostGIS exactly.
    package var sourceCoordinates: SourceCoordinates?
    package var properties: JSONValue

    package init(key: String, name: String? = nil, kind: String? = nil, location: GeoPoint? = nil, sourceCoordinates: SourceCoordinates? = nil, properties: JSONValue = .object([])) {
        self.key = key
        self.name = name
        self.kind = kind
        self.location = location
        self.sourceCoordinates = sourceCoordinates
        self.properties = properties
    }
}

/// One observation: a numeric result of one property at one station for an instant or an interval.
///
/// Times are microseconds since 1970-01-01T00:00:00Z (UTC), so they are exact and cheap to compare.
/// Equality and hashing cover the observation itself, not its `provenance`.
package struct Observation: Sendable, Hashable {
    package var stationKey: String
    package var property: String
    package var phenomenonStart: Int64
    package var phenomenonEnd: Int64?
    package var result: Double
    package var quality: String?
    /// The source record it came from (location and raw text), when the maker knows it: a conflicting duplicate
    /// found at load time is quarantined with it. Nil: the run's origin and the observation itself stand in.
    package var provenance: Provenance?

    package init(stationKey: String, property: String, phenomenonStart: Int64, phenomenonEnd: Int64? = nil, result: Double, quality: String? = nil, provenance: Provenance? = nil) {
        self.stationKey = stationKey
        self.property = property
        self.phenomenonStart = phenomenonStart
        self.phenomenonEnd = phenomenonEnd
        self.result = result
        self.quality = quality
        self.provenance = provenance
    }

    package static func == (a: Observation, b: Observation) -> Bool {
        a.stationKey == b.stationKey && a.property == b.property && a.phenomenonStart == b.phenomenonStart
            && a.phenomenonEnd == b.phenomenonEnd && a.result == b.result && a.quality == b.quality
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(stationKey)
        hasher.combine(property)
        hasher.combine(phenomenonStart)
        hasher.combine(phenomenonEnd)
        hasher.combine(result)
        hasher.combine(quality)
    }
}

/// A record rejected on the way in, with the raw payload so nothing is lost.
package struct QuarantinedRecord: Sendable, Hashable {
    package var error: RecordError
    package var raw: String
    /// The record as decoded (field → value) when it got that far; `quarantine replay` maps it again
    /// without needing the rest of its document (a CSV line's header, a JSON document's shape).
    package var fields: JSONValue?
    /// How many values of the source this record stands for in the run's accounting (values read = loaded +
    /// quarantined + skipped): a whole CSV row with five value columns that fails on its time is 5; an
    /// unreadable line or one bad value is 1.
    package var values: Int

    package init(error: RecordError, raw: String, fields: JSONValue? = nil, values: Int = 1) {
        self.error = error
        self.raw = raw
        self.fields = fields
        self.values = values
    }
}

/// What the transform stage hands to a sink, in order.
///
/// Stations and quarantined records are rare and large (about 130 bytes each inline): kept boxed, an item is the
/// size of an observation (96 instead of 144 bytes a slot), which is what a batch holds a million of.
package enum StagedItem: Sendable, Hashable {
    indirect case station(Station)
    case observation(Observation)
    indirect case quarantined(QuarantinedRecord)
}

/// An entry of the controlled vocabulary: one canonical UCUM unit per key.
package struct ObservedProperty: Sendable, Hashable {
    package var key: String
    package var unit: String
    package var labelDE: String
    package var labelEN: String
    /// Plausible range in the canonical unit; values outside are rejected.
    package var range: ClosedRange<Double>?
    /// True when a value covers an interval (counts, energy per period).
    package var perInterval: Bool

    package init(_ key: String, unit: String, de: String, en: String, range: ClosedRange<Double>? = nil, perInterval: Bool = false) {
        self.key = key
        self.unit = unit
        self.labelDE = de
        self.labelEN = en
        self.range = range
        self.perInterval = perInterval
    }
}

/// The controlled vocabulary of observed properties.
package enum Vocabulary {
    package static let properties: [ObservedProperty] = [
        .init("air_temperature", unit: "Cel", de: "Lufttemperatur", en: "Air temperature", range: -80...60),
        .init("temperature", unit: "Cel", de: "Temperatur (Gerät, Wasser, Oberfläche)", en: "Temperature (device, water, surface)", range: -273.15...5000),
        .init("relative_humidity", unit: "%", de: "Relative Luftfeuchte", en: "Relative humidity", range: 0...100),
        .init("precipitation", unit: "mm", de: "Niederschlagshöhe", en: "Precipitation", range: 0...500, perInterval: true),
        .init("air_pressure", unit: "hPa", de: "Luftdruck", en: "Air pressure", range: 300...1100),
        .init("wind_speed", unit: "m/s", de: "Windgeschwindigkeit", en: "Wind speed", range: 0...120),
        .init("wind_direction", unit: "deg", de: "Windrichtung", en: "Wind direction", range: 0...360),
        .init("global_radiation", unit: "J/cm2", de: "Globalstrahlung", en: "Global radiation", range: 0...10000, perInterval: true),
        .init("diffuse_radiation", unit: "J/cm2", de: "Diffuse Himmelsstrahlung", en: "Diffuse radiation", range: 0...10000, perInterval: true),
        .init("sunshine_duration", unit: "min", de: "Sonnenscheindauer", en: "Sunshine duration", range: 0...1440, perInterval: true),
        .init("pm10_concentration", unit: "ug/m3", de: "Feinstaub PM10", en: "PM10 concentration", range: 0...2000),
        .init("pm2_5_concentration", unit: "ug/m3", de: "Feinstaub PM2,5", en: "PM2.5 concentration", range: 0...2000),
        .init("pm1_concentration", unit: "ug/m3", de: "Feinstaub PM1", en: "PM1 concentration", range: 0...2000),
        .init("no2_concentration", unit: "ug/m3", de: "Stickstoffdioxid", en: "NO2 concentration", range: 0...2000),
        .init("o3_concentration", unit: "ug/m3", de: "Ozon", en: "O3 concentration", range: 0...1000),
        .init("so2_concentration", unit: "ug/m3", de: "Schwefeldioxid", en: "SO2 concentration", range: 0...5000),
        .init("co_concentration", unit: "mg/m3", de: "Kohlenmonoxid", en: "CO concentration", range: 0...500),
        .init("vehicle_count", unit: "1", de: "Kfz-Anzahl", en: "Vehicle count", range: 0...1_000_000, perInterval: true),
        .init("bicycle_count", unit: "1", de: "Radverkehr-Anzahl", en: "Bicycle count", range: 0...1_000_000, perInterval: true),
        .init("average_speed", unit: "km/h", de: "Mittlere Geschwindigkeit", en: "Average speed", range: 0...400),
        .init("travel_time", unit: "s", de: "Reisezeit", en: "Travel time", range: 0...86400),
        .init("parking_free_spaces", unit: "1", de: "Freie Stellplätze", en: "Free parking spaces", range: 0...100_000),
        .init("parking_capacity", unit: "1", de: "Stellplatzkapazität", en: "Parking capacity", range: 0...100_000),
        .init("electricity_generation", unit: "MW.h", de: "Stromerzeugung", en: "Electricity generation", range: 0...1e9, perInterval: true),
        .init("electricity_consumption", unit: "MW.h", de: "Stromverbrauch", en: "Electricity consumption", range: 0...1e9, perInterval: true),
        .init("electric_power", unit: "kW", de: "Elektrische Leistung", en: "Electric power", range: -1e9...1e9),
        .init("battery_voltage", unit: "V", de: "Batteriespannung", en: "Battery voltage", range: 0...100),
        // Issue 12: what German smart-city projects measure (documented in docs/vocabulary.md, one table).
        // Noise: UCUM `dB`; the A-weighting (equivalent continuous level L_Aeq) is part of the property, since
        // UCUM has no code for a frequency weighting. `dB(A)`, `dBA` are accepted spellings of it.
        .init("noise_level", unit: "dB", de: "Schallpegel (A-bewertet, LAeq)", en: "Noise level (A-weighted, LAeq)", range: 0...160),
        .init("co2_concentration", unit: "[ppm]", de: "Kohlendioxid (CO₂)", en: "CO₂ concentration", range: 0...40_000),
        .init("dew_point_temperature", unit: "Cel", de: "Taupunkttemperatur", en: "Dew point temperature", range: -90...50),
        .init("wind_gust_speed", unit: "m/s", de: "Windböe (Spitzengeschwindigkeit)", en: "Wind gust speed", range: 0...150),
        .init("visibility", unit: "m", de: "Sichtweite", en: "Visibility", range: 0...500_000),
        .init("cloud_cover", unit: "%", de: "Bedeckungsgrad", en: "Cloud cover", range: 0...100),
        .init("snow_depth", unit: "cm", de: "Schneehöhe", en: "Snow depth", range: 0...2000),
        .init("illuminance", unit: "lx", de: "Beleuchtungsstärke", en: "Illuminance", range: 0...200_000),
        .init("uv_index", unit: "1", de: "UV-Index", en: "UV index", range: 0...25),
        .init("water_level", unit: "cm", de: "Wasserstand (Pegel)", en: "Water level (gauge)", range: -1000...10_000),
        .init("discharge", unit: "m3/s", de: "Abfluss", en: "Discharge", range: 0...100_000),
        .init("water_temperature", unit: "Cel", de: "Wassertemperatur", en: "Water temperature", range: -5...60),
        .init("soil_moisture", unit: "%", de: "Bodenfeuchte (volumetrisch)", en: "Soil moisture (volumetric)", range: 0...100),
        .init("soil_temperature", unit: "Cel", de: "Bodentemperatur", en: "Soil temperature", range: -50...70),
        .init("pedestrian_count", unit: "1", de: "Fußverkehr-Anzahl", en: "Pedestrian count", range: 0...1_000_000, perInterval: true),
        .init("heavy_vehicle_count", unit: "1", de: "Schwerverkehr-Anzahl (Lkw, Längenklasse)", en: "Heavy vehicle count (length class)", range: 0...1_000_000, perInterval: true),
        .init("occupancy", unit: "%", de: "Belegung (Fahrstreifen, Stellplätze)", en: "Occupancy (lane, parking)", range: 0...100),
        .init("headway", unit: "s", de: "Zeitlücke (Folgezeit)", en: "Headway", range: 0...86_400),
        .init("charging_points_available", unit: "1", de: "Freie Ladepunkte", en: "Available charging points", range: 0...10_000),
        .init("charging_points_occupied", unit: "1", de: "Belegte Ladepunkte", en: "Occupied charging points", range: 0...10_000),
        .init("energy_meter_reading", unit: "kW.h", de: "Zählerstand Energie (kumuliert)", en: "Energy meter reading (cumulative)", range: 0...1e12),
    ]

    private static let byKey: [String: ObservedProperty] = Dictionary(uniqueKeysWithValues: properties.map { ($0.key, $0) })

    package static func property(_ key: String) -> ObservedProperty? { byKey[key] }
}
