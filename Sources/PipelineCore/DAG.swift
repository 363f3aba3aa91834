import Foundation

/// Dependency ordering of stages. Deterministic: among stages whose dependencies are all
/// placed, the earliest declared goes first (Kahn's algorithm with a declaration-order queue).
public enum DAG {
    /// `dependencies[name]` = stages `name` reads from. Returns the order, or the first cycle
    /// found (names in data-flow order, starting and ending with the earliest declared member).
    public static func order(_ names: [String], dependencies: [String: [String]]) -> (order: [String], cycle: [String]?) {
        var placed = Set<String>()
        var order: [String] = []
        var progress = true
        while progress && order.count < names.count {
            progress = false
            for name in names where !placed.contains(name) {
                if (dependencies[name] ?? []).allSatisfy({ placed.contains($0) || !names.contains($0) }) {
                    placed.insert(name); order.append(name); progress = true
                    break  // restart so the earliest declared ready stage always goes next
                }
            }
        }
        if order.count == names.count { return (order, nil) }
        return (order, findCycle(names.filter { !placed.contains($0) }, dependencies: dependencies))
    }

    /// Walks dependency edges inside the unplaced set until a node repeats.
    static func findCycle(_ remaining: [String], dependencies: [String: [String]]) -> [String]? {
        let pending = Set(remaining)
        guard var current = remaining.first else { return nil }
        var path: [String] = []
        var seen: [String: Int] = [:]
        while seen[current] == nil {
            seen[current] = path.count
            path.append(current)
            guard let next = (dependencies[current] ?? []).first(where: { pending.contains($0) }) else { return nil }
            current = next
        }
        // Dependency direction (consumer -> producer); reverse for data flow (producer -> consumer).
        var cycle = Array(path[seen[current]!...]).reversed().map { $0 }
        let rank = Dictionary(uniqueKeysWithValues: remaining.enumerated().map { ($1, $0) })
        if let start = cycle.indices.min(by: { rank[cycle[$0]]! < rank[cycle[$1]]! }) {
            cycle = Array(cycle[start...] + cycle[..<start])
        }
        return cycle + [cycle[0]]
    }
}
