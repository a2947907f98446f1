/// The controlled vocabularies a DCAT-AP.de catalog draws from, with the labels the HTML page shows.
///
/// Licences and contributor IDs are the lists GovData's validator bundles (dcat-ap.de, 2020-07-15);
/// data themes and frequencies are the EU Publications Office authority tables.

/// An EU data theme (`http://publications.europa.eu/resource/authority/data-theme/<code>`).
package struct DataTheme: Sendable, Hashable {
    package var code: String
    package var labelDE: String
    package var labelEN: String

    package static let scheme = "http://publications.europa.eu/resource/authority/data-theme"
    package var iri: String { Self.scheme + "/" + code }

    package static let all: [DataTheme] = [
        .init(code: "AGRI", labelDE: "Landwirtschaft, Fischerei, Forstwirtschaft und Nahrungsmittel", labelEN: "Agriculture, fisheries, forestry and food"),
        .init(code: "ECON", labelDE: "Wirtschaft und Finanzen", labelEN: "Economy and finance"),
        .init(code: "EDUC", labelDE: "Bildung, Kultur und Sport", labelEN: "Education, culture and sport"),
        .init(code: "ENER", labelDE: "Energie", labelEN: "Energy"),
        .init(code: "ENVI", labelDE: "Umwelt", labelEN: "Environment"),
        .init(code: "GOVE", labelDE: "Regierung und öffentlicher Sektor", labelEN: "Government and public sector"),
        .init(code: "HEAL", labelDE: "Gesundheit", labelEN: "Health"),
        .init(code: "INTR", labelDE: "Internationale Themen", labelEN: "International issues"),
        .init(code: "JUST", labelDE: "Justiz, Rechtssystem und öffentliche Sicherheit", labelEN: "Justice, legal system and public safety"),
        .init(code: "OP_DATPRO", labelDE: "Vorläufige Daten", labelEN: "Provisional data"),
        .init(code: "REGI", labelDE: "Regionen und Städte", labelEN: "Regions and cities"),
        .init(code: "SOCI", labelDE: "Bevölkerung und Gesellschaft", labelEN: "Population and society"),
        .init(code: "TECH", labelDE: "Wissenschaft und Technologie", labelEN: "Science and technology"),
        .init(code: "TRAN", labelDE: "Verkehr", labelEN: "Transport"),
    ]

    /// The theme with this code (case-insensitive), or nil.
    package static func code(_ code: String) -> DataTheme? {
        let upper = code.uppercased()
        return all.first { $0.code == upper }
    }
}

/// An EU update frequency (`http://publications.europa.eu/resource/authority/frequency/<code>`).
package struct UpdateFrequency: Sendable, Hashable {
    package var code: String
    package var labelDE: String
    package var labelEN: String

    package static let scheme = "http://publications.europa.eu/resource/authority/frequency"
    package var iri: String { Self.scheme + "/" + code }

    package static let all: [UpdateFrequency] = [
        .init(code: "CONT", labelDE: "laufend", labelEN: "continuous"),
        .init(code: "UPDATE_CONT", labelDE: "ständig aktualisiert", labelEN: "continuously updated"),
        .init(code: "1MIN", labelDE: "minütlich", labelEN: "every minute"),
        .init(code: "5MIN", labelDE: "alle fünf Minuten", labelEN: "every five minutes"),
        .init(code: "10MIN", labelDE: "alle zehn Minuten", labelEN: "every ten minutes"),
        .init(code: "15MIN", labelDE: "viertelstündlich", labelEN: "every fifteen minutes"),
        .init(code: "30MIN", labelDE: "halbstündlich", labelEN: "every thirty minutes"),
        .init(code: "HOURLY", labelDE: "stündlich", labelEN: "hourly"),
        .init(code: "BIHOURLY", labelDE: "alle zwei Stunden", labelEN: "every two hours"),
        .init(code: "TRIHOURLY", labelDE: "alle drei Stunden", labelEN: "every three hours"),
        .init(code: "12HRS", labelDE: "alle zwölf Stunden", labelEN: "every twelve hours"),
        .init(code: "DAILY", labelDE: "täglich", labelEN: "daily"),
        .init(code: "DAILY_2", labelDE: "zweimal täglich", labelEN: "twice a day"),
        .init(code: "WEEKLY", labelDE: "wöchentlich", labelEN: "weekly"),
        .init(code: "WEEKLY_2", labelDE: "zweimal wöchentlich", labelEN: "twice a week"),
        .init(code: "WEEKLY_3", labelDE: "dreimal wöchentlich", labelEN: "three times a week"),
        .init(code: "BIWEEKLY", labelDE: "vierzehntäglich", labelEN: "every two weeks"),
        .init(code: "MONTHLY", labelDE: "monatlich", labelEN: "monthly"),
        .init(code: "MONTHLY_2", labelDE: "zweimal monatlich", labelEN: "twice a month"),
        .init(code: "MONTHLY_3", labelDE: "dreimal monatlich", labelEN: "three times a month"),
        .init(code: "BIMONTHLY", labelDE: "alle zwei Monate", labelEN: "every two months"),
        .init(code: "QUARTERLY", labelDE: "vierteljährlich", labelEN: "quarterly"),
        .init(code: "ANNUAL_2", labelDE: "halbjährlich", labelEN: "semiannual"),
        .init(code: "ANNUAL_3", labelDE: "dreimal jährlich", labelEN: "three times a year"),
        .init(code: "ANNUAL", labelDE: "jährlich", labelEN: "annual"),
        .init(code: "BIENNIAL", labelDE: "alle zwei Jahre", labelEN: "biennial"),
        .init(code: "TRIENNIAL", labelDE: "alle drei Jahre", labelEN: "triennial"),
        .init(code: "QUADRENNIAL", labelDE: "alle vier Jahre", labelEN: "quadrennial"),
        .init(code: "QUINQUENNIAL", labelDE: "alle fünf Jahre", labelEN: "quinquennial"),
        .init(code: "DECENNIAL", labelDE: "alle zehn Jahre", labelEN: "decennial"),
        .init(code: "BIDECENNIAL", labelDE: "alle zwanzig Jahre", labelEN: "bidecennial"),
        .init(code: "TRIDECENNIAL", labelDE: "alle dreißig Jahre", labelEN: "tridecennial"),
        .init(code: "IRREG", labelDE: "unregelmäßig", labelEN: "irregular"),
        .init(code: "NEVER", labelDE: "keine Aktualisierung", labelEN: "never"),
        .init(code: "OTHER", labelDE: "andere", labelEN: "other"),
        .init(code: "UNKNOWN", labelDE: "unbekannt", labelEN: "unknown"),
        .init(code: "OP_DATPRO", labelDE: "vorläufig", labelEN: "provisional data"),
    ]

    /// The frequency with this code (case-insensitive), or nil.
    package static func code(_ code: String) -> UpdateFrequency? {
        let upper = code.uppercased()
        return all.first { $0.code == upper }
    }
}

/// A licence from the dcat-ap.de licence list (`http://dcat-ap.de/def/licenses/<id>`), the only
/// licences GovData accepts on a distribution.
package struct Licence: Sendable, Hashable {
    /// The dcat-ap.de identifier, e.g. `dl-by-de/2.0`.
    package var id: String
    package var labelDE: String
    /// The licence text for people (may be nil for the "other-…" placeholders).
    package var homepage: String?
    /// Whether the licence asks for attribution (then `dcatde:licenseAttributionByText` is emitted).
    package var attribution: Bool

    package static let namespace = "http://dcat-ap.de/def/licenses/"
    package var iri: String { Self.namespace + id }

    /// The default licence of German open data: Datenlizenz Deutschland – Namensnennung – Version 2.0.
    package static let dlByDe20 = Licence(id: "dl-by-de/2.0", labelDE: "Datenlizenz Deutschland – Namensnennung – Version 2.0", homepage: "https://www.govdata.de/dl-de/by-2-0", attribution: true)

    package static let all: [Licence] = [
        dlByDe20,
        .init(id: "dl-zero-de/2.0", labelDE: "Datenlizenz Deutschland – Zero – Version 2.0", homepage: "https://www.govdata.de/dl-de/zero-2-0", attribution: false),
        .init(id: "dl-by-de/1.0", labelDE: "Datenlizenz Deutschland – Namensnennung – Version 1.0", homepage: "https://www.govdata.de/dl-de/by-1-0", attribution: true),
        .init(id: "dl-by-nc-de/1.0", labelDE: "Datenlizenz Deutschland – Namensnennung – nicht kommerziell – Version 1.0", homepage: "https://www.govdata.de/dl-de/by-nc-1-0", attribution: true),
        .init(id: "cc-zero", labelDE: "Creative Commons CC Zero (CC0 1.0)", homepage: "https://creativecommons.org/publicdomain/zero/1.0/", attribution: false),
        .init(id: "cc-by/4.0", labelDE: "Creative Commons Namensnennung 4.0 International (CC BY 4.0)", homepage: "https://creativecommons.org/licenses/by/4.0/", attribution: true),
        .init(id: "cc-by-sa/4.0", labelDE: "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 4.0 International (CC BY-SA 4.0)", homepage: "https://creativecommons.org/licenses/by-sa/4.0/", attribution: true),
        .init(id: "cc-by-nd/4.0", labelDE: "Creative Commons Namensnennung – Keine Bearbeitung 4.0 International (CC BY-ND 4.0)", homepage: "https://creativecommons.org/licenses/by-nd/4.0/", attribution: true),
        .init(id: "cc-by-nc/4.0", labelDE: "Creative Commons Namensnennung – Nicht kommerziell 4.0 International (CC BY-NC 4.0)", homepage: "https://creativecommons.org/licenses/by-nc/4.0/", attribution: true),
        .init(id: "cc-by-de/3.0", labelDE: "Creative Commons Namensnennung 3.0 Deutschland (CC BY 3.0 DE)", homepage: "https://creativecommons.org/licenses/by/3.0/de/", attribution: true),
        .init(id: "cc-by-sa-de/3.0", labelDE: "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 3.0 Deutschland (CC BY-SA 3.0 DE)", homepage: "https://creativecommons.org/licenses/by-sa/3.0/de/", attribution: true),
        .init(id: "cc-by-nc-de/3.0", labelDE: "Creative Commons Namensnennung – Nicht kommerziell 3.0 Deutschland (CC BY-NC 3.0 DE)", homepage: "https://creativecommons.org/licenses/by-nc/3.0/de/", attribution: true),
        .init(id: "cc-by-nd/3.0", labelDE: "Creative Commons Namensnennung – Keine Bearbeitung 3.0 Unported (CC BY-ND 3.0)", homepage: "https://creativecommons.org/licenses/by-nd/3.0/", attribution: true),
        .init(id: "cc-by", labelDE: "Creative Commons Namensnennung (CC BY)", homepage: "https://creativecommons.org/licenses/by/4.0/", attribution: true),
        .init(id: "cc-by-sa", labelDE: "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen (CC BY-SA)", homepage: "https://creativecommons.org/licenses/by-sa/4.0/", attribution: true),
        .init(id: "cc-by-nd", labelDE: "Creative Commons Namensnennung – Keine Bearbeitung (CC BY-ND)", homepage: "https://creativecommons.org/licenses/by-nd/4.0/", attribution: true),
        .init(id: "cc-by-nc", labelDE: "Creative Commons Namensnennung – Nicht kommerziell (CC BY-NC)", homepage: "https://creativecommons.org/licenses/by-nc/4.0/", attribution: true),
        .init(id: "ccpdm/1.0", labelDE: "Public Domain Mark 1.0 (PDM)", homepage: "https://creativecommons.org/publicdomain/mark/1.0/", attribution: false),
        .init(id: "odbl", labelDE: "Open Data Commons Open Database License (ODbL)", homepage: "https://opendatacommons.org/licenses/odbl/", attribution: true),
        .init(id: "odby", labelDE: "Open Data Commons Attribution License (ODC-BY 1.0)", homepage: "https://opendatacommons.org/licenses/by/", attribution: true),
        .init(id: "odcpddl", labelDE: "Open Data Commons Public Domain Dedication and Licence (ODC PDDL)", homepage: "https://opendatacommons.org/licenses/pddl/", attribution: false),
        .init(id: "officialWork", labelDE: "Amtliches Werk, lizenzfrei nach § 5 Abs. 1 UrhG", homepage: "https://www.gesetze-im-internet.de/urhg/__5.html", attribution: false),
        .init(id: "geonutz/20130319", labelDE: "Nutzungsbestimmungen für die Bereitstellung von Geodaten des Bundes", homepage: "https://sg.geodatenzentrum.de/web_public/gdz/lizenz/geonutzv.pdf", attribution: true),
        .init(id: "geoNutz/20131001", labelDE: "Nutzungsbestimmungen für die Bereitstellung von Geodaten des Landes Berlin", homepage: nil, attribution: true),
        .init(id: "apache", labelDE: "Apache License", homepage: "https://www.apache.org/licenses/", attribution: true),
        .init(id: "bsd", labelDE: "BSD-Lizenz", homepage: "https://opensource.org/licenses/bsd-license.php", attribution: true),
        .init(id: "gfdl", labelDE: "GNU Free Documentation License (GFDL)", homepage: "https://www.gnu.org/licenses/fdl.html", attribution: true),
        .init(id: "gpl/3.0", labelDE: "GNU General Public License Version 3.0 (GPLv3)", homepage: "https://www.gnu.org/licenses/gpl-3.0.html", attribution: true),
        .init(id: "mozilla", labelDE: "Mozilla Public License 2.0 (MPL)", homepage: "https://www.mozilla.org/MPL/", attribution: true),
        .init(id: "other-open", labelDE: "Andere offene Lizenz", homepage: nil, attribution: false),
        .init(id: "other-opensource", labelDE: "Andere Open-Source-Lizenz", homepage: nil, attribution: false),
        .init(id: "other-freeware", labelDE: "Andere Freeware-Lizenz", homepage: nil, attribution: false),
        .init(id: "other-commercial", labelDE: "Andere kommerzielle Lizenz", homepage: nil, attribution: false),
        .init(id: "other-closed", labelDE: "Andere geschlossene Lizenz", homepage: nil, attribution: false),
    ]

    /// Other spellings people write in YAML (GovData's short ids, SPDX ids) → dcat-ap.de id.
    package static let aliases: [String: String] = [
        "dl-de/by-2-0": "dl-by-de/2.0", "dl-de-by-2.0": "dl-by-de/2.0",
        "dl-de/zero-2-0": "dl-zero-de/2.0", "dl-de-zero-2.0": "dl-zero-de/2.0",
        "dl-de/by-1-0": "dl-by-de/1.0", "dl-de/by-nc-1-0": "dl-by-nc-de/1.0",
        "cc-by-4.0": "cc-by/4.0", "cc-by-sa-4.0": "cc-by-sa/4.0", "cc-by-nd-4.0": "cc-by-nd/4.0", "cc-by-nc-4.0": "cc-by-nc/4.0",
        "cc0-1.0": "cc-zero", "cc0": "cc-zero", "odbl-1.0": "odbl", "odc-by-1.0": "odby", "pddl-1.0": "odcpddl",
    ]

    /// Every spelling `named(_:)` accepts: the dcat-ap.de ids and the aliases.
    package static var acceptedNames: [String] { all.map(\.id) + aliases.keys.sorted() }

    /// The licence for a dcat-ap.de id, an alias (case-insensitive) or a full dcat-ap.de IRI; nil if unknown.
    package static func named(_ name: String) -> Licence? {
        var key = name
        if key.hasPrefix(namespace) { key.removeFirst(namespace.count) }
        if let exact = all.first(where: { $0.id == key }) { return exact }
        let lower = key.lowercased()
        if let target = aliases[lower] { return all.first { $0.id == target } }
        return all.first { $0.id.lowercased() == lower }
    }
}

/// GovData contributor IDs (`dcatde:contributorID`, `http://dcat-ap.de/def/contributors/<id>`).
///
/// Every dataset delivered to GovData carries exactly one; GovData assigns new ones on request.
package enum ContributorID {
    package static let namespace = "http://dcat-ap.de/def/contributors/"

    package static let known: [String] = [
        "auswaertigesAmt", "berlinOpenData", "bundesamtFuerBauwesenUndRaumordnung", "bundesamtFuerJustiz",
        "bundesanstaltFuerMaterialforschungUndPruefung", "bundesamtFuerVerbraucherschutzUndLebensmittelsicherheit",
        "bundesamtFuerWirtschaftUndAusfuhrkontrolle", "bundesanstaltFuerArbeitsschutzUndArbeitsmedizin",
        "bundesministeriumFuerErnaehrungUndLandwirtschaft", "bundesarchiv", "bundesausgleichsamt",
        "bundesinstitutFuerBauStadtUndRaumforschungImBundesamtFuerBauwesenundRaumordnung", "bundesministeriumDerFinanzen",
        "bundesministeriumDerVerteidigung", "bundesministeriumDesInnernUndHeimat", "bundesministeriumFuerArbeitUndSoziales",
        "bundesministeriumFuerBildungUndForschung", "bundesministeriumFuerFamilieSeniorenFrauenUndJugend",
        "bundesministeriumFuerWirtschaftUndEnergie", "bundesministeriumFuerWirtschaftlicheZusammenarbeitUndEntwicklung",
        "bundessortenamt", "bundesversicherungsamt", "bundesverwaltungsamt", "bundeszentralamtFuerSteuern", "datenBW",
        "destatis", "deutscheNationalbibliothek", "deutschesPatentUndMarkenamt", "deutscheRentenversicherungBund",
        "dieBeauftragteDerBundesregierungFuerKulturUndMedien", "derBundesbeauftragteFuerDenDatenschutzUndDieInformationsfreiheit",
        "fitko", "freistaatSachsen", "friedrichLoefflerInstitut", "gdiDE", "generalzolldirektion", "genesisDestatis", "govData",
        "hessen", "itzBund", "landBrandenburg", "landeshauptstadtMuenchen", "landNiedersachsen", "maxRubnerInstitut", "mCloud",
        "mecklenburgVorpommern", "metropolregionRheinNeckar", "mobilithek", "openDataBayern", "openDataBrandenburg",
        "openDataBund", "openDataHRO", "openGovernmentDataPortalRheinlandPfalz", "openNRW",
        "openAgrarRepositoriumDerForschungseinrichtungenDesBMEL", "paulEhrlichInstitut", "regionalstatistik",
        "robertKochInstitut", "landSachsenAnhalt", "schleswigHolstein", "stadtAugsburg", "stadtFrankfurtAmMain",
        "stadtFreiburgImBreisgau", "stadtNuernberg", "stadtOldenburg", "SWONetzGmbH", "transparenzportalBremen",
        "transparenzportalHamburg", "umweltbundesamt",
    ]

    package static func iri(_ id: String) -> String { namespace + id }

    /// The canonical id (exact spelling) for `id` or a full contributor IRI; nil if it is not in the list.
    package static func validated(_ id: String) -> String? {
        var key = id
        if key.hasPrefix(namespace) { key.removeFirst(namespace.count) }
        return known.first { $0 == key } ?? known.first { $0.lowercased() == key.lowercased() }
    }
}

/// EU languages (`http://publications.europa.eu/resource/authority/language/<code>`) for ISO 639-1 codes.
package enum LanguageCode {
    package static let namespace = "http://publications.europa.eu/resource/authority/language/"

    package static let byISO6391: [String: String] = [
        "de": "DEU", "en": "ENG", "fr": "FRA", "nl": "NLD", "da": "DAN", "pl": "POL", "cs": "CES", "it": "ITA",
        "es": "SPA", "lb": "LTZ", "dsb": "DSB", "hsb": "HSB", "fy": "FRY", "tr": "TUR",
    ]

    /// `de` or `DEU` → `http://…/language/DEU`; nil if unknown.
    package static func iri(_ code: String) -> String? {
        if let three = byISO6391[code.lowercased()] { return namespace + three }
        let upper = code.uppercased()
        if byISO6391.values.contains(upper) { return namespace + upper }
        return nil
    }
}

/// The political geocoding IRIs of dcat-ap.de for an 8-digit Amtlicher Gemeindeschlüssel.
package enum PoliticalGeocoding {
    package static let municipalityLevel = "http://dcat-ap.de/def/politicalGeocoding/Level/municipality"
    package static func municipalityIRI(ags: String) -> String { "http://dcat-ap.de/def/politicalGeocoding/municipalityKey/" + ags }

    /// True for eight ASCII digits that do not name "no municipality" (`00000000`).
    package static func isMunicipalityKey(_ ags: String) -> Bool {
        ags.utf8.count == 8 && ags.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && ags != "00000000"
    }
}
