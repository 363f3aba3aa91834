import XCTest
import Foundation
@testable import Training

final class PEFTConfigEscapingTests: XCTestCase {
    /// adapter_config.json strings are escaped as Python's json.dumps writes them (PEFT's file):
    /// short escapes, other controls and non-ASCII as \uXXXX, astral characters as surrogate pairs.
    func testConfigStringsAreEscapedAsPythonWritesThem() throws {
        let path = "models/ünï\t😀\"q\"\u{7f}\\x\u{01}"
        let text = PEFTAdapter.configJSON(rank: 8, alpha: 16, dropout: 0, rslora: false, targets: ["q_proj"], baseModel: path)
        XCTAssertTrue(text.contains(#""base_model_name_or_path": "models/\u00fcn\u00ef\t\ud83d\ude00\"q\""# + "\u{7f}" + #"\\x\u0001","#), text)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(parsed["base_model_name_or_path"] as? String, path)
    }
}
