import Foundation

/// "Did you mean ...?" suggestions for misspelt names (fields, enum values, stage kinds, stage names).
public enum Suggestion {
    /// The candidate closest to `name`: the smallest optimal-string-alignment (restricted
    /// Damerau-Levenshtein) distance, case-insensitive, accepted when the distance is at most
    /// 2 (1 for 3-character names, 0 — a case difference — for shorter ones, so `lr` does not suggest `id`), or when one is a
    /// prefix of the other (`learning` -> `learning_rate`). Ties go to the earliest candidate.
    /// nil when nothing is close, or when `name` is itself a candidate.
    public static func closest(to name: String, among candidates: [String]) -> String? {
        guard !candidates.contains(name) else { return nil }
        let target = Array(name.lowercased().unicodeScalars)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let other = Array(candidate.lowercased().unicodeScalars)
            let shorter = min(target.count, other.count)
            let limit = shorter <= 2 ? 0 : shorter == 3 ? 1 : 2
            let distance = editDistance(target, other)
            if distance <= limit, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        if let best { return best.candidate }
        // A common prefix covering the whole shorter name (at least 3 characters).
        let lower = name.lowercased()
        guard lower.count >= 3 else { return nil }
        return candidates.first { $0.lowercased().hasPrefix(lower) || (lower.hasPrefix($0.lowercased()) && $0.count >= 3) }
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
    /// of adjacent characters, each costing 1 (Damerau 1964; the restricted variant).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        editDistance(Array(a.unicodeScalars), Array(b.unicodeScalars))
    }

    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        // Three rolling rows: the transposition rule looks two rows back.
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d = min(d, previous2[j - 2] + 1)
                }
                current[j] = d
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }

    /// "; did you mean 'x'?" or "" — the suffix diagnostics append.
    static func didYouMean(_ name: String, among candidates: [String]) -> String {
        closest(to: name, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}
