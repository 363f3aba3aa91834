import Foundation

/// One point of a sweep: its name (`rank=8,lr=0.0001`) and the value each swept path takes.
public struct SweepPoint: Sendable {
    public struct Value: Sendable {
        public var path: [String]
        public var node: Node        // located where the value was written (file or --sweep)
        public var text: String      // the value as in the name and the run record
    }
    public var index: Int
    public var name: String
    public var values: [Value]
    /// `path=value` per swept path, as --set would take them (for run records).
    public var assignments: [String] { values.map { $0.path.joined(separator: ".") + "=" + $0.text } }
}

/// `sweep:` in the manifest (and `--sweep PATH=V1,V2` on the command line): the grid or zip of
/// field values to run the pipeline at. Parsed from the document's nodes so every problem points at
/// the line and column where it was written.
public enum Sweep {
    static let keys = ["sweep", "sweep_mode", "max_points"]

    /// The document with the command line's sweeps merged into `sweep:` (a path given there replaces
    /// the file's list for it). `--sweep stages.train.lr=1e-4,2e-4`: the value is read as the YAML
    /// flow list `[1e-4,2e-4]`, so `[q_proj],[v_proj]` is a list of two lists.
    public static func merging(_ sweeps: [String], into document: Document) throws(DiagnosticList) -> Document {
        guard !sweeps.isEmpty else { return document }
        var diagnostics: [Diagnostic] = []
        var result = document
        for text in sweeps {
            let label = "--sweep \(text)"
            let here = SourceLocation(file: label, line: 0, column: 0)
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                diagnostics.append(Diagnostic(location: nil, message: "\(label): expected PATH=V1,V2,..., e.g. --sweep stages.train.lr=1e-4,2e-4"))
                continue
            }
            let path = String(text[..<equals]), values = String(text[text.index(after: equals)...])
            do {
                let parsed = try YAMLReader.read(text: "[" + values + "]", displayName: label)
                let list = Overrides.relocate(parsed.root, to: here)
                let existing = result.root.entry("sweep")?.value.entries ?? []
                var entries = existing.filter { $0.key != path }
                entries.append(Node.Entry(key: path, keyLocation: here, value: list))
                result = try Overrides.set(Node(.mapping(entries), location: result.root.entry("sweep")?.value.location ?? here),
                                           at: ["sweep"], in: result, here: here, label: label)
            } catch let error as DiagnosticList {
                diagnostics.append(Diagnostic(location: nil, message: "\(label): the values are not a valid YAML list: "
                                              + error.diagnostics.map(\.message).joined(separator: "; ")))
            } catch let error as Diagnostic {
                diagnostics.append(error)
            } catch {
                diagnostics.append(Diagnostic(location: nil, message: "\(label): \(error)"))
            }
        }
        if !diagnostics.isEmpty { throw DiagnosticList(diagnostics) }
        return result
    }

    /// The points of a schema-valid document's sweep (nil: it has none), checked: every path names an
    /// existing stage, zip lists have one length, and there are at most `max_points` points.
    public static func points(of document: Document) throws(DiagnosticList) -> [SweepPoint]? {
        guard let sweep = document.root.entry("sweep"), let entries = sweep.value.entries, !entries.isEmpty else { return nil }
        var diagnostics: [Diagnostic] = []
        let stageNames = document.root.child("stages")?.entries?.map(\.key) ?? []
        var axes: [(path: [String], location: SourceLocation, values: [Node])] = []
        for entry in entries {
            let path = entry.key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if path.contains(where: \.isEmpty) {
                diagnostics.append(Diagnostic(location: entry.keyLocation, path: "sweep", message: "'\(entry.key)' is not a dotted path like stages.train.lr"))
                continue
            }
            if path.first == "stages" {
                guard path.count >= 3 else {
                    diagnostics.append(Diagnostic(location: entry.keyLocation, path: "sweep",
                                                  message: "'\(entry.key)' names no field; give stages.STAGE.FIELD, e.g. stages.train.lr"))
                    continue
                }
                if !stageNames.contains(path[1]) {
                    let hint = EditDistance.suggestion(for: path[1], among: stageNames).map { "; did you mean '\($0)'?" } ?? ""
                    diagnostics.append(Diagnostic(location: entry.keyLocation, path: "sweep",
                                                  message: "'\(entry.key)': there is no stage '\(path[1])'\(hint)"))
                    continue
                }
            } else if keys.contains(path[0]) || path[0] == "stages" || path[0] == "version" {
                diagnostics.append(Diagnostic(location: entry.keyLocation, path: "sweep", message: "'\(entry.key)' cannot be swept"))
                continue
            }
            axes.append((path, entry.keyLocation, entry.value.items ?? []))
        }
        let zipped = document.root.entry("sweep_mode")?.value.scalar?.value == .string("zip")
        let lengths = axes.map(\.values.count)
        if zipped, Set(lengths).count > 1, let modeEntry = document.root.entry("sweep_mode") {
            let shown = axes.map { "\($0.path.joined(separator: ".")) has \($0.values.count)" }.joined(separator: ", ")
            diagnostics.append(Diagnostic(location: modeEntry.value.location, path: "sweep_mode",
                                          message: "zip pairs the lists element by element, so they must have equal lengths: \(shown)"))
        }
        let limit = document.root.entry("max_points")?.value.scalar?.value.intValue ?? 64
        let count = zipped ? (lengths.first ?? 0) : lengths.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if diagnostics.isEmpty, count > limit {
            let product = zipped ? "\(count)" : lengths.map(String.init).joined(separator: " × ") + " = \(count)"
            diagnostics.append(Diagnostic(location: sweep.keyLocation, path: "sweep",
                                          message: "\(product) points, more than max_points (\(limit)); sweep fewer values or raise max_points"))
        }
        if !diagnostics.isEmpty { throw DiagnosticList(diagnostics) }

        let names = shortNames(axes.map(\.path))
        var combinations: [[Int]] = []
        if zipped {
            combinations = (0..<count).map { i in axes.map { _ in i } }
        } else {
            combinations = [[]]
            for axis in axes { combinations = combinations.flatMap { prefix in (0..<axis.values.count).map { prefix + [$0] } } }
        }
        return combinations.enumerated().map { index, choice in
            let values = axes.indices.map { a in
                SweepPoint.Value(path: axes[a].path, node: axes[a].values[choice[a]], text: text(of: axes[a].values[choice[a]]))
            }
            let name = zip(names, values).map { "\($0)=\($1.text)" }.joined(separator: ",")
            return SweepPoint(index: index, name: name, values: values)
        }
    }

    /// The document one point runs: its values set, the sweep keys removed, and each output path
    /// (`outputFields` of a stage kind) made the point's own: `{point}` replaced, else `/<point name>` appended.
    public static func document(for point: SweepPoint, of document: Document, outputFields: (String) -> Set<String>) throws(DiagnosticList) -> Document {
        var result = document
        var diagnostics: [Diagnostic] = []
        for value in point.values {
            do throws(Diagnostic) {
                result = try Overrides.set(value.node, at: value.path, in: result, here: value.node.location,
                                           label: "sweep \(value.path.joined(separator: "."))")
            } catch { diagnostics.append(error) }
        }
        if !diagnostics.isEmpty { throw DiagnosticList(diagnostics) }
        var entries = (result.root.entries ?? []).filter { !keys.contains($0.key) }
        if let stagesIndex = entries.firstIndex(where: { $0.key == "stages" }), let stages = entries[stagesIndex].value.entries {
            let rewritten = stages.map { stage -> Node.Entry in
                guard let kind = stage.value.child("kind")?.scalar?.value.stringValue, let fields = stage.value.entries else { return stage }
                let outputs = outputFields(kind)
                let newFields = fields.map { field -> Node.Entry in
                    guard outputs.contains(field.key), let path = field.value.scalar?.value.stringValue else { return field }
                    let own = path.contains("{point}") ? path.replacingOccurrences(of: "{point}", with: directoryName(point.name))
                        : (path.hasSuffix("/") ? path : path + "/") + directoryName(point.name)
                    return Node.Entry(key: field.key, keyLocation: field.keyLocation, value: Node(scalar: .string(own), location: field.value.location))
                }
                return Node.Entry(key: stage.key, keyLocation: stage.keyLocation, value: Node(.mapping(newFields), location: stage.value.location))
            }
            entries[stagesIndex] = Node.Entry(key: "stages", keyLocation: entries[stagesIndex].keyLocation,
                                              value: Node(.mapping(rewritten), location: entries[stagesIndex].value.location))
        }
        return Document(file: result.file, root: Node(.mapping(entries), location: result.root.location))
    }

    /// A point name as one path component (`/` and whitespace would not be).
    public static func directoryName(_ name: String) -> String {
        String(name.map { $0 == "/" || $0.isWhitespace ? "_" : $0 })
    }

    /// The shortest distinct suffix of each path: `rank`, `lr`; `train.lr` and `other.lr` when two end alike.
    static func shortNames(_ paths: [[String]]) -> [String] {
        var length = paths.map { _ in 1 }
        for _ in 0..<8 {
            let names = paths.indices.map { paths[$0].suffix(length[$0]).joined(separator: ".") }
            var clash = false
            for i in paths.indices where names.filter({ $0 == names[i] }).count > 1 && length[i] < paths[i].count { length[i] += 1; clash = true }
            if !clash { return names }
        }
        return paths.map { $0.joined(separator: ".") }
    }

    /// A value as written in names: scalars by their JSON value (1e-4 -> 0.0001, strings bare), others as canonical JSON.
    static func text(of node: Node) -> String {
        switch node.value {
        case .string(let s): return s
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case let other: return CanonicalJSON.string(other)
        }
    }
}
