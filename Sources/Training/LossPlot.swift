import Foundation

/// A small deterministic SVG: training loss (left axis) and learning rate (right axis) per step, and
/// the validation loss (same axis as the training loss, dots joined) when validation ran.
public enum LossPlot {
    public static func svg(_ metrics: [StepMetrics], validations: [ValidationMetrics] = []) -> String {
        let W = 640.0, H = 360.0, left = 70.0, right = 70.0, top = 30.0, bottom = 50.0
        let pw = W - left - right, ph = H - top - bottom
        func f(_ x: Double) -> String { String(format: "%.2f", x) }
        func g(_ x: Double) -> String { String(format: "%.4g", x) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(W / 2))\" y=\"18\" text-anchor=\"middle\">Training loss and learning rate</text>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top + ph))\" x2=\"\(f(left + pw))\" y2=\"\(f(top + ph))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + ph))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(left + pw))\" y1=\"\(f(top))\" x2=\"\(f(left + pw))\" y2=\"\(f(top + ph))\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(H - 10))\" text-anchor=\"middle\">optimizer step</text>\n"
        s += "<text x=\"15\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 15 \(f(top + ph / 2)))\" fill=\"#1f77b4\">loss</text>\n"
        s += "<text x=\"\(f(W - 12))\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(90 \(f(W - 12)) \(f(top + ph / 2)))\" fill=\"#d62728\">learning rate</text>\n"
        guard let first = metrics.first, let last = metrics.last else { return s + "<text x=\"\(f(W / 2))\" y=\"\(f(H / 2))\" text-anchor=\"middle\">no steps</text>\n</svg>\n" }
        let x0 = Double(first.step), x1 = Double(max(last.step, first.step + 1))
        let evals = validations.filter { $0.loss.isFinite }
        let losses = metrics.map(\.loss) + evals.map(\.loss), lrs = metrics.map(\.learningRate)
        var l0 = losses.min()!, l1 = losses.max()!; if l1 - l0 < 1e-12 { l0 -= 0.5; l1 += 0.5 }
        var r0 = 0.0, r1 = lrs.max()!; if r1 - r0 < 1e-15 { r1 = r0 + 1 }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double, _ lo: Double, _ hi: Double) -> Double { top + ph - (y - lo) / (hi - lo) * ph }
        for k in 0...4 {
            let t = Double(k) / 4
            let yl = l0 + t * (l1 - l0), yr = r0 + t * (r1 - r0), xv = x0 + t * (x1 - x0)
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yl, l0, l1) + 4))\" text-anchor=\"end\">\(g(yl))</text>\n"
            s += "<text x=\"\(f(left + pw + 6))\" y=\"\(f(py(yr, r0, r1) + 4))\">\(g(yr))</text>\n"
            s += "<text x=\"\(f(px(xv)))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(g(xv))</text>\n"
        }
        let lossPts = metrics.map { "\(f(px(Double($0.step)))),\(f(py($0.loss, l0, l1)))" }.joined(separator: " ")
        let lrPts = metrics.map { "\(f(px(Double($0.step)))),\(f(py($0.learningRate, r0, r1)))" }.joined(separator: " ")
        s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(lossPts)\"/>\n"
        s += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\"\(lrPts)\"/>\n"
        if !evals.isEmpty {
            let evalPts = evals.map { "\(f(px(Double($0.step)))),\(f(py($0.loss, l0, l1)))" }
            s += "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"\(evalPts.joined(separator: " "))\"/>\n"
            for p in evalPts {
                let xy = p.split(separator: ",")
                s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"#ff7f0e\"/>\n"
            }
            s += "<text x=\"\(f(left + 8))\" y=\"\(f(top + 14))\" fill=\"#1f77b4\">training loss</text>\n"
            s += "<text x=\"\(f(left + 8))\" y=\"\(f(top + 30))\" fill=\"#ff7f0e\">validation loss</text>\n"
        }
        return s + "</svg>\n"
    }
}
