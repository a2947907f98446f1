import DatenwerkCore

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
        case percent, count, angle, radiantExposure, voltage
    }

    struct Unit: Sendable {
        let code: String
        let dimension: Dimension
        /// Multiplier into the base unit of the dimension (unused for temperature).
        let factor: Double
    }

    /// Every unit known, by UCUM code. Base units: Cel, m/s, W.h, W, ug/m3, Pa, s, mm, %, 1, deg, J/cm2, V.
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
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.code, $0) })
    }()

    /// Spellings (after normalising `²`, `³`, `µ`, `·` and spaces) that differ from their UCUM code.
    /// Case matters (`mW` is not `MW`), except for the words in `wordAliases`.
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
        // Ratios and counts
        "P1": "%", "C62": "1", "count": "1", "Anzahl": "1", "Stück": "1", "Stk": "1",
        // Angle, radiation, voltage
        "°": "deg", "DD": "deg", "degree": "deg", "degrees": "deg",
        "Wh/m2": "W.h/m2", "kWh/m2": "kW.h/m2",
        "VLT": "V",
    ]

    /// Words accepted in any letter case.
    static let wordAliases: [String: String] = [
        "count": "1", "anzahl": "1", "stück": "1", "stk": "1", "percent": "%", "prozent": "%",
        "kelvin": "K", "degree": "deg", "degrees": "deg", "grad": "deg", "kmh": "km/h",
    ]

    /// The UCUM code for a spelling (`°C` → `Cel`, `µg/m³` → `ug/m3`, `KMH` → `km/h`), or nil.
    package static func canonicalSymbol(_ text: String) -> String? {
        unit(text)?.code
    }

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

    private static func suggestion(for text: String) -> String {
        guard text.count >= 3, let match = closestMatch(to: text, in: Array(units.keys) + Array(aliases.keys)) else { return "" }
        return "; did you mean '\(match)'?"
    }
}
