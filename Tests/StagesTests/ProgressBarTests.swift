import XCTest
@testable import Stages

/// The terminal's live training bar (the CLI redraws it in place only on a TTY).
final class ProgressBarTests: XCTestCase {
    func testBarFormatting() {
        XCTAssertEqual(ProgressBar.line(step: 240, total: 750, epoch: 1, loss: 2.345_64, learningRate: 2e-4, tokensPerSecond: 1234.4, etaSeconds: 83.9),
                       "[######..............] 240/750 · epoch 1 · loss 2.3456 · lr 2.00e-04 · 1234 tok/s · ETA 1:23")
        XCTAssertEqual(ProgressBar.line(step: 750, total: 750, epoch: 3, loss: 0.5, learningRate: 0, tokensPerSecond: 0, etaSeconds: .nan, width: 10),
                       "[##########] 750/750 · epoch 3 · loss 0.5000 · lr 0.00e+00 · 0 tok/s · ETA 0:00")
        XCTAssertEqual(ProgressBar.line(step: 0, total: 0, epoch: 1, loss: 1, learningRate: 1e-3, tokensPerSecond: 10, etaSeconds: -5, width: 4),
                       "[....] 0/0 · epoch 1 · loss 1.0000 · lr 1.00e-03 · 10 tok/s · ETA 0:00")
    }
}
