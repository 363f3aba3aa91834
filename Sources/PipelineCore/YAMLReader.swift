import CYAML
import Foundation

/// Reads a YAML file into a `Document` through libyaml's event API (parser only; composition,
/// scalar resolution and alias handling are ours, see `YAMLComposer`).
///
/// Errors are collected where parsing can go on (duplicate keys, bad tags) and thrown together;
/// a syntax error stops the parse and reports libyaml's own problem text at its mark.
public enum YAMLReader {
    /// Upper bound on the document size with aliases expanded: a "billion laughs" file is an error,
    /// not a hang or an out-of-memory.
    public static let maxExpandedNodes = 100_000

    /// Reads `url`; `displayName` is the path as the user wrote it (printed in diagnostics).
    /// A `.json` file is read by the strict JSON reader (same node tree, same locations).
    public static func read(contentsOf url: URL, displayName: String) throws(DiagnosticList) -> Document {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: url))
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path) ? "it cannot be read" : "no such file"
            throw DiagnosticList([Diagnostic(location: nil, message: "cannot read '\(displayName)': \(reason)")])
        }
        if url.pathExtension.lowercased() == "json" {
            return try JSONReader.document(bytes: bytes, displayName: displayName)
        }
        return try read(bytes: bytes, displayName: displayName)
    }

    public static func read(text: String, displayName: String) throws(DiagnosticList) -> Document {
        try read(bytes: Array(text.utf8), displayName: displayName)
    }

    public static func read(bytes: [UInt8], displayName: String) throws(DiagnosticList) -> Document {
        let composer = YAMLComposer(file: displayName, limit: maxExpandedNodes)
        let result: Result<Node?, DiagnosticList> = bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) != 0 else {
                return .failure(DiagnosticList([Diagnostic(location: nil, message: "libyaml could not initialise (out of memory)")]))
            }
            defer { yaml_parser_delete(&parser) }
            // libyaml needs a non-null pointer even for an empty input.
            var empty: UInt8 = 0
            let base = buffer.baseAddress ?? withUnsafeMutablePointer(to: &empty) { UnsafePointer($0) }
            yaml_parser_set_input_string(&parser, base, buffer.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) != 0 else {
                    return .failure(DiagnosticList(composer.diagnostics + [syntaxError(parser, file: displayName)]))
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { break }
                do throws(Diagnostic) {
                    try composer.handle(event)
                } catch {
                    return .failure(DiagnosticList(composer.diagnostics + [error]))
                }
            }
            return .success(composer.root)
        }
        switch result {
        case .failure(let list):
            throw list
        case .success(let root):
            if !composer.diagnostics.isEmpty { throw DiagnosticList(composer.diagnostics) }
            // An empty file is a null document; the schema then says what it expected.
            let node = root ?? Node(scalar: .null, text: "", location: SourceLocation(file: displayName, line: 1, column: 1))
            return Document(file: displayName, root: node)
        }
    }

    /// libyaml's problem text at its mark, with the context it was parsing.
    static func syntaxError(_ parser: yaml_parser_t, file: String) -> Diagnostic {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        var message = "syntax error: \(problem)"
        if let context = parser.context.map({ String(cString: $0) }) {
            message += " (\(context) at \(parser.context_mark.line + 1):\(parser.context_mark.column + 1))"
        }
        let location: SourceLocation
        if parser.error == YAML_READER_ERROR {
            // Encoding errors carry a byte offset, not a mark.
            message += " at byte offset \(parser.problem_offset)"
            location = SourceLocation(file: file, line: Int(parser.mark.line) + 1, column: Int(parser.mark.column) + 1)
        } else {
            location = SourceLocation(file: file, line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
        }
        return Diagnostic(location: location, message: message)
    }
}
