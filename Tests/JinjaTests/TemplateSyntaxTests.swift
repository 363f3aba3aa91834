import XCTest
import Jinja

/// Syntax errors name the template file and line:column; runtime errors keep Jinja2's message
/// and add where the failing tag is.
final class TemplateSyntaxTests: XCTestCase {
    func syntaxError(_ source: String) -> String? {
        do { _ = try Template(source, name: "chat_template.jinja"); return nil } catch {
            return (error as? LocalizedError)?.errorDescription
        }
    }

    func testSyntaxErrorsNameTheFileLineAndColumn() {
        XCTAssertEqual(syntaxError("{% for m in messages %}\n  {{ m.content }}\n"),
                       "chat_template.jinja:2:18: Unexpected end of template. Jinja was looking for the following tags: 'else' or 'endfor'.")
        XCTAssertEqual(syntaxError("line one\n{{ 1 + }}"), "chat_template.jinja:2:8: unexpected '}}'")
        XCTAssertEqual(syntaxError("{% if x %}a{% endfor %}"),
                       "chat_template.jinja:1:15: Encountered unknown tag 'endfor'. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'.")
        XCTAssertEqual(syntaxError("ok\n\n   {% include 'other.jinja' %}"), "chat_template.jinja:3:7: Encountered unknown tag 'include'.")
        XCTAssertEqual(syntaxError("{{ 'unterminated }}"), "chat_template.jinja:1:4: unexpected end of string literal")
        XCTAssertEqual(syntaxError("{# never closed"), "chat_template.jinja:1:1: missing end of comment tag")
        XCTAssertEqual(syntaxError("{{ a ] }}"), "chat_template.jinja:1:6: unexpected ']'")
        XCTAssertEqual(syntaxError("{{ a $ b }}"), "chat_template.jinja:1:6: unexpected character '$'")
    }

    func testRuntimeErrorsKeepJinjaMessagesAndAddTheTag() throws {
        let template = try Template("{% for m in messages %}\n{{ m.role + m.content }}\n{% endfor %}", name: "t.jinja")
        let messages: Value = .array([.dict(Dict([("role", .string("user"))]))])
        XCTAssertThrowsError(try template.render(["messages": messages])) { error in
            let e = error as? TemplateError
            XCTAssertEqual(e?.message, "'dict object' has no attribute 'content'")
            XCTAssertEqual(e?.kind, "UndefinedError")
            XCTAssertEqual(e?.errorDescription, "t.jinja:2:1: 'dict object' has no attribute 'content'")
        }
        let refusing = try Template("{{ raise_exception('roles must alternate') }}", name: "t.jinja")
        XCTAssertThrowsError(try refusing.render([:])) { error in
            XCTAssertEqual((error as? TemplateError)?.message, "roles must alternate")
            XCTAssertEqual((error as? TemplateError)?.errorDescription, "t.jinja:1:1: the chat template refused this conversation: roles must alternate")
        }
        XCTAssertThrowsError(try Template("{{ 1 + 'a' }}").render([:])) { error in
            XCTAssertEqual((error as? TemplateError)?.message, "unsupported operand type(s) for +: 'int' and 'str'")
        }
        XCTAssertThrowsError(try Template("{{ 'a' + 1 }}").render([:])) { error in
            XCTAssertEqual((error as? TemplateError)?.message, "can only concatenate str (not \"int\") to str")
        }
        XCTAssertThrowsError(try Template("{{ nothing.here }}").render([:])) { error in
            XCTAssertEqual((error as? TemplateError)?.message, "'nothing' is undefined")
        }
    }

    func testWhitespaceRulesOfTransformersEnvironment() throws {
        // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
        XCTAssertEqual(try Template("{% if true %}\n  yes\n  {% endif %}\nend").render([:]), "  yes\nend")
        // not after an expression, and not before one
        XCTAssertEqual(try Template("  {{ 'x' }}\n{{ 'y' }}").render([:]), "  x\ny")
        // {%+ keeps the indentation, +%} keeps the newline
        XCTAssertEqual(try Template("  {%+ if true +%}\nz{% endif %}").render([:]), "  \nz")
        // one trailing newline of the template is dropped (keep_trailing_newline=False)
        XCTAssertEqual(try Template("a\n\n").render([:]), "a\n")
        XCTAssertEqual(try Template("a\r\nb").render([:]), "a\nb")
    }
}

/// Tuples render as Python writes them (repr), and otherwise behave like lists.
final class TupleTests: XCTestCase {
    func render(_ source: String) throws -> String { try Template(source).render([:]) }

    func testTupleReprAndBehaviour() throws {
        XCTAssertEqual(try render("{{ ('a', 1) }}"), "('a', 1)")
        XCTAssertEqual(try render("{{ ('a',) }} {{ () }} {{ [('a', 1)] }}"), "('a',) () [('a', 1)]")
        XCTAssertEqual(try render("{% set t = 1, 2 %}{{ t }} {{ t|length }} {{ t[1] }} {{ t[:1] }} {{ 2 in t }}"), "(1, 2) 2 2 (1,) True")
        XCTAssertEqual(try render("{{ {'k': 1}.items()|list }} {{ {'b': 2, 'a': 1}|dictsort }}"), "[('k', 1)] [('a', 1), ('b', 2)]")
        XCTAssertEqual(try render("{% for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %}"), "x=1")
        XCTAssertEqual(try render("{{ (1, 2) == [1, 2] }} {{ (1, 2) == (1, 2) }} {{ (1,) + (2,) }} {{ (1, 2)|tojson }}"), "False True (1, 2) [1, 2]")
        XCTAssertEqual(try render("{{ 'abc'.startswith(('x', 'a')) }}"), "True")
    }
}
