import Foundation
import Stages
import Model
import Tokenizer
import Training

/// Tokenizer and generation entry points for the CLI (`tokenize`, `generate`) and `evaluate`.
public enum Inference {
    public struct TokenizerSession {
        let tokenizer: Tokenizer
        public func encode(_ text: String) -> [Int] { tokenizer.encode(text).map(Int.init) }
        public var vocabularySize: Int { tokenizer.vocabularySize }
        public func decode(_ ids: [Int]) -> String { tokenizer.decode(ids.map { Int32(truncatingIfNeeded: $0) }) }
    }

    /// A model directory or a directory holding tokenizer.json.
    public static func tokenizer(directory: URL) throws -> TokenizerSession {
        let file = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file.path) else { throw StageError.missingFile(file.path) }
        return TokenizerSession(tokenizer: try Tokenizer(contentsOf: file))
    }

    /// ChatML-wrapped (with `chat`) or raw prompt -> generated text (special tokens removed).
    public static func generate(model directory: URL, adapter: URL?, prompt: String, chat: Bool, maxNewTokens: Int,
                                temperature: Double, topK: Int, topP: Double, seed: UInt64) throws -> String {
        let model = try AdaptedModel.load(directory)
        if let adapter { _ = try PEFTAdapter.load(from: adapter, into: model) }
        let tokenizer = try Tokenizer(contentsOf: directory.appendingPathComponent("tokenizer.json"))
        let format = chat ? try ChatFormat.load(directory: directory, tokenizer: tokenizer) : nil
        return try complete(model: model, tokenizer: tokenizer, chatFormat: format, prompt: prompt, chat: chat, maxNewTokens: maxNewTokens,
                        sampling: Sampling(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: seed))
    }

    static func complete(model: LlamaModel, tokenizer: Tokenizer, chatFormat: ChatFormat? = nil, prompt: String, chat: Bool, maxNewTokens: Int, sampling: Sampling) throws -> String {
        var stops = Set<Int32>()
        for t in [tokenizer.eosTokenId] { if let t { stops.insert(t) } }
        var text = prompt
        if chat {
            let format = try chatFormat ?? ChatFormat.chatML(tokenizer: tokenizer)
            text = try format.prompt(prompt)
            if let end = format.endOfTurnToken(specialTokens: tokenizer.specialTokens, eosToken: tokenizer.eosToken), let id = tokenizer.id(of: end) {
                stops.insert(id)
            }
        }
        let out = model.generate(prompt: tokenizer.encode(text), maxNewTokens: maxNewTokens, sampling: sampling, stopTokens: stops)
        return tokenizer.decode(out, skipSpecialTokens: true)
    }
}
