// Build-time tool: turns schemas/pipeline.schema.json into a Swift source holding its exact bytes,
// so the schema file is the only copy (the CLI still works from any directory).
// Usage: embed-schema INPUT.json OUTPUT.swift
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: embed-schema INPUT.json OUTPUT.swift\n".utf8))
    exit(2)
}
guard let bytes = FileManager.default.contents(atPath: arguments[1]) else {
    FileHandle.standardError.write(Data("embed-schema: cannot read \(arguments[1])\n".utf8))
    exit(1)
}
// A byte array literal, not a raw string: any text (including "#) embeds unchanged.
var lines: [String] = []
var row: [String] = []
for byte in bytes {
    row.append(String(byte))
    if row.count == 32 { lines.append("        " + row.joined(separator: ", ") + ","); row = [] }
}
if !row.isEmpty { lines.append("        " + row.joined(separator: ", ") + ",") }
let source = """
// GENERATED at build time by the embed-schema plugin from schemas/pipeline.schema.json. Do not edit.

public enum EmbeddedSchema {
    /// The exact bytes of schemas/pipeline.schema.json.
    public static let bytes: [UInt8] = [
\(lines.joined(separator: "\n"))
    ]

    /// The schema as text.
    public static var text: String { String(decoding: bytes, as: UTF8.self) }
}

"""
do {
    try Data(source.utf8).write(to: URL(fileURLWithPath: arguments[2]), options: .atomic)
} catch {
    FileHandle.standardError.write(Data("embed-schema: cannot write \(arguments[2]): \(error.localizedDescription)\n".utf8))
    exit(1)
}
