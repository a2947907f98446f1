import DatenwerkCore

/// The Frictionless Table Schema of `observations.csv` and the `datapackage.json` that describes a
/// dataset's downloads (https://specs.frictionlessdata.io/).
package enum ObservationTableSchema {
    /// The schema as JSON (also served as `observations.schema.json`). The fields are
    /// `ObservationEncoder.columns`, in order; the natural key of an observation is the primary key.
    package static var json: JSONValue {
        func field(_ name: String, _ type: String, _ title: String, _ description: String, required: Bool = false, extra: [JSONValue.Member] = []) -> JSONValue {
            var members: [JSONValue.Member] = [
                .init("name", .string(name)), .init("type", .string(type)),
                .init("title", .string(title)), .init("description", .string(description)),
            ]
            if type == "datetime" { members.append(.init("format", .string("default"))) }
            var constraints: [JSONValue.Member] = required ? [.init("required", .bool(true))] : []
            constraints += extra
            if !constraints.isEmpty { members.append(.init("constraints", .object(constraints))) }
            return .object(members)
        }
        let fields: [JSONValue] = [
            field("station_id", "string", "Stations-ID", "Stabiler Schlüssel der Messstelle: <Quelle>:<ID der Quelle>.", required: true),
            field("station_name", "string", "Stationsname", "Name der Messstelle, wie die Quelle ihn angibt (leer, wenn unbekannt)."),
            field("property", "string", "Messgröße", "Schlüssel der beobachteten Größe, z. B. air_temperature, no2_concentration.", required: true),
            field("unit", "string", "Einheit", "Einheit des Messwerts als UCUM-Code, z. B. Cel, ug/m3, MW.h.", required: true),
            field("phenomenon_time_start", "datetime", "Beginn", "Zeitpunkt der Beobachtung bzw. Beginn des Intervalls (UTC, ISO 8601).", required: true),
            field("phenomenon_time_end", "datetime", "Ende", "Ende des Intervalls bei Summen und Zählwerten (UTC, ISO 8601); leer bei Zeitpunkten."),
            field("value", "number", "Messwert", "Messwert in der angegebenen Einheit, Punkt als Dezimalzeichen."),
            field("quality", "string", "Qualitätskennzeichen", "Qualitätskennzeichen der Quelle, leer wenn keines angegeben ist."),
            field("longitude", "number", "Geografische Länge", "Länge der Messstelle in Grad (WGS 84, EPSG:4326).",
                  extra: [.init("minimum", .number(-180)), .init("maximum", .number(180))]),
            field("latitude", "number", "Geografische Breite", "Breite der Messstelle in Grad (WGS 84, EPSG:4326).",
                  extra: [.init("minimum", .number(-90)), .init("maximum", .number(90))]),
        ]
        return .object([
            .init("fields", .array(fields)),
            .init("primaryKey", .array(["station_id", "property", "phenomenon_time_start"].map { .string($0) })),
            .init("missingValues", .array([.string("")])),
        ])
    }
}

package enum DataPackage {
    /// `datapackage.json` for a dataset: metadata, licence, and one resource per download format
    /// (the CSV with its inline Table Schema, GeoJSON, NDJSON). Resource paths are relative
    /// (`observations.csv`), so the file works next to exported files and at
    /// `<base>/datasets/<id>/datapackage.json` alike; pass `resourceBaseURL` for absolute URLs.
    package static func json(
        dataset: DatasetMetadata, facts: DatasetFacts, catalog: CatalogMetadata, baseURL: String,
        formats: [ObservationFormat] = ObservationFormat.allCases, resourceBaseURL: String? = nil
    ) -> JSONValue {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        let publisher = dataset.publisher ?? catalog.publisher
        var members: [JSONValue.Member] = [
            .init("name", .string(packageName(dataset.id))),
            .init("id", .string("\(base)/datasets/\(dataset.id)")),
            .init("title", .string(dataset.title)),
            .init("description", .string(dataset.description)),
            .init("homepage", .string("\(base)/#\(dataset.id)")),
        ]
        let keywords = dataset.keywords + dataset.keywordsEN
        if !keywords.isEmpty { members.append(.init("keywords", .array(keywords.map { .string($0) }))) }
        var licence: [JSONValue.Member] = [.init("name", .string(dataset.licence.id.lowercased()))]
        if let homepage = dataset.licence.homepage { licence.append(.init("path", .string(homepage))) }
        licence.append(.init("title", .string(dataset.licence.labelDE)))
        members.append(.init("licenses", .array([.object(licence)])))
        var source: [JSONValue.Member] = [.init("title", .string(publisher.name))]
        if let url = publisher.url { source.append(.init("path", .string(url))) }
        members.append(.init("sources", .array([.object(source)])))
        members.append(.init("contributors", .array([.object([.init("title", .string(publisher.name)), .init("role", .string("publisher"))])])))
        if let modified = facts.lastModifiedMicros { members.append(.init("created", .string(ByteWriting.timestamp(micros: modified)))) }

        let prefix = resourceBaseURL.map { $0.hasSuffix("/") ? $0 : $0 + "/" } ?? ""
        var resources: [JSONValue] = []
        for format in formats {
            var r: [JSONValue.Member] = [
                .init("name", .string(format == .csv ? "observations" : "observations-\(format.rawValue)")),
                .init("path", .string(prefix + "observations.\(format.fileExtension)")),
                .init("title", .string("\(dataset.title) (\(format.label))")),
                .init("description", .string(format.descriptionDE)),
                .init("format", .string(format.rawValue)),
                .init("mediatype", .string(format.mediaType)),
                .init("encoding", .string("utf-8")),
            ]
            if format == .csv {
                r.append(.init("type", .string("table")))
                r.append(.init("profile", .string("tabular-data-resource")))
                r.append(.init("dialect", .object([.init("delimiter", .string(",")), .init("header", .bool(true))])))
                r.append(.init("schema", ObservationTableSchema.json))
            } else {
                // Not tables for Frictionless (its NDJSON reader is an optional extra): checked as files.
                r.append(.init("type", .string("file")))
            }
            resources.append(.object(r))
        }
        members.append(.init("resources", .array(resources)))
        return .object(members)
    }

    /// A package name: lowercase letters, digits, `-`, `_`, `.`.
    static func packageName(_ id: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
        let name = String(id.lowercased().map { allowed.contains($0) ? $0 : "-" })
        return name.isEmpty ? "dataset" : name
    }
}
