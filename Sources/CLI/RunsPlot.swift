import Foundation

/// `runs plot`: training (solid) and validation (dashed, dots) loss curves of several runs in one SVG,
/// one colour per run, with a legend. Read from each run's metrics.jsonl.
enum RunsPlot {
    struct Series {
        var label: String
        var train: [(step: Double, loss: Double)] = []
        var validation: [(step: Double, loss: Double)] = []
        init(label: String, metricsJSONL: String) {
            self.label = label
            for line in metricsJSONL.split(separator: "\n") {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let step = (object["step"] as? NSNumber)?.doubleValue else { continue }
                if let loss = (object["loss"] as? NSNumber)?.doubleValue, loss.isFinite { train.append((step, loss)) }
                if let loss = (object["eval_loss"] as? NSNumber)?.doubleValue, loss.isFinite { validation.append((step, loss)) }
            }
        }
    }

    // Colour-blind-safe palette (Okabe–Ito), cycled.
    static let colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]

    static func svg(_ series: [Series], width: Double = 720, height: Double = 420) -> String {
        let left = 60.0, right = 200.0, top = 20.0, bottom = 40.0
        let plotW = width - left - right, plotH = height - top - bottom
        let points = series.flatMap { $0.train + $0.validation }
        let maxStep = max(1, points.map(\.step).max() ?? 1)
        var lo = points.map(\.loss).min() ?? 0, hi = points.map(\.loss).max() ?? 1
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        // Losses spanning more than a decade (a first step near ln V, a fitted run near 0.05) on a
        // log axis, so the end of training, where runs differ, is not squashed against the floor.
        let logarithmic = lo > 0 && hi / lo > 10
        func scale(_ l: Double) -> Double { logarithmic ? Foundation.log(l) : l }
        func y(_ l: Double) -> Double { top + plotH * (1 - (scale(l) - scale(lo)) / (scale(hi) - scale(lo))) }
        func x(_ s: Double) -> Double { left + plotW * s / maxStep }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>\n"
        for i in 0...4 {
            let l = logarithmic ? Foundation.exp(scale(lo) + (scale(hi) - scale(lo)) * Double(i) / 4) : lo + (hi - lo) * Double(i) / 4
            let s = maxStep * Double(i) / 4
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(l) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", l))</text>\n"
            out += "<text x=\"\(f(x(s)))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(Int(s.rounded()))</text>\n"
        }
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">step</text>\n"
        out += "<text x=\"14\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(top + plotH / 2)))\">loss\(logarithmic ? " (log scale)" : "")</text>\n"
        for (i, s) in series.enumerated() {
            let colour = colours[i % colours.count]
            if !s.train.isEmpty {
                // At most ~300 vertices per curve: a long run would otherwise make a megabyte of SVG.
                let stride = max(1, s.train.count / 300)
                let train = s.train.indices.filter { $0 % stride == 0 || $0 == s.train.count - 1 }.map { s.train[$0] }
                out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"" + train.map { "\(f(x($0.step))),\(f(y($0.loss)))" }.joined(separator: " ") + "\"/>\n"
            }
            if !s.validation.isEmpty {
                out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" points=\"" + s.validation.map { "\(f(x($0.step))),\(f(y($0.loss)))" }.joined(separator: " ") + "\"/>\n"
                for p in s.validation { out += "<circle cx=\"\(f(x(p.step)))\" cy=\"\(f(y(p.loss)))\" r=\"2.5\" fill=\"\(colour)\"/>\n" }
            }
            let ly = top + 14 + Double(i) * 18
            out += "<line x1=\"\(f(left + plotW + 14))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plotW + 34))\" y2=\"\(f(ly - 4))\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(left + plotW + 40))\" y=\"\(f(ly))\">\(escaped(s.label))</text>\n"
        }
        let ly = top + 14 + Double(series.count) * 18 + 6
        out += "<text x=\"\(f(left + plotW + 14))\" y=\"\(f(ly))\" fill=\"#555\">solid: train · dashed: validation</text>\n"
        return out + "</svg>\n"
    }

    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
