import Foundation
import Kernels
import TensorIO
import Quant

extension LlamaModel {
    /// Folds every LoRA adapter into its base weight, as PEFT's `merge_and_unload()` does for a
    /// dense fp32 layer: W (out, in) += scale · (B (out, r) · A (r, in)), computed as the product
    /// first and the scale after (peft/tuners/lora/layer.py `get_delta_weight`), then the adapter
    /// is removed. A 4-bit weight is dequantized first (`from: dequantized`: the weight the adapter
    /// was trained against). A head tied to the embedding is never adapted. Returns the merged
    /// module names.
    /// With `deferred` each merged weight is produced when the model is written (read from its
    /// checkpoint or dequantized, then merged), so saving holds one weight at a time; same bytes.
    @discardableResult
    public func mergeAdapters(deferred: Bool = false) throws -> [String] {
        var merged: [String] = []
        for m in linearModules {
            guard let ad = m.adapter else { continue }
            let O = m.outFeatures, I = m.inFeatures
            if deferred {
                let base = m.weight
                m.weight = .deferred(DeferredWeight { Self.merged(try LinearModule.fullPrecision(base), ad, out: O, in: I) })
            } else {
                m.weight = .dense(Self.merged(try m.fullPrecisionWeight(), ad, out: O, in: I))
            }
            m.adapter = nil
            merged.append(m.name)
        }
        return merged
    }

    /// weight (out, in) + scale · (B (out, r) · A (r, in)).
    static func merged(_ weight: [Float], _ ad: LoRAAdapter, out O: Int, in I: Int) -> [Float] {
        var w = weight
        let r = ad.rank
        var delta = [Float](repeating: 0, count: O * I)   // (out, in) = B · A
        ad.b.withUnsafeBufferPointer { bp in
            ad.a.withUnsafeBufferPointer { ap in
                delta.withUnsafeMutableBufferPointer { dp in
                    BLAS.sgemm(transposeA: false, transposeB: false, m: O, n: I, k: r, a: bp.baseAddress!, lda: r,
                               b: ap.baseAddress!, ldb: I, beta: 0, c: dp.baseAddress!, ldc: I)
                }
            }
        }
        for i in 0..<(O * I) { w[i] += delta[i] * ad.scale }
        return w
    }

    /// Replaces every 4-bit weight by its dequantized fp32 weight and drops the quantization config;
    /// with `deferred` each is dequantized when the model is written.
    public func dequantizeAll(deferred: Bool = false) {
        for m in linearModules {
            guard case .quantized(let q) = m.weight else { continue }
            m.weight = deferred ? .deferred(DeferredWeight { Quantizer.dequantize(q.weight) }) : .dense(Quantizer.dequantize(q.weight))
        }
        config.quantization = nil
    }

    /// The config's storage dtype, for a model about to be saved in `dtype`.
    public func setStorageDType(_ dtype: DType) {
        config.dtype = dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32"
    }
}
