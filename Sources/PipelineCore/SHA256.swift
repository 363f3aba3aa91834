import Foundation
import CSHA256

/// SHA-256 as specified in FIPS 180-4 (Secure Hash Standard), section 6.2.
///
/// Streaming: `update` any number of times, then `finalize`. The compression function works
/// directly on the caller's bytes (an `UnsafeRawBufferPointer`), reading big-endian words
/// with `loadUnaligned`, so large files are hashed without per-byte copies. The 64 rounds are
/// unrolled in steps of 8 with rotating variable roles (the usual trick that removes the
/// eight-register shuffle of the naive loop body); constants and schedule live in raw memory.
///
/// Where the CPU has the SHA extensions (SHA-NI), whole blocks go to the C kernel in
/// Sources/CSHA256 instead (~8x faster); this Swift code is the fallback and the test oracle.
/// `QLORA_SHA256=portable` forces the Swift path.
public struct SHA256: Sendable {
    /// True when blocks are compressed by SHA-NI on this machine.
    public static let usesHardware: Bool =
        qlora_sha256_hardware_available() == 1 && ProcessInfo.processInfo.environment["QLORA_SHA256"] != "portable"

    /// Which compressor this hasher uses (tests compare both on the same input).
    private let hardware: Bool
    /// FIPS 180-4 §4.2.2: first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    // FIPS 180-4 §5.3.3: initial hash value.
    private var h0: UInt32 = 0x6a09e667, h1: UInt32 = 0xbb67ae85, h2: UInt32 = 0x3c6ef372, h3: UInt32 = 0xa54ff53a
    private var h4: UInt32 = 0x510e527f, h5: UInt32 = 0x9b05688c, h6: UInt32 = 0x1f83d9ab, h7: UInt32 = 0x5be0cd19
    /// Bytes of an incomplete block carried between `update` calls (at most 63 used).
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var totalBytes: UInt64 = 0

    public init() { hardware = Self.usesHardware }

    /// A hasher that never uses SHA-NI: the portable reference.
    public init(portable: Bool) { hardware = portable ? false : Self.usesHardware }

    /// Hashes `data` in one call and returns the 32-byte digest.
    public static func hash<D: DataProtocol>(_ data: D) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data)
        return hasher.finalize()
    }

    /// Lowercase hex digest of `data`.
    public static func hex<D: DataProtocol>(_ data: D) -> String { hash(data).hexString }

    public mutating func update<D: DataProtocol>(_ data: D) {
        for region in data.regions {
            region.withUnsafeBytes { update(bytes: $0) }
        }
    }

    public mutating func update(bytes input: UnsafeRawBufferPointer) {
        guard input.count > 0, let base = input.baseAddress else { return }
        totalBytes &+= UInt64(input.count)
        var offset = 0
        var remaining = input.count
        if buffered > 0 {
            let take = min(64 - buffered, remaining)
            buffer.withUnsafeMutableBytes { buf in
                buf.baseAddress!.advanced(by: buffered).copyMemory(from: base, byteCount: take)
            }
            buffered += take; offset += take; remaining -= take
            if buffered < 64 { return }
            let copy = buffer
            copy.withUnsafeBytes { compress(UnsafeRawBufferPointer($0), blocks: 1) }
            buffered = 0
        }
        let whole = remaining / 64
        if whole > 0 {
            compress(UnsafeRawBufferPointer(start: base + offset, count: whole * 64), blocks: whole)
            offset += whole * 64; remaining -= whole * 64
        }
        if remaining > 0 {
            buffer.withUnsafeMutableBytes { buf in
                buf.baseAddress!.copyMemory(from: base + offset, byteCount: remaining)
            }
            buffered = remaining
        }
    }

    /// Applies the padding of FIPS 180-4 §5.1.1 and returns the digest (big-endian words).
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        var pad: [UInt8] = [0x80]
        let padZeros = (buffered + 1 <= 56) ? 56 - buffered - 1 : 120 - buffered - 1
        pad.append(contentsOf: repeatElement(0, count: padZeros))
        for i in (0..<8).reversed() { pad.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        let savedTotal = totalBytes
        pad.withUnsafeBytes { update(bytes: $0) }
        totalBytes = savedTotal
        var out = [UInt8]()
        out.reserveCapacity(32)
        for word in [h0, h1, h2, h3, h4, h5, h6, h7] {
            out.append(UInt8(word >> 24)); out.append(UInt8((word >> 16) & 0xff))
            out.append(UInt8((word >> 8) & 0xff)); out.append(UInt8(word & 0xff))
        }
        return out
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }

    /// The round constants in raw memory: no bounds checks or retain/release in the hot loop.
    nonisolated(unsafe) private static let kTable: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        p.initialize(from: k, count: 64)
        return p
    }()

    /// One round (FIPS 180-4 §6.2.2 step 3); `kw` = K[t] + W[t]. Callers rotate the roles of
    /// a…h instead of shifting eight registers per round.
    @inline(__always) private static func round(_ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
                                                _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32) {
        let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
        let ch = g ^ (e & (f ^ g))
        let t1 = h &+ s1 &+ ch &+ kw
        let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
        let maj = (a & b) | (c & (a | b))
        d = d &+ t1
        h = t1 &+ s0 &+ maj
    }

    /// Compresses `blocks` consecutive 64-byte blocks (FIPS 180-4 §6.2.2).
    private mutating func compress(_ data: UnsafeRawBufferPointer, blocks: Int) {
        guard let base = data.baseAddress else { return }
        if hardware {
            var state = (h0, h1, h2, h3, h4, h5, h6, h7)
            withUnsafeMutableBytes(of: &state) { raw in
                qlora_sha256_compress_hardware(raw.baseAddress!.assumingMemoryBound(to: UInt32.self),
                                               base.assumingMemoryBound(to: UInt8.self), blocks)
            }
            (h0, h1, h2, h3, h4, h5, h6, h7) = state
            return
        }
        let K = Self.kTable
        // Message schedule W[0..<64] (§6.2.2 step 1), expanded fully before the rounds.
        let W = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        defer { W.deallocate() }
        var a0 = h0, b0 = h1, c0 = h2, d0 = h3, e0 = h4, f0 = h5, g0 = h6, hh0 = h7
        for block in 0..<blocks {
            let p = base + block * 64
            for i in 0..<16 { W[i] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
            for t in 16..<64 {
                let w15 = W[t - 15], w2 = W[t - 2]
                let s0 = Self.rotr(w15, 7) ^ Self.rotr(w15, 18) ^ (w15 >> 3)
                let s1 = Self.rotr(w2, 17) ^ Self.rotr(w2, 19) ^ (w2 >> 10)
                W[t] = W[t - 16] &+ s0 &+ W[t - 7] &+ s1
            }
            var a = a0, b = b0, c = c0, d = d0, e = e0, f = f0, g = g0, h = hh0
            var t = 0
            while t < 64 {
                Self.round(a, b, c, &d, e, f, g, &h, K[t] &+ W[t])
                Self.round(h, a, b, &c, d, e, f, &g, K[t + 1] &+ W[t + 1])
                Self.round(g, h, a, &b, c, d, e, &f, K[t + 2] &+ W[t + 2])
                Self.round(f, g, h, &a, b, c, d, &e, K[t + 3] &+ W[t + 3])
                Self.round(e, f, g, &h, a, b, c, &d, K[t + 4] &+ W[t + 4])
                Self.round(d, e, f, &g, h, a, b, &c, K[t + 5] &+ W[t + 5])
                Self.round(c, d, e, &f, g, h, a, &b, K[t + 6] &+ W[t + 6])
                Self.round(b, c, d, &e, f, g, h, &a, K[t + 7] &+ W[t + 7])
                t += 8
            }
            a0 &+= a; b0 &+= b; c0 &+= c; d0 &+= d; e0 &+= e; f0 &+= f; g0 &+= g; hh0 &+= h
        }
        h0 = a0; h1 = b0; h2 = c0; h3 = d0; h4 = e0; h5 = f0; h6 = g0; h7 = hh0
    }

    /// Hashes `megabytes` MiB of a repeating pattern and returns decimal MB/s (10⁶ bytes per second,
    /// the unit of the GB/s target and of `openssl speed`), for the CLI's `bench`.
    public static func benchmark(megabytes: Int = 256) -> Double {
        let chunk = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var hasher = SHA256()
        let start = DispatchTime.now().uptimeNanoseconds
        chunk.withUnsafeBytes { raw in for _ in 0..<max(1, megabytes) { hasher.update(bytes: raw) } }
        _ = hasher.finalize()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(max(1, megabytes) << 20) / 1e6 / max(seconds, 1e-9)
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal text of the bytes.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
