import DatenwerkCore
import Foundation

/// A unit that is unknown or cannot be converted to another.
package struct UnitError: Error, Sendable, Hashable, CustomStringConvertible {
    package var from: String
    package var to: String
    package var reason: String

    package init(from: String, to: String, reason: String) {
        self.from = from
        self.to = to
        self.reason = reason
    }

    /// `cannot convert 'km/h' to 'Cel': different dimensions`
    package var description: String { "cannot convert '\(from)' to '\(to)': \(reason)" }
}

/// UCUM unit codes for the spellings sources use, and conversions between them.
///
/// Each unit is `value × factor` in the base unit of its dimension; temperatures
/// go through degrees Celsius with their offsets.
package enum Units {
    package enum Dimension: String, Sendable, Hashable {
        case temperature, speed, energy, power, massConcentration, pressure, time, length
        /// Dimensionless ratios: `%`, `[ppm]`, `[ppb]`, `[ppth]` and okta (eighths of the sky).
        case percent
        /// Plain numbers: counts (`1`). Deliberately not convertible to `%`: a count is not a share.
        case count
        case angle, radiantExposure, voltage
        /// Sound pressure level in decibel. Logarithmic: never scaled, only `dB` to `dB`.
        case soundLevel
        case volumeFlow, illuminance
    }

    struct Unit: Sendable {
        let code: String
        let dimension: Dimension
        /// Multiplier into the base unit of the dimension (unused for temperature).
        let factor: Double
    }

    /// Every unit known, by UCUM code. Base units: Cel, m/s, W.h, W, ug/m3, Pa, s, mm, %, 1, deg, J/cm2, V, dB,
    /// m3/s, lx.
    static let units: [String: Unit] = {
        let list: [Unit] = [
            Unit(code: "Cel", dimension: .temperature, factor: 1),
            Unit(code: "[degF]", dimension: .temperature, factor: 1),
            Unit(code: "K", dimension: .temperature, factor: 1),
            Unit(code: "m/s", dimension: .speed, factor: 1),
            Unit(code: "km/h", dimension: .speed, factor: 1000.0 / 3600.0),
            Unit(code: "[kn_i]", dimension: .speed, factor: 1852.0 / 3600.0),
            Unit(code: "W.h", dimension: .energy, factor: 1),
            Unit(code: "kW.h", dimension: .energy, factor: 1e3),
            Unit(code: "MW.h", dimension: .energy, factor: 1e6),
            Unit(code: "GW.h", dimension: .energy, factor: 1e9),
            Unit(code: "J", dimension: .energy, factor: 1.0 / 3600.0),
            Unit(code: "W", dimension: .power, factor: 1),
            Unit(code: "kW", dimension: .power, factor: 1e3),
            Unit(code: "MW", dimension: .power, factor: 1e6),
            Unit(code: "GW", dimension: .power, factor: 1e9),
            Unit(code: "ng/m3", dimension: .massConcentration, factor: 1e-3),
            Unit(code: "ug/m3", dimension: .massConcentration, factor: 1),
            Unit(code: "mg/m3", dimension: .massConcentration, factor: 1e3),
            Unit(code: "Pa", dimension: .pressure, factor: 1),
            Unit(code: "hPa", dimension: .pressure, factor: 100),
            Unit(code: "kPa", dimension: .pressure, factor: 1000),
            Unit(code: "s", dimension: .time, factor: 1),
            Unit(code: "min", dimension: .time, factor: 60),
            Unit(code: "h", dimension: .time, factor: 3600),
            Unit(code: "d", dimension: .time, factor: 86_400),
            Unit(code: "mm", dimension: .length, factor: 1),
            Unit(code: "cm", dimension: .length, factor: 10),
            Unit(code: "m", dimension: .length, factor: 1000),
            Unit(code: "L/m2", dimension: .length, factor: 1),
            Unit(code: "%", dimension: .percent, factor: 1),
            Unit(code: "1", dimension: .count, factor: 1),
            Unit(code: "deg", dimension: .angle, factor: 1),
            Unit(code: "J/cm2", dimension: .radiantExposure, factor: 1),
            Unit(code: "J/m2", dimension: .radiantExposure, factor: 1e-4),
            Unit(code: "W.h/m2", dimension: .radiantExposure, factor: 0.36),
            Unit(code: "kW.h/m2", dimension: .radiantExposure, factor: 360),
            Unit(code: "V", dimension: .voltage, factor: 1),
            Unit(code: "mV", dimension: .voltage, factor: 1e-3),
            Unit(code: "km", dimension: .length, factor: 1e6),
            Unit(code: "bar", dimension: .pressure, factor: 1e5),
            Unit(code: "[ppth]", dimension: .percent, factor: 0.1),
            Unit(code: "[ppm]", dimension: .percent, factor: 1e-4),
            Unit(code: "[ppb]", dimension: .percent, factor: 1e-7),
            // Okta is no UCUM unit: it is accepted as a source spelling only and always stored as `%`
            // (1 okta = one eighth of the sky = 12.5 %). See docs/vocabulary.md.
            Unit(code: "okta", dimension: .percent, factor: 12.5),
            // `dB` is the UCUM decibel. UCUM has no code for a frequency weighting (`dB[A]` is not
            // valid UCUM), so the weighting lives in the property (`noise_level` is A-weighted).
            Unit(code: "dB", dimension: .soundLevel, factor: 1),
            Unit(code: "m3/s", dimension: .volumeFlow, factor: 1),
            Unit(code: "m3/h", dimension: .volumeFlow, factor: 1.0 / 3600.0),
            Unit(code: "L/s", dimension: .volumeFlow, factor: 1e-3),
            Unit(code: "lx", dimension: .illuminance, factor: 1),
            Unit(code: "klx", dimension: .illuminance, factor: 1e3),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.code, $0) })
    }()

    /// The one shared table of unit spellings → UCUM: every spelling (after normalising `²`, `³`, `µ`, `·` and
    /// dropping spaces, so `° C` is `°C` and `m³/s` is `m3/s`) that differs from its UCUM code. Connectors, the
    /// mapper's `unit:` and `unit_field:` and the SensorThings `unitOfMeasurement.symbol` all resolve through it.
    /// Case matters (`mW` is not `MW`), except for the words in `wordAliases`. Documented in docs/vocabulary.md.
    static let aliases: [String: String] = [
        // Temperature
        "°C": "Cel", "degC": "Cel", "C": "Cel", "℃": "Cel", "CEL": "Cel",
        "°F": "[degF]", "degF": "[degF]", "F": "[degF]", "℉": "[degF]", "FAH": "[degF]",
        "KEL": "K", "kelvin": "K",
        // Speed
        "kmh": "km/h", "km/hr": "km/h", "kph": "km/h", "KMH": "km/h",
        "ms-1": "m/s", "m.s-1": "m/s", "MTS": "m/s",
        "kn": "[kn_i]", "kt": "[kn_i]", "KNT": "[kn_i]",
        // Energy and power
        "Wh": "W.h", "kWh": "kW.h", "MWh": "MW.h", "GWh": "GW.h",
        "WHR": "W.h", "KWH": "kW.h", "MWH": "MW.h", "GWH": "GW.h",
        "WTT": "W", "KWT": "kW", "MAW": "MW", "A90": "GW",
        // Concentration
        "ug/m^3": "ug/m3", "ug.m-3": "ug/m3", "GQ": "ug/m3",
        "mg/m^3": "mg/m3", "mg.m-3": "mg/m3", "GP": "mg/m3",
        // Pressure
        "mbar": "hPa", "A97": "hPa", "PAL": "Pa", "KPA": "kPa",
        // Time
        "sec": "s", "SEC": "s", "MIN": "min", "hr": "h", "HUR": "h", "DAY": "d",
        // Length
        "MMT": "mm", "CMT": "cm", "MTR": "m", "l/m2": "L/m2",
        "KMT": "km",
        // Ratios and counts
        "P1": "%", "C62": "1", "count": "1", "Anzahl": "1", "Stück": "1", "Stk": "1",
        "ppm": "[ppm]", "PPM": "[ppm]", "ppb": "[ppb]", "PPB": "[ppb]",
        "‰": "[ppth]", "ppth": "[ppth]",
        // UN/CEFACT Rec. 20 codes in NGSI `unitCode`: 59 part per million, 61 part per billion, 2N decibel.
        "59": "[ppm]", "61": "[ppb]", "2N": "dB",
        "Okta": "okta", "oktas": "okta", "octa": "okta", "1/8": "okta", "/8": "okta",
        // Angle, radiation, voltage
        "°": "deg", "DD": "deg", "degree": "deg", "degrees": "deg",
        "Wh/m2": "W.h/m2", "kWh/m2": "kW.h/m2",
        "VLT": "V",
        // Sound level (A-weighting is what municipal noise sensors report; see `Dimension.soundLevel`)
        "dB(A)": "dB", "dBA": "dB", "dB[A]": "dB", "dB_A": "dB",
        // Volume flow, illuminance
        "m^3/s": "m3/s", "m3.s-1": "m3/s", "MQS": "m3/s", "m^3/h": "m3/h", "MQH": "m3/h",
        "l/s": "L/s", "LTR/s": "L/s",
        "LUX": "lx", "KLX": "klx",
    ]

    /// Words accepted in any letter case (matched after the normalising above, so without spaces:
    /// `Grad Celsius` is looked up as `gradcelsius`).
    static let wordAliases: [String: String] = [
        "count": "1", "anzahl": "1", "stück": "1", "stk": "1", "percent": "%", "prozent": "%",
        "kfz": "1", "fz": "1", "fahrzeuge": "1", "fahrzeug": "1", "fahrräder": "1", "personen": "1",
        "kelvin": "K", "degree": "deg", "degrees": "deg", "grad": "deg", "kmh": "km/h",
        "°c": "Cel", "gradc": "Cel", "grdc": "Cel", "celsius": "Cel", "gradcelsius": "Cel", "degreecelsius": "Cel",
        "degreescelsius": "Cel",
        "ppm": "[ppm]", "ppmv": "[ppm]", "vpm": "[ppm]", "ppb": "[ppb]", "ppbv": "[ppb]",
        "db": "dB", "db(a)": "dB", "dba": "dB", "db[a]": "dB",
        "okta": "okta", "oktas": "okta", "achtel": "okta",
        "lux": "lx",
    ]

    /// The UCUM code for a spelling (`°C` → `Cel`, `µg/m³` → `ug/m3`, `KMH` → `km/h`), or nil.
    package static func canonicalSymbol(_ text: String) -> String? {
        unit(text)?.code
    }

    /// The UCUM code for a unit's name, in English or German (`degree Celsius`, `Grad Celsius`, `Anzahl`, `count`,
    /// `Prozent`, `microgram per cubic meter`), or nil. Case, spaces, `-`/`_` and `metre`/`meter` do not matter;
    /// a name that is itself a known spelling (`°C`, `Kfz`) resolves like a symbol.
    package static func fromName(_ name: String) -> String? {
        let key = nameKey(name)
        guard !key.isEmpty else { return nil }
        if let code = names[key] { return code }
        return canonicalSymbol(name)
    }

    /// The UCUM code a unit IRI stands for, or nil:
    /// - QUDT, old and new (`http://qudt.org/vocab/unit/DEG_C`, `http://qudt.org/vocab/unit/NUM`,
    ///   `http://www.qudt.org/qudt/owl/1.0.0/unit/Instances.html#DegreeCelsius`, `…/unit#MicrogramPerCubicMeter`),
    ///   by the local name after the last `/` or `#`, in any case;
    /// - UCUM codes in the IRI: `http://www.opengis.net/def/uom/UCUM/0/Cel`, `urn:ogc:def:uom:UCUM::ug/m3`,
    ///   `http://unitsofmeasure.org/ucum.html#Cel` (percent-encoding decoded).
    ///
    /// `http://unitsofmeasure.org/ucum.html#para-NN` is an anchor of a *section* of the UCUM specification, not a
    /// unit: the OGC SensorThings examples put `#para-30` on a degree-Celsius Datastream, other servers put the same
    /// anchor on kelvin. It resolves to nil on purpose (a guessed unit would be converted silently and wrongly);
    /// the symbol and the name, which are looked at first, decide such a Datastream.
    package static func fromDefinition(_ iri: String) -> String? {
        let text = iri.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        let lower = text.lowercased()
        if lower.contains("qudt") {
            guard let local = localName(text) else { return nil }
            return qudt[local.lowercased()]
        }
        let code: Substring
        if let range = text.range(of: "/UCUM/0/", options: .caseInsensitive) ?? text.range(of: "/UCUM/", options: .caseInsensitive) {
            code = text[range.upperBound...]
        } else if let range = text.range(of: "UCUM::", options: .caseInsensitive) {
            code = text[range.upperBound...]
        } else if lower.contains("unitsofmeasure.org") || lower.contains("ucum.org"), let hash = text.lastIndex(of: "#") {
            code = text[text.index(after: hash)...]
        } else {
            return nil
        }
        let decoded = String(code).removingPercentEncoding ?? String(code)
        if decoded.lowercased().hasPrefix("para-") { return nil }
        // A UCUM code is read as UCUM: exactly, without the case-insensitive words of the spelling table.
        return units[decoded]?.code ?? units[aliases[decoded] ?? ""]?.code
    }

    private static func localName(_ iri: String) -> String? {
        guard let cut = iri.lastIndex(where: { $0 == "/" || $0 == "#" }) else { return nil }
        let local = iri[iri.index(after: cut)...]
        return local.isEmpty ? nil : String(local)
    }

    private static func nameKey(_ name: String) -> String {
        var key = name.lowercased()
        for (from, to) in [("metre", "meter"), ("litre", "liter"), ("ä", "ae"), ("ö", "oe"), ("ü", "ue")] {
            key = key.replacingOccurrences(of: from, with: to)
        }
        return String(key.unicodeScalars.filter { !" \t-_".unicodeScalars.contains($0) }.map(Character.init))
    }

    /// Unit names (keys as `nameKey` writes them: lowercase, no spaces, `meter`, `ae`/`oe`/`ue`).
    static let names: [String: String] = [
        "degreecelsius": "Cel", "degreescelsius": "Cel", "celsius": "Cel", "gradcelsius": "Cel",
        "degreefahrenheit": "[degF]", "fahrenheit": "[degF]", "kelvin": "K",
        "count": "1", "number": "1", "anzahl": "1", "stueck": "1", "fahrzeuge": "1", "unitless": "1", "dimensionless": "1",
        "percent": "%", "prozent": "%", "partspermillion": "[ppm]", "partsperbillion": "[ppb]", "okta": "okta", "achtel": "okta",
        "microgrampercubicmeter": "ug/m3", "mikrogrammprokubikmeter": "ug/m3",
        "milligrampercubicmeter": "mg/m3", "milligrammprokubikmeter": "mg/m3",
        "nanogrampercubicmeter": "ng/m3", "nanogrammprokubikmeter": "ng/m3",
        "meterpersecond": "m/s", "meterprosekunde": "m/s", "kilometerperhour": "km/h", "kilometerprostunde": "km/h",
        "knot": "[kn_i]", "knoten": "[kn_i]",
        "pascal": "Pa", "hectopascal": "hPa", "hektopascal": "hPa", "kilopascal": "kPa", "millibar": "hPa", "bar": "bar",
        "watt": "W", "kilowatt": "kW", "megawatt": "MW", "gigawatt": "GW",
        "watthour": "W.h", "kilowatthour": "kW.h", "megawatthour": "MW.h", "gigawatthour": "GW.h",
        "wattstunde": "W.h", "kilowattstunde": "kW.h", "megawattstunde": "MW.h", "gigawattstunde": "GW.h",
        "millimeter": "mm", "centimeter": "cm", "zentimeter": "cm", "meter": "m", "kilometer": "km",
        "second": "s", "sekunde": "s", "minute": "min", "hour": "h", "stunde": "h", "day": "d", "tag": "d",
        "degree": "deg", "grad": "deg", "decibel": "dB", "dezibel": "dB", "decibela": "dB", "dezibela": "dB",
        "cubicmeterpersecond": "m3/s", "kubikmeterprosekunde": "m3/s", "literpersecond": "L/s", "literprosekunde": "L/s",
        "lux": "lx", "kilolux": "klx", "volt": "V", "millivolt": "mV",
        "joulepersquarecentimeter": "J/cm2", "joulepersquaremeter": "J/m2",
    ]

    /// QUDT unit local names, v2 (`DEG_C`) and v1 (`DegreeCelsius`), lowercased.
    static let qudt: [String: String] = [
        "deg_c": "Cel", "degreecelsius": "Cel", "deg_f": "[degF]", "degreefahrenheit": "[degF]", "k": "K", "kelvin": "K",
        "num": "1", "unitless": "1", "number": "1", "percent": "%", "ppm": "[ppm]", "partspermillion": "[ppm]",
        "ppb": "[ppb]", "partsperbillion": "[ppb]", "permille": "[ppth]", "ppth": "[ppth]",
        "microgm-per-m3": "ug/m3", "microgrampercubicmeter": "ug/m3", "milligm-per-m3": "mg/m3",
        "milligrampercubicmeter": "mg/m3", "nanogm-per-m3": "ng/m3", "nanogrampercubicmeter": "ng/m3",
        "m-per-sec": "m/s", "meterpersecond": "m/s", "kilom-per-hr": "km/h", "kilometerperhour": "km/h",
        "kn": "[kn_i]", "knot": "[kn_i]",
        "pa": "Pa", "pascal": "Pa", "hectopa": "hPa", "hectopascal": "hPa", "kilopa": "kPa", "kilopascal": "kPa",
        "millibar": "hPa", "bar": "bar",
        "w": "W", "watt": "W", "kilow": "kW", "kilowatt": "kW", "megaw": "MW", "megawatt": "MW", "gigaw": "GW", "gigawatt": "GW",
        "w-hr": "W.h", "watthour": "W.h", "kilow-hr": "kW.h", "kilowatthour": "kW.h", "megaw-hr": "MW.h",
        "megawatthour": "MW.h", "gigaw-hr": "GW.h", "gigawatthour": "GW.h",
        "millim": "mm", "millimeter": "mm", "centim": "cm", "centimeter": "cm", "m": "m", "meter": "m",
        "kilom": "km", "kilometer": "km",
        "sec": "s", "secondtime": "s", "min": "min", "minutetime": "min", "hr": "h", "hour": "h", "day": "d",
        "deg": "deg", "degreeangle": "deg", "decib": "dB", "decibel": "dB", "decib_a": "dB",
        "m3-per-sec": "m3/s", "cubicmeterpersecond": "m3/s", "m3-per-hr": "m3/h", "l-per-sec": "L/s",
        "literpersecond": "L/s", "lux": "lx", "kilolux": "klx", "v": "V", "volt": "V", "milliv": "mV", "millivolt": "mV",
        "j-per-centim2": "J/cm2", "j-per-m2": "J/m2", "joulepersquaremeter": "J/m2",
    ]

    /// The dimension of a unit spelling, or nil when it is unknown.
    package static func dimension(of text: String) -> Dimension? {
        unit(text)?.dimension
    }

    static func unit(_ text: String) -> Unit? {
        if let unit = units[text] { return unit }
        let normalized = normalize(text)
        if let unit = units[normalized] { return unit }
        if let code = aliases[normalized] ?? wordAliases[normalized.lowercased()] { return units[code] }
        return nil
    }

    /// Trims, drops inner spaces, and writes superscripts, micro signs and middle dots as UCUM does.
    private static func normalize(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case " ", "\t", "\u{00A0}": continue
            case "²": out += "2"
            case "³": out += "3"
            case "µ", "μ": out += "u"         // MICRO SIGN and GREEK SMALL LETTER MU
            case "·", "⋅", "*": out += "."
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A conversion between two units, resolved once and applied per value.
    package struct Conversion: Sendable, Hashable {
        package let from: String
        package let to: String
        private let kind: Kind

        private enum Kind: Hashable, Sendable {
            case identity
            case scale(Double)
            case temperature(from: String, to: String)
        }

        fileprivate init(from: Unit, to: Unit) {
            self.from = from.code
            self.to = to.code
            if from.code == to.code {
                kind = .identity
            } else if from.dimension == .temperature {
                kind = .temperature(from: from.code, to: to.code)
            } else {
                kind = .scale(from.factor / to.factor)
            }
        }

        @inline(__always)
        package func apply(_ value: Double) -> Double {
            switch kind {
            case .identity: return value
            case .scale(let factor): return value * factor
            case .temperature(let from, let to):
                let celsius: Double
                switch from {
                case "[degF]": celsius = (value - 32) * 5 / 9
                case "K": celsius = value - 273.15
                default: celsius = value
                }
                switch to {
                case "[degF]": return celsius * 9 / 5 + 32
                case "K": return celsius + 273.15
                default: return celsius
                }
            }
        }
    }

    /// The conversion from one unit spelling to another; throws when either is unknown or the dimensions differ.
    package static func conversion(from: String, to: String) throws(UnitError) -> Conversion {
        guard let source = unit(from) else {
            throw UnitError(from: from, to: to, reason: "unknown unit '\(from)'\(suggestion(for: from))")
        }
        guard let target = unit(to) else {
            throw UnitError(from: from, to: to, reason: "unknown unit '\(to)'\(suggestion(for: to))")
        }
        guard source.dimension == target.dimension else {
            throw UnitError(
                from: from, to: to,
                reason: "different dimensions (\(source.dimension.rawValue) and \(target.dimension.rawValue))")
        }
        return Conversion(from: source, to: target)
    }

    /// `value` in `from` expressed in `to`. Both may be any accepted spelling.
    package static func convert(_ value: Double, from: String, to: String) throws(UnitError) -> Double {
        try conversion(from: from, to: to).apply(value)
    }

    /// "; did you mean 'km/h'?" — the closest UCUM code or spelling; on a tie a UCUM code before another spelling,
    /// then alphabetically (deterministic: never the order of a dictionary).
    static func suggestion(for text: String) -> String {
        guard text.count >= 3 else { return "" }
        let text = normalize(text)      // `µg/Nm³` is compared as `ug/Nm3`
        let code = closestMatchWithDistance(to: text, in: units.keys)
        let spelling = closestMatchWithDistance(to: text, in: aliases.keys)
        let match: String?
        switch (code, spelling) {
        case let (code?, spelling?): match = code.distance <= spelling.distance ? code.candidate : spelling.candidate
        case let (code?, nil): match = code.candidate
        case let (nil, spelling?): match = spelling.candidate
        case (nil, nil): match = nil
        }
        return match.map { "; did you mean '\($0)'?" } ?? ""
    }
}
