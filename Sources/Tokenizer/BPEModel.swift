import Foundation

/// The BPE model of tokenizer.json (`model.type == "BPE"`): vocabulary, ranked merges and the
/// per-word merge loop of HF `tokenizers` (models/bpe/word.rs): repeatedly merge the adjacent pair with
/// the lowest rank, leftmost first, until no pair has a merge.
final class BPEModel: @unchecked Sendable {
    let tokenToId: [String: Int32]
    /// id -> token text (model vocabulary only; added tokens live in AddedTokens).
    let idToToken: [Int32: String]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    let unkId: Int32?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// Whether input words arrive as raw UTF-8 bytes to spell with GPT-2's byte symbols (ByteLevel pre-tokenizer).
    let byteLevel: Bool
    /// byte -> id of its byte-level symbol (or -1), used when `byteLevel`.
    let byteIds: [Int32]
    /// byte -> id of `<0xXX>` (or -1), used for `byteFallback`.
    let fallbackIds: [Int32]
    private let cache = WordCache(capacity: 10_000)

    init(_ model: JSONFields, byteLevel: Bool) throws {
        let file = model.file
        if !model.isNull("type") {
            let type = try model.string("type")
            guard type == "BPE" else { throw model.unsupported("type \"\(type)\" (only BPE models are supported)") }
        }
        if !model.isNull("dropout"), let d = model.object["dropout"] as? NSNumber, d.doubleValue != 0 {
            throw model.unsupported("dropout \(d) (BPE dropout is a training-time feature)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try model.optionalString(key), !value.isEmpty {
                throw model.unsupported("\(key) \"\(value)\"")
            }
        }
        let vocabObject = try model.object("vocab")
        var tokenToId = [String: Int32](minimumCapacity: vocabObject.object.count)
        var idToToken = [Int32: String](minimumCapacity: vocabObject.object.count)
        for (token, value) in vocabObject.object {
            guard let n = value as? NSNumber, let id = Int32(exactly: n.doubleValue), id >= 0 else {
                throw TokenizerError.invalidField(file: file, field: "model.vocab[\"\(token)\"]", expected: "a non-negative integer id")
            }
            tokenToId[token] = id
            idToToken[id] = token
        }
        self.tokenToId = tokenToId
        self.idToToken = idToToken

        var merges = [UInt64: UInt64](minimumCapacity: 1024)
        let rawMerges = try model.array("merges")
        for (rank, raw) in rawMerges.enumerated() {
            let pair: [String]
            let shown: String
            if let s = raw as? String {
                pair = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                shown = "\"\(s)\""
                guard pair.count == 2 else {
                    throw TokenizerError.badMerge(file: file, index: rank, merge: shown, reason: "expected two tokens separated by one space")
                }
            } else if let a = raw as? [Any], a.count == 2, let l = a[0] as? String, let r = a[1] as? String {
                pair = [l, r]; shown = "[\"\(l)\", \"\(r)\"]"
            } else {
                throw TokenizerError.badMerge(file: file, index: rank, merge: "\(raw)", reason: "expected \"left right\" or [\"left\", \"right\"]")
            }
            guard let left = tokenToId[pair[0]] else {
                throw TokenizerError.badMerge(file: file, index: rank, merge: shown, reason: "token \"\(pair[0])\" is not in model.vocab")
            }
            guard let right = tokenToId[pair[1]] else {
                throw TokenizerError.badMerge(file: file, index: rank, merge: shown, reason: "token \"\(pair[1])\" is not in model.vocab")
            }
            guard let merged = tokenToId[pair[0] + pair[1]] else {
                throw TokenizerError.badMerge(file: file, index: rank, merge: shown, reason: "merged token \"\(pair[0] + pair[1])\" is not in model.vocab")
            }
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            if merges[key] == nil { merges[key] = UInt64(rank) << 32 | UInt64(UInt32(merged)) }
        }
        self.merges = merges

        if let unk = try model.optionalString("unk_token") {
            guard let id = tokenToId[unk] else {
                throw TokenizerError.invalidField(file: file, field: "model.unk_token", expected: "a token of model.vocab (\"\(unk)\" is not)")
            }
            unkId = id
        } else { unkId = nil }
        fuseUnk = try model.bool("fuse_unk", default: false)
        byteFallback = try model.bool("byte_fallback", default: false)
        ignoreMerges = try model.bool("ignore_merges", default: false)
        self.byteLevel = byteLevel
        byteIds = (0..<256).map { tokenToId[ByteLevel.symbol(UInt8($0))] ?? -1 }
        fallbackIds = (0..<256).map { tokenToId[String(format: "<0x%02X>", $0)] ?? -1 }
    }

    /// Appends the ids of one pre-tokenized word (its UTF-8 bytes) to `out`.
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if word.isEmpty { return }
        if byteLevel && word.count == 1 && !ignoreMerges {
            let id = byteIds[Int(word[0])]
            if id >= 0 { out.append(id) } else if let unk = unkId { out.append(unk) }
            return
        }
        let hash = WordCache.hash(word)
        if cache.append(word, hash: hash, to: &out) { return }
        var symbols = [Int32]()
        symbols.reserveCapacity(word.count)
        if ignoreMerges, let id = wholeWordId(word) {
            symbols.append(id)
        } else {
            initialSymbols(word, into: &symbols)
            mergeLoop(&symbols)
        }
        cache.put(word, hash: hash, symbols)
        out.append(contentsOf: symbols)
    }

    private func wholeWordId(_ word: UnsafeBufferPointer<UInt8>) -> Int32? {
        let text = byteLevel ? ByteLevel.symbols(word) : String(decoding: word, as: UTF8.self)
        return tokenToId[text]
    }

    /// One symbol per byte (byte-level) or per Unicode scalar; unknown scalars become `<0xXX>` byte
    /// tokens (byte_fallback), the unk token (fused when fuse_unk), or are dropped — as HF does.
    private func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, into symbols: inout [Int32]) {
        if byteLevel {
            for b in word {
                let id = byteIds[Int(b)]
                if id >= 0 { symbols.append(id) } else { appendUnknown(&symbols) }
            }
            return
        }
        let text = String(decoding: word, as: UTF8.self)
        for scalar in text.unicodeScalars {
            if let id = tokenToId[String(scalar)] { symbols.append(id); continue }
            if byteFallback {
                let bytes = Array(String(scalar).utf8)
                if bytes.allSatisfy({ fallbackIds[Int($0)] >= 0 }) {
                    for b in bytes { symbols.append(fallbackIds[Int(b)]) }
                    continue
                }
            }
            appendUnknown(&symbols)
        }
    }

    private func appendUnknown(_ symbols: inout [Int32]) {
        guard let unk = unkId else { return }
        if fuseUnk, symbols.last == unk { return }
        symbols.append(unk)
    }

    /// Lowest-rank adjacent pair first, leftmost on ties; equals HF's priority-queue merge order.
    private func mergeLoop(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var bestRank = UInt64.max, bestIndex = -1, bestId: Int32 = 0
            var left = UInt64(UInt32(symbols[0]))
            for k in 1..<symbols.count {
                let right = UInt64(UInt32(symbols[k]))
                if let value = merges[left << 32 | right], value >> 32 < bestRank {
                    bestRank = value >> 32; bestIndex = k - 1; bestId = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF)
                }
                left = right
            }
            if bestIndex < 0 { return }
            symbols[bestIndex] = bestId
            symbols.remove(at: bestIndex + 1)
        }
    }
}

/// Bounded word -> ids cache shared by concurrent encoders (HF keeps a 10k-entry cache too).
/// Keyed by a 64-bit FNV-1a hash of the word's bytes (hashing `[UInt8]` through `Hasher` byte by byte
/// dominated the profile); the stored bytes are compared on a hit, so a collision only costs a miss.
/// Stops inserting when full so memory stays bounded.
final class WordCache: @unchecked Sendable {
    private struct Entry { let bytes: [UInt8]; let ids: [Int32] }
    private var storage: [UInt64: Entry] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    @inline(__always) static func hash(_ word: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in word { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ UInt64(word.count)
    }

    /// Appends the cached ids of `word` to `out`; false on a miss.
    func append(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, to out: inout [Int32]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard let entry = storage[hash], entry.bytes.elementsEqual(word) else { return false }
        out.append(contentsOf: entry.ids)
        return true
    }

    func put(_ word: UnsafeBufferPointer<UInt8>, hash: UInt64, _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if storage.count < capacity && storage[hash] == nil { storage[hash] = Entry(bytes: Array(word), ids: ids) }
    }
}
