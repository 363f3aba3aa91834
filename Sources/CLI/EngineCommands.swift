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
            var lineNumber = 0
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                if decode {
                    guard let value = try? JSONReader.read(text: line, displayName: "stdin"), let items = value.arrayValue,
                          case let ids = items.compactMap(\.intValue), ids.count == items.count else {
                        console.error("stdin:\(lineNumber): expected a JSON array of integer token ids, found: \(line.prefix(60))")
                        return .invalidInput
                    }
                    let size = session.vocabularySize
                    if let bad = ids.first(where: { $0 < 0 || $0 >= size }) {
                        console.error("stdin:\(lineNumber): token id \(bad) is out of range; this tokenizer has ids 0...\(size - 1)")
                        return .invalidInput
                    }
                    console.print(session.decode(ids))
                } else {
                    console.print("[" + session.encode(line).map(String.init).joined(separator: ",") + "]")
                }
            }
            return .ok
        case .chatRender(let options):
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            do {
                let text = try ChatRenderCommand.render(options, input: input)
                FileHandle.standardOutput.write(Data(text.utf8))   // exactly the rendering: no newline added
                return .ok
            } catch let error as LocalizedError {
                // The template, the checkpoint and stdin are all the user's: a failure is theirs to fix.
                throw InputError(message: error.errorDescription ?? "\(error)")
            }
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
