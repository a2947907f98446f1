/// A located problem in a configuration or input, printed as `file:line:col: error: message`.
package struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Severity: String, Sendable, Hashable {
        case error, warning
    }

    package var severity: Severity
    package var file: String?
    package var line: Int?
    package var column: Int?
    package var message: String

    package init(_ severity: Severity = .error, file: String? = nil, line: Int? = nil, column: Int? = nil, _ message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    package var description: String {
        var prefix = ""
        if let file {
            prefix = file
            if let line {
                prefix += ":\(line)"
                if let column { prefix += ":\(column)" }
            }
            prefix += ": "
        }
        return "\(prefix)\(severity.rawValue): \(message)"
    }
}

/// Several diagnostics at once: validation never stops at the first problem.
package struct DiagnosticError: Error, Sendable, CustomStringConvertible {
    package var diagnostics: [Diagnostic]
    /// Warnings found on the way (not counted as problems, not in `description`).
    package var warnings: [Diagnostic]
    package init(_ diagnostics: [Diagnostic], warnings: [Diagnostic] = []) {
        self.diagnostics = diagnostics
        self.warnings = warnings
    }
    package var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A problem with one input record: where, which field, what. The record goes to quarantine.
package struct RecordError: Error, Sendable, Hashable, CustomStringConvertible {
    package var location: SourceLocation
    package var field: String?
    package var reason: String

    package init(_ location: SourceLocation, field: String? = nil, _ reason: String) {
        self.location = location
        self.field = field
        self.reason = reason
    }

    package var description: String {
        if let field { return "\(location): field '\(field)': \(reason)" }
        return "\(location): \(reason)"
    }
}

/// Suggests the closest known spelling for an unknown name ("did you mean …").
///
/// Deterministic whatever the order of `candidates` (a dictionary's keys, a set): the smallest edit distance wins,
/// and among equally close candidates the alphabetically first (ignoring case, then by Unicode scalars).
package func closestMatch(to name: String, in candidates: some Sequence<String>) -> String? {
    closestMatchWithDistance(to: name, in: candidates)?.candidate
}

/// `closestMatch` with the edit distance of the match, for callers that rank several candidate lists.
package func closestMatchWithDistance(to name: String, in candidates: some Sequence<String>) -> (candidate: String, distance: Int)? {
    let lowered = name.lowercased()
    let length = lowered.count
    var best: (candidate: String, lowered: String, distance: Int)?
    for candidate in candidates {
        // The length difference is a lower bound of the edit distance: a candidate it already rules out costs no
        // O(n·m) comparison (a hostile cell of a megabyte is checked in linear time, not for minutes per row).
        let candidateLowered = candidate.lowercased()
        if abs(length - candidateLowered.count) > max(2, candidate.count / 3) { continue }
        let d = editDistance(lowered, candidateLowered)
        guard d <= max(2, candidate.count / 3) else { continue }
        if let current = best {
            if d > current.distance { continue }
            if d == current.distance {
                let precedes = candidateLowered == current.lowered
                    ? candidate.unicodeScalars.lexicographicallyPrecedes(current.candidate.unicodeScalars)
                    : candidateLowered.unicodeScalars.lexicographicallyPrecedes(current.lowered.unicodeScalars)
                if !precedes { continue }
            }
        }
        best = (candidate, candidateLowered, d)
    }
    return best.map { ($0.candidate, $0.distance) }
}

/// Levenshtein distance over characters.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
