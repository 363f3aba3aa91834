import Foundation

/// Reads back the cache's own records (action records, stage records, run records, digest memos),
/// which are written as canonical JSON. One JSON parser serves the whole target: this delegates to
/// the strict RFC 8259 `JSONReader`, which also keeps integers (`.integer`) apart from other
/// numbers (`.number`), as canonical JSON requires.
enum CanonicalJSONParser {
    static func parse(_ data: Data) throws -> JSONValue {
        try JSONReader.read(text: String(decoding: data, as: UTF8.self), displayName: "<cache record>")
    }
}
