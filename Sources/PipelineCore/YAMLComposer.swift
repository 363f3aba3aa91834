import CYAML
import Foundation

/// Builds the `Node` tree from libyaml events (YAML 1.2.2 spec, chapter 3.1 "composition").
///
/// - Anchors are registered when their node is complete, so `&a [*a]` is an undefined alias,
///   never a cycle.
/// - An alias shares its anchor's node; the expanded size is added to the parent, and any
///   collection whose expanded size passes `limit` stops the parse (alias bomb).
/// - Duplicate keys are reported at the second key, and parsing goes on to find more problems.
final class YAMLComposer {
    private struct Frame {
        var isMapping: Bool
        var location: SourceLocation
        var anchor: String?
        var items: [Node] = []
        var entries: [Node.Entry] = []
        var keyLocations: [String: SourceLocation] = [:]
        var pendingKey: (key: String, location: SourceLocation)?
        var expanded = 1
    }

    let file: String
    let limit: Int
    private(set) var root: Node?
    private(set) var diagnostics: [Diagnostic] = []
    private var stack: [Frame] = []
    private var anchors: [String: Node] = [:]
    private var documents = 0

    init(file: String, limit: Int) {
        self.file = file
        self.limit = limit
    }

    /// Handles one event; throws a fatal diagnostic (the parse stops).
    func handle(_ event: yaml_event_t) throws(Diagnostic) {
        let location = SourceLocation(file: file, line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw Diagnostic(location: location, message: "a second YAML document starts here; a file must hold exactly one document")
            }
        case YAML_ALIAS_EVENT:
            let name = YAMLComposer.string(event.data.alias.anchor) ?? ""
            guard let node = anchors[name] else {
                throw Diagnostic(location: location, path: currentPath.display, message: "undefined alias '*\(name)' (anchors must be defined with '&\(name)' before use)")
            }
            try add(node, at: location)
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = scalar.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self) } ?? ""
            let tag = YAMLComposer.string(scalar.tag)
            let isQuoted = scalar.style != YAML_PLAIN_SCALAR_STYLE
            let value: JSONValue
            do {
                value = try YAMLScalar.resolve(text, tag: tag, isQuoted: isQuoted)
            } catch {
                value = .string(text)
                let message: String
                switch error {
                case .badTag(let tag, let text): message = "\(JSONValue.quoted(text)) is not a valid \(tag) value"
                case .unsupportedTag(let tag): message = "unsupported tag '\(tag)' (only the YAML core tags !!str, !!int, !!float, !!bool, !!null are understood)"
                }
                diagnostics.append(Diagnostic(location: location, path: currentPath.display, message: message))
            }
            let node = Node(.scalar(Node.Scalar(text: text, isQuoted: isQuoted, value: value)), location: location)
            if let anchor = YAMLComposer.string(scalar.anchor) { anchors[anchor] = node }
            try add(node, at: location)
        case YAML_SEQUENCE_START_EVENT:
            stack.append(Frame(isMapping: false, location: location, anchor: YAMLComposer.string(event.data.sequence_start.anchor)))
        case YAML_MAPPING_START_EVENT:
            stack.append(Frame(isMapping: true, location: location, anchor: YAMLComposer.string(event.data.mapping_start.anchor)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let content: Node.Content = frame.isMapping ? .mapping(frame.entries) : .sequence(frame.items)
            let node = Node(content, location: frame.location)
            if let anchor = frame.anchor { anchors[anchor] = node }
            try add(node, at: frame.location)
        default:
            break  // stream start/end, document end
        }
    }

    /// Appends a finished node to the open collection (or makes it the root).
    private func add(_ node: Node, at location: SourceLocation) throws(Diagnostic) {
        guard var frame = stack.popLast() else {
            root = node
            return
        }
        defer { stack.append(frame) }
        if frame.isMapping {
            if let pending = frame.pendingKey {
                frame.entries.append(Node.Entry(key: pending.key, keyLocation: pending.location, value: node))
                frame.pendingKey = nil
            } else {
                guard let scalar = node.scalar else {
                    diagnostics.append(Diagnostic(location: location, path: path(of: frame).display,
                                                  message: "a mapping key must be a scalar, found \(node.kindName)"))
                    frame.pendingKey = ("<complex key at \(location.lineColumn)>", location)
                    return
                }
                let key = scalar.text
                if let first = frame.keyLocations[key] {
                    diagnostics.append(Diagnostic(location: location, path: path(of: frame).display,
                                                  message: "duplicate key '\(key)' (first defined at \(first.lineColumn))"))
                } else {
                    frame.keyLocations[key] = location
                }
                frame.pendingKey = (key, location)
            }
        } else {
            frame.items.append(node)
        }
        frame.expanded = Node.saturatingAdd(frame.expanded, node.expandedCount)
        // The open ancestors will contain this frame, so checking the innermost frame plus the
        // already-closed siblings of every ancestor bounds the whole document.
        let total = stack.reduce(frame.expanded) { Node.saturatingAdd($0, $1.expanded) }
        if total > limit {
            throw Diagnostic(location: location, path: path(of: frame).display,
                             message: "alias expansion exceeds \(limit) nodes (an alias bomb?)")
        }
    }

    /// The document path of the collection `frame` (which has been popped off `stack`).
    private func path(of frame: Frame) -> DocumentPath {
        var path = DocumentPath.root
        for open in stack {
            if open.isMapping {
                path = path.appending(open.pendingKey?.key ?? "")
            } else {
                path = path.appending(index: open.items.count)
            }
        }
        return path
    }

    /// Path of the node being read right now (for scalar/alias diagnostics).
    private var currentPath: DocumentPath {
        var path = DocumentPath.root
        for open in stack {
            if open.isMapping {
                guard let key = open.pendingKey?.key else { break }
                path = path.appending(key)
            } else {
                path = path.appending(index: open.items.count)
            }
        }
        return path
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }
}
