import XCTest
@testable import CLI

final class ArgumentParserTests: XCTestCase {
    func parse(_ s: String) throws -> Invocation { try ArgumentParser.parse(s.split(separator: " ").map(String.init)) }
    func error(_ s: String) -> String {
        do { _ = try parse(s); return "no error" } catch { return error.localizedDescription }
    }

    func testRunForms() throws {
        XCTAssertEqual(try parse("run p.yaml").command, .run(file: "p.yaml"))
        XCTAssertEqual(try parse("pipelines/toy.yaml").command, .run(file: "pipelines/toy.yaml"))
        let i = try parse("run p.yaml --set stages.train.lr=1e-4 --set seed=3 --force train --only quantize --cache /tmp/c")
        XCTAssertEqual(i.sets, ["stages.train.lr=1e-4", "seed=3"])
        XCTAssertEqual(i.force, ["train"])
        XCTAssertEqual(i.only, ["quantize"])
        XCTAssertEqual(i.cacheDirectory, "/tmp/c")
        XCTAssertEqual(try parse("plan p.yaml --set=a.b=1").sets, ["a.b=1"])
    }

    func testOtherCommands() throws {
        XCTAssertEqual(try parse("validate x.yaml --schema s.json").command, .validate(file: "x.yaml", schema: "s.json"))
        XCTAssertEqual(try parse("help train").command, .help(kind: "train"))
        XCTAssertEqual(try parse("help").command, .help(kind: nil))
        XCTAssertEqual(try parse("").command, .help(kind: nil))
        XCTAssertEqual(try parse("--version").command, .version)
        XCTAssertEqual(try parse("tokenize dir --decode").command, .tokenize(directory: "dir", decode: true))
        XCTAssertEqual(try parse("bench --quick").command, .bench(quick: true))
        let gc = try parse("cache gc p.yaml --dry-run --keep 2")
        XCTAssertEqual(gc.command, .cache(.gc, file: "p.yaml"))
        XCTAssertTrue(gc.dryRun)
        XCTAssertEqual(gc.keep, 2)
        guard case .generate(let g) = try parse("generate --model m --adapter a --prompt hi --chat --max-new-tokens 5 --temperature 0.7 --top-k 3").command
        else { return XCTFail("not generate") }
        XCTAssertEqual([g.model, g.adapter, g.prompt], ["m", "a", "hi"])
        XCTAssertEqual(g.maxNewTokens, 5); XCTAssertEqual(g.temperature, 0.7); XCTAssertEqual(g.topK, 3); XCTAssertTrue(g.chat)
    }

    func testErrors() {
        XCTAssertEqual(error("plna p.yaml"), "unknown command 'plna'; did you mean 'plan'?")
        XCTAssertEqual(error("run p.yaml --frce train"), "unknown option '--frce'; did you mean '--force'?")
        XCTAssertEqual(error("run p.yaml --set"), "option '--set' needs a value")
        XCTAssertEqual(error("run p.yaml --set lr"), "option '--set': expected PATH=VALUE, e.g. stages.train.lr=1e-4, found 'lr'")
        XCTAssertEqual(error("run"), "'run' needs a pipeline FILE; run 'qlora-run --help' for usage")
        XCTAssertEqual(error("plan a.yaml b.yaml"), "'plan' takes no argument 'b.yaml'")
        XCTAssertEqual(error("cache purge"), "option 'cache': expected ls, verify or gc, found 'purge'")
        XCTAssertEqual(error("cache ls --dry-run"), "option '--dry-run' does not apply to 'cache'")
        XCTAssertEqual(error("generate --model m --prompt x --max-new-tokens 0"), "option '--max-new-tokens': expected an integer >= 1, found '0'")
        XCTAssertEqual(error("generate --prompt x"), "'generate' needs --model DIR or a pipeline FILE; run 'qlora-run --help' for usage")
        XCTAssertEqual(error("bench --decode"), "option '--decode' does not apply to 'bench'")
    }

    func testExitCodes() {
        XCTAssertEqual(ExitCode.allCases.map(\.rawValue), [0, 1, 2, 130])
    }
}
