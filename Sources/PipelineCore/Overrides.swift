import Foundation

/// Command-line overrides: `--set stages.train.lr=1e-4` (repeatable), applied to the parsed
/// document BEFORE validation, so an override is checked by the schema like the file itself and
/// is part of the stage's fields (and so of its cache key).
///
/// - The path is dotted; a component addressing a list is a decimal index (`stages.q.skip.0=x`).
/// - The value is parsed as YAML: a scalar by the core schema (`1e-4` is a float, `"1e-4"` a string,
///   empty is null) or a flow node (`[lm_head]`, `{name: sgd}`).
/// - Missing mapping keys are created (a null value counts as an empty mapping); a path through
///   a scalar or a list without that index is an error naming the override.
/// - Nodes that come from an override are located at `SourceLocation(file: "--set PATH=VALUE",
///   line: 0, column: 0)`, so a schema error on them prints `--set stages.train.lr=fast: error: ...`.
public enum Overrides {
    public static func apply(_ assignments: [String], to document: Document) throws(DiagnosticList) -> Document {
        var root = document.root
        var diagnostics: [Diagnostic] = []
        for assignment in assignments {
            do throws(Diagnostic) {
                root = try apply(assignment, to: root)
            } catch {
                diagnostics.append(error)
            }
        }
        if !diagnostics.isEmpty { throw DiagnosticList(diagnostics) }
        return Document(file: document.file, root: root)
    }

    /// Sets a node (keeping its own location, e.g. a sweep value in the file) at a dotted path;
    /// keys created on the way are located at `here`; a failure is reported at `here` as `label: …`.
    public static func set(_ value: Node, at components: [String], in document: Document, here: SourceLocation,
                           label: String) throws(Diagnostic) -> Document {
        func failure(_ reason: String) -> Diagnostic { Diagnostic(location: here, message: "\(label): \(reason)") }
        let root = try set(value, at: components[...], in: document.root, prefix: .root, here: here, failure: failure)
        return Document(file: document.file, root: root)
    }

    private static func apply(_ assignment: String, to root: Node) throws(Diagnostic) -> Node {
        let label = "--set \(assignment)"
        func failure(_ reason: String) -> Diagnostic { Diagnostic(location: nil, message: "\(label): \(reason)") }
        guard let equals = assignment.firstIndex(of: "=") else {
            throw failure("expected PATH=VALUE, e.g. --set stages.train.lr=1e-4")
        }
        let pathText = String(assignment[..<equals])
        let valueText = String(assignment[assignment.index(after: equals)...])
        let components = pathText.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !pathText.isEmpty, !components.contains(where: \.isEmpty) else {
            throw failure("'\(pathText)' is not a dotted path like stages.train.lr")
        }
        let here = SourceLocation(file: label, line: 0, column: 0)
        let parsed: Document
        do {
            parsed = try YAMLReader.read(text: valueText, displayName: label)
        } catch {
            let reasons = error.diagnostics.map { d in d.location.map { "\($0.lineColumn): " } .map { $0 + d.message } ?? d.message }
            throw failure("the value is not valid YAML: " + reasons.joined(separator: "; "))
        }
        let value = relocate(parsed.root, to: here)
        return try set(value, at: components[...], in: root, prefix: .root, here: here, failure: failure)
    }

    /// Returns `node` with the value at `path` replaced (copying only the nodes along the path).
    private static func set(_ value: Node, at path: ArraySlice<String>, in node: Node, prefix: DocumentPath,
                            here: SourceLocation, failure: (String) -> Diagnostic) throws(Diagnostic) -> Node {
        guard let first = path.first else { return value }
        let rest = path.dropFirst()
        switch node.content {
        case .mapping(var entries):
            if let index = entries.firstIndex(where: { $0.key == first }) {
                let old = entries[index]
                let child = try set(value, at: rest, in: old.value, prefix: prefix.appending(first), here: here, failure: failure)
                entries[index] = Node.Entry(key: first, keyLocation: old.keyLocation, value: child)
            } else {
                entries.append(Node.Entry(key: first, keyLocation: here, value: created(value, at: rest, here: here)))
            }
            return Node(.mapping(entries), location: node.location)
        case .sequence(var items):
            guard let index = Int(first), items.indices.contains(index) else {
                throw failure("'\(prefix.display)' is a list of \(DiagnosticText.count(items.count, "item")); '\(first)' is not an index in it")
            }
            items[index] = try set(value, at: rest, in: items[index], prefix: prefix.appending(index: index), here: here, failure: failure)
            return Node(.sequence(items), location: node.location)
        case .scalar(let scalar):
            if scalar.value == .null {  // `optimizer:` left empty: fill it in
                return Node(.mapping([Node.Entry(key: first, keyLocation: here, value: created(value, at: rest, here: here))]),
                            location: node.location)
            }
            let name = prefix.segments.isEmpty ? "the document root" : "'\(prefix.display)'"
            throw failure("\(name) is not a mapping (found \(scalar.value.foundDescription) at \(node.location))")
        }
    }

    /// Nested mappings holding `value` at `path` (for keys that do not exist yet).
    private static func created(_ value: Node, at path: ArraySlice<String>, here: SourceLocation) -> Node {
        guard let first = path.first else { return value }
        let child = created(value, at: path.dropFirst(), here: here)
        return Node(.mapping([Node.Entry(key: first, keyLocation: here, value: child)]), location: here)
    }

    /// A copy of `node` whose every location is the override's.
    static func relocate(_ node: Node, to here: SourceLocation) -> Node {
        switch node.content {
        case .scalar: return Node(node.content, location: here)
        case .sequence(let items): return Node(.sequence(items.map { relocate($0, to: here) }), location: here)
        case .mapping(let entries):
            return Node(.mapping(entries.map { Node.Entry(key: $0.key, keyLocation: here, value: relocate($0.value, to: here)) }),
                        location: here)
        }
    }
}
