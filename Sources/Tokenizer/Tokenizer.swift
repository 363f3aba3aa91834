import Foundation

/// A Hugging Face `tokenizers`-compatible tokenizer loaded from tokenizer.json (BPE models).
///
/// Pipeline (HF tokenizers/src/tokenizer/mod.rs): added tokens are cut out of the raw text first
/// (non-normalized ones on the raw text, normalized ones after the normalizer), then each remaining
/// segment is normalized, pre-tokenized into words and each word merged by the BPE model.
/// Anything the file asks for that this implementation does not do exactly is a load-time
/// `TokenizerError.unsupported`, never a silent divergence.
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let decoder: TokenDecoder?
    let postProcessor: PostProcessor?
    let addedTokens: [AddedToken]
    private let addedById: [Int32: AddedToken]
    private let addedByContent: [String: Int32]
    private let rawMatcher: AddedTokenMatcher         // normalized == false
    private let normalizedMatcher: AddedTokenMatcher  // normalized == true
    /// GPT-2 style fast path: ByteLevel(use_regex) pre-tokenizer alone, no normalizer.
    private let fastByteLevel: (addPrefixSpace: Bool, enabled: Bool)

    /// Special tokens from tokenizer_config.json beside tokenizer.json (nil when absent).
    public let bosToken: String?
    public let eosToken: String?
    public let padToken: String?
    public let unkToken: String?
    /// The Jinja chat template string of tokenizer_config.json, if any (not evaluated; see ChatTemplate).
    public let chatTemplate: String?

    /// Loads `url` (tokenizer.json) and, if present, tokenizer_config.json in the same directory.
    public convenience init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        let configURL = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try? Data(contentsOf: configURL) : nil
        try self.init(data: data, configData: config, name: url.path, configName: configURL.path)
    }

    /// Parses tokenizer.json bytes; `name`/`configName` are used in error messages.
    public init(data: Data, configData: Data? = nil, name: String = "tokenizer.json", configName: String = "tokenizer_config.json") throws {
        let root = try Self.parseObject(data, name: name)
        let json = JSONFields(file: name, object: root, path: "")

        var added = [AddedToken]()
        if !json.isNull("added_tokens") { added = try json.objects("added_tokens").map(AddedToken.init) }
        addedTokens = added
        var byId = [Int32: AddedToken](), byContent = [String: Int32]()
        for token in added { byId[token.id] = token; byContent[token.content] = token.id }
        addedById = byId; addedByContent = byContent
        rawMatcher = AddedTokenMatcher(added.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(added.filter { $0.normalized })

        normalizer = try json.optionalObject("normalizer").map(Normalizer.init)
        preTokenizer = try json.optionalObject("pre_tokenizer").map(PreTokenizer.init)
        decoder = try json.optionalObject("decoder").map(TokenDecoder.init)
        if !json.isNull("truncation") { throw json.unsupported("truncation (set it to null; qlora-run truncates batches itself)") }
        if !json.isNull("padding") { throw json.unsupported("padding (set it to null; qlora-run pads batches itself)") }
        let model = try BPEModel(try json.object("model"), byteLevel: preTokenizer?.isByteLevel ?? false)
        self.model = model
        postProcessor = try json.optionalObject("post_processor").map {
            try PostProcessor($0, idOf: { byContent[$0] ?? model.tokenToId[$0] })
        }
        if case let .byteLevel(addPrefixSpace, true)? = preTokenizer, normalizer == nil {
            fastByteLevel = (addPrefixSpace, true)
        } else {
            fastByteLevel = (false, false)
        }

        var config = [String: Any]()
        if let configData = configData { config = try Self.parseObject(configData, name: configName) }
        bosToken = Self.specialToken("bos_token", in: config); eosToken = Self.specialToken("eos_token", in: config)
        padToken = Self.specialToken("pad_token", in: config); unkToken = Self.specialToken("unk_token", in: config)
        chatTemplate = Self.chatTemplate(in: config)
    }

    /// A special-token entry of tokenizer_config.json: a string or an AddedToken object (`content`).
    public static func specialToken(_ key: String, in config: [String: Any]) -> String? {
        if let s = config[key] as? String { return s }
        return (config[key] as? [String: Any])?["content"] as? String
    }

    /// tokenizer_config.json `chat_template`: a string, or transformers' list of named templates
    /// ([{"name", "template"}]), of which the one named "default".
    public static func chatTemplate(in config: [String: Any]) -> String? {
        if let named = config["chat_template"] as? [[String: Any]] {
            return (named.first { $0["name"] as? String == "default" } ?? named.first)?["template"] as? String
        }
        return config["chat_template"] as? String
    }

    private static func parseObject(_ data: Data, name: String) throws -> [String: Any] {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw TokenizerError.invalidJSON(file: name, reason: (error as NSError).userInfo["NSDebugDescription"] as? String ?? error.localizedDescription)
        }
        guard let object = any as? [String: Any] else { throw TokenizerError.invalidJSON(file: name, reason: "the top level is not an object") }
        return object
    }

    /// Number of embedding rows the ids need: highest id (model vocabulary or added token) + 1.
    public var vocabularySize: Int {
        let modelMax = model.idToToken.keys.max() ?? -1
        let addedMax = addedById.keys.max() ?? -1
        return Int(max(modelMax, addedMax)) + 1
    }

    public func id(of token: String) -> Int32? { addedByContent[token] ?? model.tokenToId[token] }

    /// The vocabulary entry of `id` (added token content or model token text), nil if unknown.
    public func token(of id: Int32) -> String? { addedById[id]?.content ?? model.idToToken[id] }

    /// Contents of the added tokens marked special (`<|im_end|>`, `</s>`...), longest first.
    public var specialTokens: [String] {
        addedById.values.filter(\.special).map(\.content).sorted { $0.utf8.count > $1.utf8.count }
    }

    /// The bytes token `id` stands for, when the tokenizer is byte-level (nil otherwise).
    func tokenBytes(_ id: Int32) -> [UInt8]? {
        if let added = addedById[id] { return Array(added.content.utf8) }
        guard fastByteLevel.enabled, let token = model.idToToken[id] else { return nil }
        return ByteLevel.bytes(of: token)
    }

    /// `encode(text)` with the UTF-8 byte offset where each token ends, for a lossless tokenizer
    /// (byte-level, no normalizer, no added prefix space: the tokens' bytes are exactly the text).
    /// nil when the tokens do not spell the text byte for byte.
    public func encodeWithOffsets(_ text: String) -> (ids: [Int32], ends: [Int])? {
        guard normalizer == nil, !fastByteLevel.addPrefixSpace else { return nil }
        let ids = encode(text)
        let bytes = Array(text.utf8)
        var ends: [Int] = []
        ends.reserveCapacity(ids.count)
        var position = 0
        for id in ids {
            guard let piece = tokenBytes(id), position + piece.count <= bytes.count,
                  bytes[position..<position + piece.count].elementsEqual(piece) else { return nil }
            position += piece.count
            ends.append(position)
        }
        return position == bytes.count ? (ids, ends) : nil
    }

    public var bosTokenId: Int32? { bosToken.flatMap(id(of:)) }
    public var eosTokenId: Int32? { eosToken.flatMap(id(of:)) }
    public var padTokenId: Int32? { padToken.flatMap(id(of:)) }

    /// Token ids of `text`, as HF `tokenizer.encode(text, add_special_tokens=...).ids`.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int32] {
        var ids = [Int32]()
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var text = text
        text.withUTF8 { buffer in
            if rawMatcher.isEmpty {
                encodeSegment(buffer, isFirst: true, into: &ids)
                return
            }
            for segment in rawMatcher.split(buffer) {
                if let id = segment.id { ids.append(id); continue }
                encodeSegment(UnsafeBufferPointer(rebasing: buffer[segment.start..<segment.end]), isFirst: segment.start == 0, into: &ids)
            }
        }
        if addSpecialTokens, let post = postProcessor { return post.apply(ids) }
        return ids
    }

    /// Text between non-normalized added tokens: normalize, cut normalized added tokens, pre-tokenize, BPE.
    private func encodeSegment(_ bytes: UnsafeBufferPointer<UInt8>, isFirst: Bool, into ids: inout [Int32]) {
        if fastByteLevel.enabled && normalizedMatcher.isEmpty {
            encodeByteLevelFast(bytes, into: &ids)
            return
        }
        var text = String(decoding: bytes, as: UTF8.self)
        if let normalizer = normalizer { text = normalizer.apply(text) }
        text.withUTF8 { buffer in
            let parts = normalizedMatcher.isEmpty ? [AddedTokenMatcher.Segment(start: 0, end: buffer.count, id: nil)] : normalizedMatcher.split(buffer)
            for part in parts {
                if let id = part.id { ids.append(id); continue }
                let piece = String(decoding: UnsafeBufferPointer(rebasing: buffer[part.start..<part.end]), as: UTF8.self)
                let words = preTokenizer?.apply([piece], isFirstSegment: isFirst && part.start == 0) ?? [piece]
                for var word in words {
                    word.withUTF8 { model.tokenize($0, into: &ids) }
                }
            }
        }
    }

    /// ByteLevel(use_regex: true) on raw bytes: hand GPT-2 scanner, words straight into the BPE model.
    private func encodeByteLevelFast(_ bytes: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        if bytes.isEmpty { return }
        if fastByteLevel.addPrefixSpace && bytes[0] != 0x20 {
            let prefixed = [0x20] + Array(bytes)
            prefixed.withUnsafeBufferPointer { encodeByteLevelFast($0, into: &ids) }
            return
        }
        GPT2Splitter.split(bytes) { start, end in
            model.tokenize(UnsafeBufferPointer(rebasing: bytes[start..<end]), into: &ids)
        }
    }

    /// Text of `ids`, as HF `tokenizer.decode(ids, skip_special_tokens=...)`. Unknown ids are skipped.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var tokens = [String]()
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let added = addedById[id] {
                if skipSpecialTokens && added.special { continue }
                tokens.append(added.content)
            } else if let token = model.idToToken[id] {
                tokens.append(token)
            }
        }
        guard let decoder = decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}
