import Foundation

/// A position in a user's file. Lines and columns are 1-based, columns count characters
/// (Unicode scalars, as libyaml counts them), like a compiler's `file:line:col`.
///
/// Values that do not come from a file (a `--set` override) use the override text as `file`
/// and `line == 0`; `description` then prints just the file part.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }

    /// `file:line:col`, `line:col` when the file is empty, `file` when the line is 0.
    public var description: String {
        var parts: [String] = []
        if !file.isEmpty { parts.append(file) }
        if line > 0 { parts.append("\(line):\(column)") }
        return parts.joined(separator: ":")
    }

    /// Just `line:col` (used inside messages that already name the file).
    public var lineColumn: String { "\(line):\(column)" }
}

/// One problem found in the user's input, printed like a compiler diagnostic:
/// `pipelines/x.yaml:12:7: error: stages.train.lr: expected a number, found the string "fast"`.
public struct Diagnostic: Error, Sendable, CustomStringConvertible, Hashable, LocalizedError {
    public enum Severity: String, Sendable, Hashable { case error, warning, note }

    /// nil when the problem is not tied to a position (e.g. a missing file argument).
    public var location: SourceLocation?
    /// Dotted document path, e.g. `stages.train.lr`, list items as `skip[0]`; "" for the root.
    public var path: String
    public var message: String
    public var severity: Severity

    public init(location: SourceLocation?, path: String = "", message: String, severity: Severity = .error) {
        self.location = location
        self.path = path
        self.message = message
        self.severity = severity
    }

    public var description: String {
        var text = ""
        if let location {
            let where_ = location.description
            if !where_.isEmpty { text += where_ + ": " }
        }
        text += severity.rawValue + ": "
        if !path.isEmpty { text += path + ": " }
        return text + message
    }

    public var errorDescription: String? { description }
}

/// Every problem found at once, sorted by position (diagnostics without a location first,
/// ties keep their discovery order).
public struct DiagnosticList: Error, Sendable, LocalizedError, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = DiagnosticList.sorted(diagnostics)
    }

    public init(diagnostics: [Diagnostic]) { self.init(diagnostics) }

    /// Stable sort by location; location-less diagnostics come first.
    public static func sorted(_ list: [Diagnostic]) -> [Diagnostic] {
        list.enumerated().sorted { a, b in
            switch (a.element.location, b.element.location) {
            case (nil, nil): return a.offset < b.offset
            case (nil, _): return true
            case (_, nil): return false
            case (let x?, let y?): return x == y ? a.offset < b.offset : x < y
            }
        }.map(\.element)
    }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
    public var errorDescription: String? { description }
    public var isEmpty: Bool { diagnostics.isEmpty }
}

/// A document path as the validator and the YAML reader track it: mapping keys and list indices.
/// `display` is the dotted form used in diagnostics; `components` the `[String]` form used by
/// `Document.location(of:)` (indices as decimal strings).
struct DocumentPath: Hashable, Sendable {
    enum Segment: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    var segments: [Segment] = []

    static let root = DocumentPath()

    func appending(_ key: String) -> DocumentPath {
        var copy = self
        copy.segments.append(.key(key))
        return copy
    }

    func appending(index: Int) -> DocumentPath {
        var copy = self
        copy.segments.append(.index(index))
        return copy
    }

    var components: [String] {
        segments.map { segment in
            switch segment {
            case .key(let k): return k
            case .index(let i): return String(i)
            }
        }
    }

    var display: String {
        var text = ""
        for segment in segments {
            switch segment {
            case .key(let k): text += text.isEmpty ? k : "." + k
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }
}
