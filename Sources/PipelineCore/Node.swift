import Foundation

/// One node of a parsed YAML (or JSON) document: a scalar, a sequence or a mapping, each with
/// the position where it starts. Mappings keep their keys in file order and each key's own position,
/// so diagnostics can point at an unknown field's key rather than its value.
///
/// Nodes are immutable. An alias (`*name`) shares its anchor's node object, so a document is a DAG;
/// `expandedCount` is the size of the node once aliases are expanded, which the reader bounds
/// (see `YAMLReader.maxExpandedNodes`).
public final class Node: Sendable {
    public struct Scalar: Sendable, Hashable {
        /// The scalar's text as written (after YAML unescaping/folding).
        public let text: String
        /// True for quoted and block (| >) scalars: those are always strings.
        public let isQuoted: Bool
        /// The resolved value (YAML 1.2 core schema, or the explicit tag).
        public let value: JSONValue

        public init(text: String, isQuoted: Bool, value: JSONValue) {
            self.text = text
            self.isQuoted = isQuoted
            self.value = value
        }
    }

    public struct Entry: Sendable {
        public let key: String
        public let keyLocation: SourceLocation
        public let value: Node

        public init(key: String, keyLocation: SourceLocation, value: Node) {
            self.key = key
            self.keyLocation = keyLocation
            self.value = value
        }
    }

    public enum Content: Sendable {
        case scalar(Scalar)
        case sequence([Node])
        case mapping([Entry])
    }

    public let content: Content
    public let location: SourceLocation
    /// Number of nodes in this subtree with aliases expanded (1 for a scalar).
    public let expandedCount: Int
    /// key -> index into the mapping's entries (empty for other kinds); avoids quadratic lookups.
    private let keyIndex: [String: Int]

    public init(_ content: Content, location: SourceLocation) {
        self.content = content
        self.location = location
        var count = 1
        var index: [String: Int] = [:]
        switch content {
        case .scalar:
            break
        case .sequence(let items):
            for item in items { count = Node.saturatingAdd(count, item.expandedCount) }
        case .mapping(let entries):
            index.reserveCapacity(entries.count)
            for (i, entry) in entries.enumerated() {
                count = Node.saturatingAdd(count, Node.saturatingAdd(1, entry.value.expandedCount))
                if index[entry.key] == nil { index[entry.key] = i }
            }
        }
        self.expandedCount = count
        self.keyIndex = index
    }

    /// Convenience: a scalar node holding `value` (used for overrides and tests).
    public convenience init(scalar value: JSONValue, text: String? = nil, location: SourceLocation) {
        self.init(.scalar(Scalar(text: text ?? value.yamlText, isQuoted: false, value: value)), location: location)
    }

    static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }

    public var entries: [Entry]? { if case .mapping(let e) = content { return e }; return nil }
    public var items: [Node]? { if case .sequence(let i) = content { return i }; return nil }
    public var scalar: Scalar? { if case .scalar(let s) = content { return s }; return nil }

    /// The mapping entry named `key`, if this is a mapping that has it.
    public func entry(_ key: String) -> Entry? {
        guard case .mapping(let entries) = content, let i = keyIndex[key] else { return nil }
        return entries[i]
    }

    /// Child by path component: a mapping key, or a decimal index into a sequence.
    public func child(_ component: String) -> Node? {
        switch content {
        case .mapping: return entry(component)?.value
        case .sequence(let items):
            guard let i = Int(component), items.indices.contains(i) else { return nil }
            return items[i]
        case .scalar: return nil
        }
    }

    /// The subtree as JSON (aliases expanded; the reader bounded their size).
    public var value: JSONValue {
        switch content {
        case .scalar(let s): return s.value
        case .sequence(let items): return .array(items.map(\.value))
        case .mapping(let entries):
            var object: [String: JSONValue] = [:]
            object.reserveCapacity(entries.count)
            for entry in entries where object[entry.key] == nil { object[entry.key] = entry.value.value }
            return .object(object)
        }
    }

    /// How diagnostics name this node's kind: "a mapping", "a list", or the scalar's value.
    var kindName: String {
        switch content {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s): return s.value.foundDescription
        }
    }
}

/// A parsed file: its root node, the name to print in diagnostics, and the root as JSON.
public struct Document: Sendable {
    /// The path as given by the user (printed in diagnostics).
    public let file: String
    public let root: Node
    /// The tree as JSON (YAML 1.2 core schema resolution), computed once.
    public let value: JSONValue

    public init(file: String, root: Node) {
        self.file = file
        self.root = root
        self.value = root.value
    }

    /// The node at `path` (mapping keys / decimal list indices), or nil when it does not exist.
    public func node(at path: [String]) -> Node? {
        var node = root
        for component in path {
            guard let next = node.child(component) else { return nil }
            node = next
        }
        return node
    }

    /// The location of the node at `path`, or of its nearest existing ancestor.
    public func location(of path: [String]) -> SourceLocation? {
        var node = root
        for component in path {
            guard let next = node.child(component) else { break }
            node = next
        }
        return node.location
    }

    /// The location of the mapping KEY naming the last component of `path`
    /// (nil when that key does not exist; for a list index, the item's location).
    public func keyLocation(of path: [String]) -> SourceLocation? {
        guard let last = path.last, let parent = node(at: Array(path.dropLast())) else { return nil }
        if let entry = parent.entry(last) { return entry.keyLocation }
        return parent.items != nil ? parent.child(last)?.location : nil
    }
}
