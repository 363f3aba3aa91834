import Foundation

extension Pipeline {
    /// Everything `qlora-run validate` / `plan` / `run` need: schema validation (defaults filled)
    /// and, when the schema found no errors, the graph checks. Returns the pipeline only when
    /// there are no diagnostics at all. Writes nothing.
    public static func validate(document: Document, schema: JSONSchema, schemaValue: JSONValue,
                                file: URL? = nil) -> (pipeline: Pipeline?, diagnostics: [Diagnostic]) {
        let (value, schemaDiagnostics) = schema.validate(document)
        let errors = schemaDiagnostics.filter { $0.severity == .error }
        guard errors.isEmpty else { return (nil, schemaDiagnostics) }
        let (pipeline, graphDiagnostics) = load(document: document, schema: schemaValue, validatedValue: value, file: file)
        return (pipeline, DiagnosticList.sorted(schemaDiagnostics + graphDiagnostics))
    }

    /// Builds the pipeline from a parsed YAML document and reports graph problems as located
    /// diagnostics (`pipelines/x.yaml:14:12: error: stages.train.model: unknown stage …`).
    ///
    /// Schema validation is separate (`JSONSchema.validate(document)`): pass its defaults-filled
    /// value as `validatedValue` and run this only when the schema found no errors, so that the
    /// graph checks see well-typed stages. Stage declaration order is the YAML key order.
    /// `file` is the pipeline's real location (paths are relative to its directory); it defaults
    /// to `document.file` resolved against the working directory.
    public static func load(document: Document, schema: JSONValue, validatedValue: JSONValue? = nil,
                            file: URL? = nil, phrases: ArtifactPhrasing = ArtifactPhrasing()) -> (pipeline: Pipeline?, diagnostics: [Diagnostic]) {
        let value = validatedValue ?? document.value
        let names = value["stages"]?.objectValue?.keys.map { $0 } ?? []
        let order = names.sorted { a, b in
            switch (document.keyLocation(of: ["stages", a]), document.keyLocation(of: ["stages", b])) {
            case let (x?, y?): return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
        let (pipeline, issues) = load(value: value, schema: schema, file: file ?? URL(fileURLWithPath: document.file),
                                      displayName: document.file, stageOrder: order, phrases: phrases)
        let diagnostics = issues.map { issue in
            Diagnostic(location: issue.atKey ? (document.keyLocation(of: issue.path) ?? document.location(of: issue.path))
                                             : document.location(of: issue.path),
                       path: issue.shownPath, message: issue.message)
        }
        return (pipeline, DiagnosticList.sorted(diagnostics))
    }
}
