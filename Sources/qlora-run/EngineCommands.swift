import Foundation
import PipelineCore
import Stages

/// tokenize / generate / bench.
struct EngineCommands {
    let console: Console

    func run(_ invocation: Invocation) throws -> ExitCode {
        switch invocation.command {
        case .bench(let quick):
            console.print("qlora-run bench\(quick ? " --quick" : "") — medians; \(ProcessInfo.processInfo.activeProcessorCount) cores")
            _ = Bench.run(quick: quick) { console.print($0) }
            return .ok
        case .tokenize(let directory, let decode):
            let session = try Inference.tokenizer(directory: URL(fileURLWithPath: directory))
            while let line = readLine(strippingNewline: true) {
                if decode {
                    guard let value = try? JSONReader.read(text: line, displayName: "stdin"), let ids = value.arrayValue?.compactMap(\.intValue) else {
                        console.error("stdin: expected a JSON array of token ids per line, found: \(line.prefix(60))")
                        return .invalidInput
                    }
                    console.print(session.decode(ids))
                } else {
                    console.print("[" + session.encode(line).map(String.init).joined(separator: ",") + "]")
                }
            }
            return .ok
        case .generate(let g):
            let text = try Inference.generate(model: URL(fileURLWithPath: g.model), adapter: g.adapter.map { URL(fileURLWithPath: $0) },
                                              prompt: g.prompt, chat: g.chat, maxNewTokens: g.maxNewTokens,
                                              temperature: g.temperature, topK: g.topK, topP: g.topP, seed: g.seed)
            console.print(text)
            return .ok
        default:
            return .invalidInput
        }
    }
}
