import DatenwerkCore
import Foundation
import Testing

@testable import DatenwerkTransforms

/// Issue 12: the shared spelling table, unit names and IRIs, and the units the grown vocabulary needs.
@Suite struct UnitSpellingsTests {
    @Test(arguments: [
        ("°C", "Cel"), ("° C", "Cel"), ("grad C", "Cel"), ("Grad C", "Cel"), ("Grad Celsius", "Cel"), ("°c", "Cel"),
        ("µg/m³", "ug/m3"), ("ug/m3", "ug/m3"), ("µg / m³", "ug/m3"), ("mg/m³", "mg/m3"),
        ("%", "%"), ("km/h", "km/h"), ("m/s", "m/s"), ("Pa", "Pa"), ("hPa", "hPa"), ("bar", "bar"),
        ("kWh", "kW.h"), ("MWh", "MW.h"), ("W", "W"), ("kW", "kW"),
        ("Anzahl", "1"), ("Kfz", "1"), ("KFZ", "1"), ("Fz", "1"), ("Fahrzeuge", "1"), ("Stück", "1"), ("Personen", "1"),
        ("ppm", "[ppm]"), ("[ppm]", "[ppm]"), ("PPM", "[ppm]"), ("ppb", "[ppb]"), ("‰", "[ppth]"),
        ("dB", "dB"), ("dB(A)", "dB"), ("dBA", "dB"), ("dB (A)", "dB"), ("db(a)", "dB"), ("dB[A]", "dB"),
        ("m³/s", "m3/s"), ("m3/s", "m3/s"), ("l/s", "L/s"), ("L/s", "L/s"), ("m³/h", "m3/h"),
        ("cm", "cm"), ("km", "km"), ("m", "m"), ("lx", "lx"), ("Lux", "lx"), ("klx", "klx"),
        ("okta", "okta"), ("Achtel", "okta"), ("1/8", "okta"),
        // UN/CEFACT codes as NGSI unitCode gives them
        ("59", "[ppm]"), ("61", "[ppb]"), ("2N", "dB"),
    ])
    func spellings(spelling: String, code: String) {
        #expect(Units.canonicalSymbol(spelling) == code)
    }

    @Test func weightingsOtherThanAAreNotDecibelA() {
        // C- and Z-weighted levels are different quantities: refused, never stored as noise_level.
        #expect(Units.canonicalSymbol("dB(C)") == nil)
        #expect(Units.canonicalSymbol("dBZ") == nil)
    }

    @Test(arguments: [
        ("degree Celsius", "Cel"), ("Degree Celsius", "Cel"), ("degrees celsius", "Cel"), ("Grad Celsius", "Cel"),
        ("Anzahl", "1"), ("count", "1"), ("Count", "1"), ("Prozent", "%"), ("percent", "%"),
        ("microgram per cubic meter", "ug/m3"), ("Microgram per cubic metre", "ug/m3"),
        ("Mikrogramm pro Kubikmeter", "ug/m3"), ("milligram per cubic meter", "mg/m3"),
        ("metre per second", "m/s"), ("kilometer per hour", "km/h"), ("hectopascal", "hPa"), ("Hektopascal", "hPa"),
        ("kilowatt hour", "kW.h"), ("Kilowattstunde", "kW.h"), ("kilowatt-hour", "kW.h"), ("lux", "lx"),
        ("decibel", "dB"), ("Dezibel", "dB"), ("parts per million", "[ppm]"), ("cubic meter per second", "m3/s"),
        ("Zentimeter", "cm"), ("°C", "Cel"), ("Kfz", "1"),
    ])
    func names(name: String, code: String) {
        #expect(Units.fromName(name) == code)
    }

    @Test func unknownNames() {
        #expect(Units.fromName("") == nil)
        #expect(Units.fromName("furlongs per fortnight") == nil)
    }

    @Test(arguments: [
        ("http://qudt.org/vocab/unit/DEG_C", "Cel"), ("http://qudt.org/vocab/unit/NUM", "1"),
        ("http://qudt.org/vocab/unit/PERCENT", "%"), ("http://qudt.org/vocab/unit/MicroGM-PER-M3", "ug/m3"),
        ("http://qudt.org/vocab/unit/MilliGM-PER-M3", "mg/m3"), ("http://qudt.org/vocab/unit/M-PER-SEC", "m/s"),
        ("http://qudt.org/vocab/unit/HectoPA", "hPa"), ("http://qudt.org/vocab/unit/KiloW-HR", "kW.h"),
        ("http://qudt.org/vocab/unit/PPM", "[ppm]"), ("http://qudt.org/vocab/unit/DeciB", "dB"),
        ("http://qudt.org/vocab/unit/M3-PER-SEC", "m3/s"), ("http://qudt.org/vocab/unit/LUX", "lx"),
        ("http://qudt.org/vocab/unit/CentiM", "cm"), ("https://qudt.org/vocab/unit/KiloM-PER-HR", "km/h"),
        ("http://www.qudt.org/qudt/owl/1.0.0/unit/Instances.html#DegreeCelsius", "Cel"),
        ("http://www.qudt.org/qudt/owl/1.0.0/unit/Instances.html#Lux", "lx"),
        ("http://www.qudt.org/qudt/owl/1.0.0/unit/Instances.html#Percent", "%"),
        ("http://qudt.org/vocab/unit#MicrogramPerCubicMeter", "ug/m3"),
        ("http://www.opengis.net/def/uom/UCUM/0/Cel", "Cel"), ("http://www.opengis.net/def/uom/UCUM/0/ug/m3", "ug/m3"),
        ("http://www.opengis.net/def/uom/UCUM/0/%25", "%"), ("urn:ogc:def:uom:UCUM::m/s", "m/s"),
        ("http://unitsofmeasure.org/ucum.html#Cel", "Cel"), (" http://qudt.org/vocab/unit/DEG_C ", "Cel"),
    ])
    func definitions(iri: String, code: String) {
        #expect(Units.fromDefinition(iri) == code)
    }

    @Test func definitionsThatNameNoUnit() {
        // A section anchor of the UCUM specification: the same one is used for °C and for K, so no guess.
        #expect(Units.fromDefinition("http://unitsofmeasure.org/ucum.html#para-30") == nil)
        #expect(Units.fromDefinition("http://qudt.org/vocab/unit/FURLONG") == nil)
        #expect(Units.fromDefinition("https://example.org/units/celsius") == nil)
        #expect(Units.fromDefinition("") == nil)
        // UCUM codes in an IRI are exact: `cel` is not `Cel`.
        #expect(Units.fromDefinition("http://www.opengis.net/def/uom/UCUM/0/cel") == nil)
    }

    @Test func theResolutionChainH2Uses() {
        // SensorThings {name: "Anzahl", symbol: "Kfz", definition: QUDT NUM} — every part says "count".
        let symbol = "Kfz", name = "Anzahl", definition = "http://qudt.org/vocab/unit/NUM"
        #expect(Units.canonicalSymbol(symbol) ?? Units.fromName(name) ?? Units.fromDefinition(definition) == "1")
        #expect(Units.canonicalSymbol("Kfz/Intervall") ?? Units.fromName("Anzahl") == "1")
        #expect(Units.canonicalSymbol("?") ?? Units.fromName("?") ?? Units.fromDefinition("http://qudt.org/vocab/unit/DEG_C") == "Cel")
    }

    @Test func ratioConversions() throws {
        #expect(try Units.convert(8, from: "okta", to: "%") == 100)
        #expect(try Units.convert(3, from: "Achtel", to: "%") == 37.5)
        #expect(try Units.convert(0, from: "okta", to: "%") == 0)
        #expect(try Units.convert(50, from: "%", to: "okta") == 4)
        #expect(abs(try Units.convert(0.04, from: "%", to: "[ppm]") - 400) < 1e-9)
        #expect(abs(try Units.convert(420, from: "ppm", to: "%") - 0.042) < 1e-12)
        #expect(abs(try Units.convert(1500, from: "ppb", to: "ppm") - 1.5) < 1e-12)
        #expect(abs(try Units.convert(1, from: "‰", to: "%") - 0.1) < 1e-12)
        // A mixing ratio is not a mass concentration (that needs molar mass, pressure and temperature).
        #expect(throws: UnitError.self) { try Units.convert(40, from: "ppb", to: "ug/m3") }
        // Counts stay counts.
        #expect(throws: UnitError.self) { try Units.convert(1, from: "Kfz", to: "%") }
    }

    @Test func decibelsAreNeverScaled() throws {
        #expect(try Units.convert(54.3, from: "dB(A)", to: "dB") == 54.3)
        #expect(try Units.conversion(from: "dBA", to: "dB").from == "dB")
        let error = #expect(throws: UnitError.self) { try Units.convert(54, from: "dB", to: "%") }
        #expect(error?.description == "cannot convert 'dB' to '%': different dimensions (soundLevel and percent)")
        #expect(throws: UnitError.self) { try Units.convert(54, from: "dB", to: "1") }
    }

    @Test func flowLengthIlluminance() throws {
        #expect(try Units.convert(1500, from: "l/s", to: "m³/s") == 1.5)
        #expect(try Units.convert(3600, from: "m3/h", to: "m3/s") == 1)
        #expect(try Units.convert(1.2, from: "m", to: "cm") == 120)
        #expect(try Units.convert(12, from: "km", to: "m") == 12_000)
        #expect(try Units.convert(2.5, from: "klx", to: "lx") == 2500)
        #expect(abs(try Units.convert(1.013, from: "bar", to: "hPa") - 1013) < 1e-9)
    }

    @Test func everyVocabularyPropertyIsDocumented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/vocabulary.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        for property in Vocabulary.properties {
            #expect(text.contains("| `\(property.key)` | "), "docs/vocabulary.md misses \(property.key)")
            #expect(text.contains("| `\(property.unit)` |"), "docs/vocabulary.md misses the unit of \(property.key)")
        }
    }
}
