import DatenwerkCore

/// A standard API of the server that serves the datasets (`dcat:DataService`): each dataset gets one more
/// distribution whose `dcat:accessService` is the service (with `dcat:endpointURL`, `dcat:endpointDescription`,
/// `dct:conformsTo`, `dcat:servesDataset`), and the catalog lists it under `dcat:service`.
package struct DCATDataService: Sendable, Hashable {
    /// The distribution's IRI segment (`<base>/datasets/<id>/distributions/<key>`).
    package var key: String
    /// The endpoint below the base URL (`/ogcapi`): `dcat:endpointURL` and the service's IRI.
    package var endpointPath: String
    /// The API definition below the base URL: `dcat:endpointDescription`.
    package var descriptionPath: String
    /// Where a dataset is reached in the API, below the base URL; `{id}` is the dataset id.
    package var datasetPathTemplate: String
    package var title: String
    package var descriptionDE: String
    package var conformsTo: String
    /// EU file type and IANA media type of the dataset's answers.
    package var fileType: String
    package var mediaType: String?

    /// OGC API – Features (`/ogcapi`, OGCFeatures): a dataset's observations collection.
    package static let ogcAPIFeatures = DCATDataService(
        key: "ogcapi-features", endpointPath: "/ogcapi", descriptionPath: "/ogcapi/api",
        datasetPathTemplate: "/ogcapi/collections/{id}-observations",
        title: "OGC API – Features",
        descriptionDE: "Die Messstellen und Messwerte als OGC API – Features (Teil 1: Core; GeoJSON, seitenweise, mit bbox- und datetime-Filter), z. B. für QGIS.",
        conformsTo: "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        fileType: "http://publications.europa.eu/resource/authority/file-type/GEOJSON",
        mediaType: "http://www.iana.org/assignments/media-types/application/geo+json")

    /// OGC SensorThings API v1.1 (`/sta/v1.1`, read-only): the service root lists the entity sets and the
    /// conformance classes; a dataset's stations are its Things (the API has no per-dataset path).
    package static let sensorThings = DCATDataService(
        key: "sensorthings", endpointPath: "/sta/v1.1", descriptionPath: "/sta/v1.1",
        datasetPathTemplate: "/sta/v1.1/Things",
        title: "OGC SensorThings API",
        descriptionDE: "Die Messstellen, Datenströme und Messwerte als OGC SensorThings API v1.1 (nur lesend; $filter, $expand, seitenweise), z. B. für FROST-Clients und Dashboards.",
        conformsTo: "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
        fileType: "http://publications.europa.eu/resource/authority/file-type/JSON",
        mediaType: "http://www.iana.org/assignments/media-types/application/json")
}

extension DCATCatalog {
    /// The same catalog with `services` linked from every dataset.
    package func serving(_ services: [DCATDataService]) -> DCATCatalog {
        var copy = self
        copy.services = services
        return copy
    }
}
