// Build-tool plugin: generates EmbeddedSchema.swift for the Stages target from the one schema file
// at schemas/pipeline.schema.json, re-running whenever that file changes.
import PackagePlugin

@main
struct EmbedSchemaPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let schema = context.package.directoryURL.appending(path: "schemas/pipeline.schema.json")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSchema.swift")
        return [
            .buildCommand(
                displayName: "Embedding schemas/pipeline.schema.json",
                executable: try context.tool(named: "embed-schema").url,
                arguments: [schema.path(), output.path()],
                inputFiles: [schema],
                outputFiles: [output])
        ]
    }
}
