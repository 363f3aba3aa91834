import XCTest
import PipelineCore
import Stages
@testable import CLI

/// The command line is declared once (CommandTable): the parser, `--help` and the errors read it.
/// These keep the help text as it was written and the table consistent with itself.
final class CommandTableTests: XCTestCase {
    func testHelpText() {
        XCTAssertEqual(CommandTable.usage, #"""
        usage: qlora-run [run] FILE [--set PATH=VALUE]... [--sweep PATH=V1,V2]... [--force STAGE] [--only STAGE] [--cache DIR] [--json]
               qlora-run plan FILE [options]          show each stage: cached or will run, and why
               qlora-run validate FILE [--schema S]   check a pipeline (or any YAML/JSON against schema S)
               qlora-run help [KIND]                  this text, or a stage kind's fields from the schema
               qlora-run cache ls|verify|gc [FILE] [--cache DIR] [--dry-run] [--keep N]
               qlora-run tokenize DIR [--decode]      stdin lines -> JSON token ids (or ids -> text)
               qlora-run chat render (DIR | --template FILE) [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now ISO-8601]
                                                      stdin {"messages": [...], "tools"?, ...} -> the model's chat template, exactly
               qlora-run generate (--model DIR [--adapter DIR] | PIPELINE [--stage NAME]) --prompt TEXT [--chat] [--max-new-tokens N]
                                  [--temperature T] [--top-k K] [--top-p P] [--seed S]
               qlora-run runs [FILE] [--json] [--csv] [--sort METRIC] [--last N]   the recorded runs: parameters that differ, metrics
               qlora-run runs diff A B | runs show ID | runs plot [FILE] -o curves.svg
               qlora-run reproduce ID                 run a recorded run again and compare its bytes
               qlora-run bench [--quick]              measure this machine (kernels, quantization, training)
               qlora-run --version | --help

        stage kinds: load_checkpoint, quantize, attach_adapters, train, save_adapter, evaluate, merge, export
        exit codes: 0 ok, 1 a stage failed, 2 invalid input, 130 interrupted
        """#)
    }

    /// Options a usage line names, e.g. `--set` and `-o` (not `-> text` or `ISO-8601`).
    func optionsNamed(in line: String) -> [String] {
        let regex = try? NSRegularExpression(pattern: #"(?<![A-Za-z0-9-])--?[a-z][a-z-]*"#)
        let range = NSRange(line.startIndex..., in: line)
        return (regex?.matches(in: line, range: range) ?? []).compactMap { Range($0.range, in: line).map { String(line[$0]) } }
    }

    func testUsageNamesOnlyOptionsItsCommandAccepts() {
        let declared = Set(CommandTable.options.map(\.name))
        XCTAssertEqual(declared.count, CommandTable.options.count, "an option is declared twice")
        var named = 0
        for command in CommandTable.commands {
            let accepted = Set(command.options + command.formOptions.values.joined())
            XCTAssertTrue(accepted.isSubset(of: declared), "\(command.name) accepts undeclared \(accepted.subtracting(declared).sorted())")
            for line in command.usage {
                for option in optionsNamed(in: CommandTable.text(line, under: command.name)) {
                    XCTAssertTrue(accepted.contains(option), "'\(command.name)' shows \(option) in --help but does not accept it")
                    named += 1
                }
            }
        }
        XCTAssertGreaterThan(named, 20)
        for option in optionsNamed(in: CommandTable.text(CommandTable.globalUsage, under: nil)) {
            XCTAssertTrue(declared.contains(option), option)
        }
    }

    func testParserFollowsTheTable() throws {
        // An option the table gives a command parses; one it does not is refused by name.
        XCTAssertEqual(try ArgumentParser.parse(["cache", "gc", "--keep", "2"]).keep, 2)
        XCTAssertThrowsError(try ArgumentParser.parse(["cache", "ls", "--keep", "2"])) { error in
            XCTAssertEqual(error as? ArgumentError, .optionNotAllowed(option: "--keep", command: "cache"))
        }
        XCTAssertThrowsError(try ArgumentParser.parse(["runs", "show", "x", "--csv"])) { error in
            XCTAssertEqual(error as? ArgumentError, .optionNotAllowed(option: "--csv", command: "runs"))
        }
        XCTAssertEqual(try ArgumentParser.parse(["generate", "p.yaml", "--stage", "train", "--prompt", "hi"]).command,
                       .generate({ var g = Invocation.GenerateOptions(); g.pipeline = "p.yaml"; g.stage = "train"; g.prompt = "hi"; return g }()))
        XCTAssertThrowsError(try ArgumentParser.parse(["generate", "--model", "m", "--stage", "train", "--prompt", "hi"]))
    }

    func testSuggestions() {
        XCTAssertEqual(CommandTable.suggestionOrder.sorted(), CommandTable.commands.map(\.name).sorted())
        func suggestion(_ word: String) -> String? {
            if case .unknownCommand(_, let s)? = Self.error([word]) { return s }
            return "not an unknown command"
        }
        XCTAssertEqual(suggestion("bens"), "bench")  // a tie with runs: the earlier name
        XCTAssertEqual(suggestion("rus"), "run")     // a tie with runs
        XCTAssertEqual(suggestion("valdate"), "validate")
        XCTAssertNil(suggestion("xyzzy"))
    }

    static func error(_ arguments: [String]) -> ArgumentError? {
        do { _ = try ArgumentParser.parse(arguments); return nil } catch { return error }
    }

    func testErrorsMapToExitCodes() {
        XCTAssertEqual(ExitCode(for: ArgumentError.missingValue(option: "--set")), .invalidInput)
        XCTAssertEqual(ExitCode(for: InputError(message: "stdin: invalid JSON")), .invalidInput)
        XCTAssertEqual(ExitCode(for: PipelineCommands.Invalid(diagnostics: [])), .invalidInput)
        XCTAssertEqual(ExitCode(for: CacheError.unknownStage("x")), .invalidInput)
        XCTAssertEqual(ExitCode(for: CacheError.unsafeDestination(field: "to", message: "..")), .invalidInput)
        XCTAssertEqual(ExitCode(for: CacheError.interrupted(stage: "train")), .interrupted)
        XCTAssertEqual(ExitCode(for: CacheError.stageFailed(stage: "train", message: "diverged")), .stageFailed)
        XCTAssertEqual(ExitCode(for: StageError.gateFailed("accuracy")), .stageFailed)
        XCTAssertEqual(ExitCode.allCases.map(\.summary), ["ok", "a stage failed", "invalid input", "interrupted"])
    }
}
