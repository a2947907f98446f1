import DatenwerkCore
import Foundation

/// Web-Mercator projection of a lon/lat box into an SVG viewBox, keeping the aspect ratio and a
/// padding on every side.
package struct MapProjection: Sendable {
    package let width: Double
    package let height: Double
    package let padding: Double
    /// The box actually drawn (degenerate boxes are widened around their centre).
    package let bbox: BoundingBox
    private let minX: Double, maxY: Double, scale: Double, offsetX: Double, offsetY: Double

    /// Smallest extent drawn, in degrees (about 700 m), so a single station sits in the middle.
    package static let minimumSpan = 0.01

    package init(bbox: BoundingBox, width: Double = 320, height: Double = 200, padding: Double = 16) {
        var box = bbox
        let c = bbox.center
        if box.maxLongitude - box.minLongitude < Self.minimumSpan {
            box.minLongitude = c.longitude - Self.minimumSpan / 2
            box.maxLongitude = c.longitude + Self.minimumSpan / 2
        }
        if box.maxLatitude - box.minLatitude < Self.minimumSpan {
            box.minLatitude = max(-85, c.latitude - Self.minimumSpan / 2)
            box.maxLatitude = min(85, c.latitude + Self.minimumSpan / 2)
        }
        self.bbox = box
        self.width = width
        self.height = height
        self.padding = padding
        let x0 = Self.mercatorX(box.minLongitude), x1 = Self.mercatorX(box.maxLongitude)
        let y0 = Self.mercatorY(box.minLatitude), y1 = Self.mercatorY(box.maxLatitude)
        let innerW = width - 2 * padding, innerH = height - 2 * padding
        let s = min(innerW / max(x1 - x0, 1e-12), innerH / max(y1 - y0, 1e-12))
        minX = x0
        maxY = y1
        scale = s
        offsetX = padding + (innerW - (x1 - x0) * s) / 2
        offsetY = padding + (innerH - (y1 - y0) * s) / 2
    }

    /// SVG coordinates (y grows downwards) of a WGS84 position.
    package func project(longitude: Double, latitude: Double) -> (x: Double, y: Double) {
        (offsetX + (Self.mercatorX(longitude) - minX) * scale, offsetY + (maxY - Self.mercatorY(latitude)) * scale)
    }

    /// The WGS84 position of SVG coordinates (inverse of `project`).
    package func unproject(x: Double, y: Double) -> (longitude: Double, latitude: Double) {
        let mx = minX + (x - offsetX) / scale
        let my = maxY - (y - offsetY) / scale
        return (mx * 180 / .pi, atan(sinh(my)) * 180 / .pi)
    }

    static func mercatorX(_ longitude: Double) -> Double { longitude * .pi / 180 }

    static func mercatorY(_ latitude: Double) -> Double {
        let phi = min(max(latitude, -85.051_129), 85.051_129) * .pi / 180
        return log(tan(.pi / 4 + phi / 2))
    }
}

/// The small station map of the catalog page: inline SVG, no tiles, no script.
package enum StationMap {
    /// An accessible SVG (`role="img"` with `<title>` and `<desc>`) with a light graticule and one
    /// circle per station (stations closer than a few pixels share a circle whose `<title>` lists them).
    /// `id` must be unique on the page. Returns nil when no station has usable coordinates.
    package static func svg(
        stations: [StationPoint], id: String, title: String, language: CatalogPage.Language = .de,
        width: Double = 320, height: Double = 200
    ) -> String? {
        let located = stations.filter {
            $0.longitude.isFinite && $0.latitude.isFinite && abs($0.longitude) <= 180 && abs($0.latitude) <= 90
        }
        guard let box = BoundingBox(points: located.map { ($0.longitude, $0.latitude) }) else { return nil }
        let projection = MapProjection(bbox: box, width: width, height: height)
        let texts = CatalogPage.Texts(language)
        let titleID = "\(id)-title", descID = "\(id)-desc"
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-labelledby=\"\(titleID) \(descID)\">"
        out += "<title id=\"\(titleID)\">\(HTML.escape(texts.mapTitle(title)))</title>"
        out += "<desc id=\"\(descID)\">\(HTML.escape(texts.mapDescription(count: located.count, box: box)))</desc>"
        out += "<rect class=\"map-bg\" x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\"/>"
        out += graticule(projection)

        // Group stations that fall on the same 4-px cell.
        var cells: [(x: Double, y: Double, stations: [StationPoint])] = []
        var index: [Int64: Int] = [:]
        for station in located {
            let p = projection.project(longitude: station.longitude, latitude: station.latitude)
            let key = Int64((p.x / 4).rounded()) << 32 | Int64((p.y / 4).rounded())
            if let i = index[key] { cells[i].stations.append(station) } else {
                index[key] = cells.count
                cells.append((p.x, p.y, [station]))
            }
        }
        out += "<g class=\"stations\">"
        for cell in cells {
            let r = cell.stations.count > 1 ? 5.5 : 4
            out += "<circle cx=\"\(n(cell.x))\" cy=\"\(n(cell.y))\" r=\"\(n(r))\"><title>"
            out += HTML.escape(texts.stationList(cell.stations))
            out += "</title></circle>"
        }
        out += "</g></svg>"
        return out
    }

    /// Lines every 1, 2 or 5 × 10^k degrees, three to four across the map, labelled at the left and bottom.
    static func graticule(_ projection: MapProjection) -> String {
        let southWest = projection.unproject(x: 0, y: projection.height)
        let northEast = projection.unproject(x: projection.width, y: 0)
        let lonStep = niceStep((northEast.longitude - southWest.longitude) / 4)
        let latStep = niceStep((northEast.latitude - southWest.latitude) / 4)
        var out = "<g class=\"graticule\" aria-hidden=\"true\">"
        var lon = (southWest.longitude / lonStep).rounded(.up) * lonStep
        while lon <= northEast.longitude {
            let x = projection.project(longitude: lon, latitude: southWest.latitude).x
            out += "<line x1=\"\(n(x))\" y1=\"0\" x2=\"\(n(x))\" y2=\"\(n(projection.height))\"/>"
            if x < projection.width - 30 {
                out += "<text x=\"\(n(x + 2))\" y=\"\(n(projection.height - 3))\">\(degrees(lon, lonStep))</text>"
            }
            lon += lonStep
        }
        var lat = (southWest.latitude / latStep).rounded(.up) * latStep
        while lat <= northEast.latitude {
            let y = projection.project(longitude: southWest.longitude, latitude: lat).y
            out += "<line x1=\"0\" y1=\"\(n(y))\" x2=\"\(n(projection.width))\" y2=\"\(n(y))\"/>"
            if y > 10 && y < projection.height - 14 {
                out += "<text x=\"2\" y=\"\(n(y - 2))\">\(degrees(lat, latStep))</text>"
            }
            lat += latStep
        }
        return out + "</g>"
    }

    static func niceStep(_ rough: Double) -> Double {
        guard rough > 0, rough.isFinite else { return 1 }
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let f = rough / magnitude
        return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude
    }

    static func degrees(_ value: Double, _ step: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(decimals)f°", value)
    }

    /// A coordinate in SVG: at most two decimals, no trailing zeros.
    static func n(_ value: Double) -> String {
        ByteWriting.format((value * 100).rounded() / 100)
    }
}
