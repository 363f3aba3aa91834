import XCTest
@testable import Stages
import Training

/// The terminal's live training bar (the CLI redraws it in place only on a TTY) and the log line
/// every log_every steps: the same fields, with a bar or with `step `.
final class ProgressBarTests: XCTestCase {
    func progress(_ step: Int, _ total: Int, epoch: Int, loss: Double, lr: Double, tokensPerSecond: Double, eta: Double) -> TrainingProgress {
        TrainingProgress(step: step, totalSteps: total, epoch: epoch, loss: loss, learningRate: lr, tokensPerSecond: tokensPerSecond, etaSeconds: eta)
    }

    func testBarFormatting() {
        let p = progress(240, 750, epoch: 1, loss: 2.345_64, lr: 2e-4, tokensPerSecond: 1234.4, eta: 83.9)
        XCTAssertEqual(ProgressBar.line(p), "[######..............] 240/750 · epoch 1 · loss 2.3456 · lr 2.00e-04 · 1234 tok/s · ETA 1:23")
        XCTAssertEqual(p.line, "step 240/750 · epoch 1 · loss 2.3456 · lr 2.00e-04 · 1234 tok/s · ETA 1:23")
        XCTAssertEqual(ProgressBar.line(progress(750, 750, epoch: 3, loss: 0.5, lr: 0, tokensPerSecond: 0, eta: .nan), width: 10),
                       "[##########] 750/750 · epoch 3 · loss 0.5000 · lr 0.00e+00 · 0 tok/s · ETA 0:00")
        let odd = progress(0, 0, epoch: 1, loss: 1, lr: 1e-3, tokensPerSecond: 10, eta: -5)
        XCTAssertEqual(ProgressBar.line(odd, width: 4), "[....] 0/0 · epoch 1 · loss 1.0000 · lr 1.00e-03 · 10 tok/s · ETA 0:00")
        XCTAssertEqual(odd.line, "step 0/0 · epoch 1 · loss 1.0000 · lr 1.00e-03 · 10 tok/s · ETA 0:00")
    }
}
