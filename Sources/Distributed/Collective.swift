/// The ranks of a data-parallel job and the collective operations training needs from them.
///
/// Every rank calls the same operations in the same order (the training loop is deterministic),
/// so there are no tags, no point-to-point messages and no matching to get wrong. Every rank
/// receives the same bits from each reduction, which is what keeps the adapters of all ranks
/// identical without broadcasting them (checked at every checkpoint, see `Trainer`).
public protocol Collective: AnyObject, Sendable {
    /// 0-based; rank 0 writes checkpoints and publishes.
    var rank: Int { get }
    /// Number of ranks (1 = a single process).
    var size: Int { get }
    /// Element-wise sum over the ranks, in place.
    func sum(_ values: UnsafeMutableBufferPointer<Float>) throws
    func sum(_ values: UnsafeMutableBufferPointer<Double>) throws
    /// Element-wise maximum over the ranks, in place.
    func maximum(_ values: UnsafeMutableBufferPointer<Double>) throws
    /// Rank `root`'s bytes, on every rank (`bytes` is ignored elsewhere).
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]
}

extension Collective {
    public var isDistributed: Bool { size > 1 }

    public func sum(_ values: inout [Float]) throws { try values.withUnsafeMutableBufferPointer { try sum($0) } }
    public func sum(_ values: inout [Double]) throws { try values.withUnsafeMutableBufferPointer { try sum($0) } }
    public func maximum(_ values: inout [Double]) throws { try values.withUnsafeMutableBufferPointer { try maximum($0) } }

    /// True on every rank when `flag` is true on any rank (an interrupt seen by one rank stops all
    /// of them at the same step).
    public func any(_ flag: Bool) throws -> Bool {
        guard isDistributed else { return flag }
        var v = [flag ? 1.0 : 0.0]
        try maximum(&v)
        return v[0] > 0
    }

    /// Returns when every rank has called it.
    public func barrier() throws { _ = try any(false) }

    /// True when every rank passed the same value (compared as two exact 32-bit halves in doubles).
    public func allEqual(_ value: UInt64) throws -> Bool {
        guard isDistributed else { return true }
        let hi = Double(value >> 32), lo = Double(value & 0xffff_ffff)
        var v = [hi, lo, -hi, -lo]
        try maximum(&v)
        return v[0] == -v[2] && v[1] == -v[3]
    }
}

/// One process: every operation is the identity.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func maximum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { bytes }
}
