import Foundation
@inline(__always) func Foundation_log(_ x: Double) -> Double { log(x) }
@inline(__always) func Foundation_cos(_ x: Double) -> Double { cos(x) }

/// Counter-based random numbers: value i of stream s is a pure function of (seed, s, i).
///
/// Every consumer names its stream (`"lora/layers.0.attention.wq/A"`, `"shuffle/epoch-3"`), so
/// adding a consumer never shifts another's numbers, and a run resumed at counter i continues
/// exactly. The mixing function is SplitMix64's finaliser (Steele, Lea, Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014) applied to seed ^ hash(stream) + i·golden-gamma.
public struct RandomStream: Sendable {
    public let key: UInt64
    public private(set) var counter: UInt64

    public init(seed: UInt64, stream: String, counter: UInt64 = 0) {
        self.key = RandomStream.mix(seed &+ RandomStream.fnv1a(stream))
        self.counter = counter
    }

    /// FNV-1a 64-bit over the UTF-8 bytes of a stream name.
    public static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// SplitMix64 finaliser.
    @inline(__always) public static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    public mutating func nextUInt64() -> UInt64 {
        let v = RandomStream.mix(key &+ counter &* 0x9e37_79b9_7f4a_7c15)
        counter &+= 1
        return v
    }

    /// Value `counter` of this stream as a uniform in [0, 1), without advancing: the same bits
    /// `nextUniform()` returns at that counter. Lets a kernel fill a mask in parallel chunks and
    /// regenerate it later (dropout in backward) with no dependence on the partitioning.
    @inline(__always) public func uniform(at counter: UInt64) -> Double {
        Double(RandomStream.mix(key &+ counter &* 0x9e37_79b9_7f4a_7c15) >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextUniform() -> Double {
        Double(nextUInt64() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal by Box–Muller (two uniforms per value; the sine branch is discarded so
    /// that value i always uses counters 2i and 2i+1).
    public mutating func nextNormal() -> Double {
        let u1 = max(nextUniform(), 1e-300)
        let u2 = nextUniform()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// Uniform integer in 0..<n (n > 0), by 128-bit multiply (Lemire), bias < 2^-64·n.
    public mutating func nextInt(below n: Int) -> Int {
        let r = nextUInt64().multipliedFullWidth(by: UInt64(n))
        return Int(r.high)
    }
}

@inline(__always) private func _log(_ x: Double) -> Double { Double.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Double.cos(x) }

extension Double {
    @inline(__always) static func log(_ x: Double) -> Double { Foundation_log(x) }
    @inline(__always) static func cos(_ x: Double) -> Double { Foundation_cos(x) }
}
