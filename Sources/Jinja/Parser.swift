/// Recursive-descent parser over the lexer's tokens, after jinja2/parser.py.
struct Parser {
    let name: String
    let tokens: [Token]
    var index = 0

    init(tokens: [Token], name: String) { self.tokens = tokens; self.name = name }

    // MARK: - Token helpers

    var current: Token { tokens[index] }
    var peek: Token { tokens[min(index + 1, tokens.count - 1)] }

    func error(_ message: String, at token: Token? = nil) -> TemplateError {
        .syntax(template: name, location: (token ?? current).location, message: message)
    }

    mutating func advance() -> Token { let t = tokens[index]; if index < tokens.count - 1 { index += 1 }; return t }

    func isName(_ word: String) -> Bool { if case .name(word) = current.kind { return true }; return false }
    func isOp(_ op: String) -> Bool { if case .op(op) = current.kind { return true }; return false }

    mutating func skipName(_ word: String) -> Bool { if isName(word) { _ = advance(); return true }; return false }
    mutating func skipOp(_ op: String) -> Bool { if isOp(op) { _ = advance(); return true }; return false }

    mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw error("expected '\(op)', found \(describe(current))") }
    }
    mutating func expectName(_ word: String) throws {
        guard skipName(word) else { throw error("expected '\(word)', found \(describe(current))") }
    }
    mutating func expectIdentifier() throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, found \(describe(current))") }
        _ = advance(); return n
    }
    mutating func expectBlockEnd() throws {
        guard case .blockEnd = current.kind else { throw error("expected end of statement block '%}', found \(describe(current))") }
        _ = advance()
    }

    func describe(_ token: Token) -> String {
        switch token.kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(PythonString.repr(s))"
        case .integer(let i): return "integer \(i)"
        case .float(let d): return "number \(d)"
        case .op(let o): return "'\(o)'"
        case .end: return "end of template"
        }
    }

    // MARK: - Statements

    mutating func parseTemplate() throws -> [Statement] {
        let (body, end) = try subparse(until: [])
        if let end { throw error("Encountered unknown tag '\(end)'.", at: tokens[index]) }
        return body
    }

    /// Statements up to a `{% word %}` with word in `ends` (the index then points at that word),
    /// or to the end of the template (only when `ends` is empty).
    mutating func subparse(until ends: Set<String>) throws -> ([Statement], String?) {
        var body: [Statement] = []
        while true {
            let token = current
            switch token.kind {
            case .end:
                if !ends.isEmpty {
                    let expected = ends.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw error("Unexpected end of template. Jinja was looking for the following tags: \(expected).")
                }
                return (body, nil)
            case .text(let text):
                _ = advance(); body.append(.text(text))
            case .variableBegin:
                _ = advance()
                let expression = try parseTuple()
                guard case .variableEnd = current.kind else { throw error("expected end of print statement '}}', found \(describe(current))") }
                _ = advance()
                body.append(.output(expression, token.location))
            case .blockBegin:
                _ = advance()
                guard case .name(let word) = current.kind else { throw error("tag name expected") }
                if ends.contains(word) { return (body, word) }
                if word.hasPrefix("end") || word == "else" || word == "elif" {
                    let expected = ends.isEmpty ? "" : " Jinja was looking for the following tags: " + ends.sorted().map { "'\($0)'" }.joined(separator: " or ") + "."
                    throw error("Encountered unknown tag '\(word)'.\(expected)")
                }
                body.append(try parseStatement(word, at: token.location))
            default:
                throw error("unexpected \(describe(token))")
            }
        }
    }

    mutating func parseStatement(_ word: String, at location: SourceLocation) throws -> Statement {
        _ = advance()
        switch word {
        case "if":
            var branches: [(Expression, [Statement])] = []
            var condition = try parseExpression(conditional: false)
            var otherwise: [Statement] = []
            while true {
                try expectBlockEnd()
                let (body, end) = try subparse(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                _ = advance()
                if end == "elif" { condition = try parseExpression(conditional: false); continue }
                if end == "else" {
                    try expectBlockEnd()
                    let (elseBody, _) = try subparse(until: ["endif"])
                    otherwise = elseBody
                    _ = advance()
                }
                try expectBlockEnd()
                return .conditional(branches, otherwise: otherwise, location)
            }
        case "for":
            let targets = try parseTargetNames()
            try expectName("in")
            let iterable = try parseTuple(conditional: false)
            var condition: Expression? = nil
            if skipName("if") { condition = try parseExpression() }
            if isName("recursive") { throw error("recursive loops are not supported") }
            try expectBlockEnd()
            let (body, end) = try subparse(until: ["endfor", "else"])
            _ = advance()
            var otherwise: [Statement] = []
            if end == "else" {
                try expectBlockEnd()
                (otherwise, _) = try subparse(until: ["endfor"])
                _ = advance()
            }
            try expectBlockEnd()
            return .loop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise, location)
        case "set":
            let first = try expectIdentifier()
            if skipOp(".") {
                let attribute = try expectIdentifier()
                try expectOp("=")
                let value = try parseTuple()
                try expectBlockEnd()
                return .assign(.attribute(first, attribute), value, location)
            }
            var names = [first]
            while skipOp(",") { names.append(try expectIdentifier()) }
            if skipOp("=") {
                let value = try parseTuple()
                try expectBlockEnd()
                return .assign(.names(names), value, location)
            }
            guard names.count == 1 else { throw error("expected '='") }
            try expectBlockEnd()
            let (body, _) = try subparse(until: ["endset"])
            _ = advance(); try expectBlockEnd()
            return .assignBlock(first, body, location)
        case "macro":
            let macroName = try expectIdentifier()
            try expectOp("(")
            var parameters: [(String, Expression?)] = []
            while !isOp(")") {
                if !parameters.isEmpty { try expectOp(",") }
                if isOp(")") { break }
                let parameter = try expectIdentifier()
                parameters.append((parameter, skipOp("=") ? try parseExpression() : nil))
            }
            try expectOp(")")
            try expectBlockEnd()
            let (body, _) = try subparse(until: ["endmacro"])
            _ = advance()
            if case .name = current.kind { _ = advance() }   // {% endmacro name %}
            try expectBlockEnd()
            return .macro(name: macroName, parameters: parameters, body: body, location)
        case "filter":
            var filters: [(String, Arguments)] = []
            repeat {
                let filterName = try parseDottedName()
                filters.append((filterName, isOp("(") ? try parseCallArguments() : Arguments()))
            } while skipOp("|")
            try expectBlockEnd()
            let (body, _) = try subparse(until: ["endfilter"])
            _ = advance(); try expectBlockEnd()
            return .filterBlock(filters, body, location)
        case "block", "generation":
            if word == "block" { _ = try expectIdentifier() }
            try expectBlockEnd()
            let end = word == "block" ? "endblock" : "endgeneration"
            let (body, _) = try subparse(until: [end])
            _ = advance()
            if case .name = current.kind { _ = advance() }
            try expectBlockEnd()
            return .block(body)
        case "break", "continue":
            try expectBlockEnd()
            return word == "break" ? .breakLoop : .continueLoop
        default:
            throw error("Encountered unknown tag '\(word)'.", at: tokens[index - 1])
        }
    }

    mutating func parseTargetNames() throws -> [String] {
        let parenthesised = skipOp("(")
        var names = [try expectIdentifier()]
        while skipOp(",") {
            if case .name = current.kind { names.append(try expectIdentifier()) } else { break }
        }
        if parenthesised { try expectOp(")") }
        return names
    }

    mutating func parseDottedName() throws -> String {
        var n = try expectIdentifier()
        while skipOp(".") { n += "." + (try expectIdentifier()) }
        return n
    }

    // MARK: - Expressions

    /// An expression, or a comma-separated tuple of them (`{% set a, b = 1, 2 %}`).
    mutating func parseTuple(conditional: Bool = true) throws -> Expression {
        let first = try parseExpression(conditional: conditional)
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if case .blockEnd = current.kind { break }
            if case .variableEnd = current.kind { break }
            if isOp(")") { break }   // `(x,)`: a one-element tuple
            items.append(try parseExpression(conditional: conditional))
        }
        return .tuple(items)
    }

    mutating func parseExpression(conditional: Bool = true) throws -> Expression {
        guard conditional else { return try parseOr() }
        var expression = try parseOr()
        while skipName("if") {
            let condition = try parseOr()
            let otherwise = skipName("else") ? try parseExpression() : nil
            expression = .conditional(then: expression, condition: condition, otherwise: otherwise)
        }
        return expression
    }

    mutating func parseOr() throws -> Expression {
        var left = try parseAnd()
        while skipName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws -> Expression {
        var left = try parseNot()
        while skipName("and") { left = .and(left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws -> Expression {
        if skipName("not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expression {
        let left = try parseMath1()
        var operations: [(String, Expression)] = []
        while true {
            if case .op(let op) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                _ = advance(); operations.append((op, try parseMath1()))
            } else if skipName("in") {
                operations.append(("in", try parseMath1()))
            } else if isName("not"), case .name("in") = peek.kind {
                _ = advance(); _ = advance()
                operations.append(("not in", try parseMath1()))
            } else { break }
        }
        return operations.isEmpty ? left : .compare(left, operations)
    }

    mutating func parseMath1() throws -> Expression {
        var left = try parseConcat()
        while case .op(let op) = current.kind, op == "+" || op == "-" {
            _ = advance(); left = .binary(op, left, try parseConcat())
        }
        return left
    }

    mutating func parseConcat() throws -> Expression {
        var left = try parseMath2()
        while skipOp("~") { left = .binary("~", left, try parseMath2()) }
        return left
    }

    mutating func parseMath2() throws -> Expression {
        var left = try parsePow()
        while case .op(let op) = current.kind, ["*", "/", "//", "%"].contains(op) {
            _ = advance(); left = .binary(op, left, try parsePow())
        }
        return left
    }

    mutating func parsePow() throws -> Expression {
        var left = try parseUnary()
        while skipOp("**") { left = .binary("**", left, try parseUnary()) }
        return left
    }

    mutating func parseUnary(filters: Bool = true) throws -> Expression {
        var node: Expression
        if skipOp("-") { node = .negate(try parseUnary(filters: false)) }
        else if skipOp("+") { node = try parseUnary(filters: false) }
        else { node = try parsePrimary() }
        node = try parsePostfix(node)
        if filters { node = try parseFilters(node) }
        return node
    }

    mutating func parsePrimary() throws -> Expression {
        let token = current
        switch token.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .string(var s):
            _ = advance()
            while case .string(let more) = current.kind { s += more; _ = advance() }   // "a" "b" concatenate
            return .literal(.string(s))
        case .integer(let i): _ = advance(); return .literal(.int(i))
        case .float(let d): _ = advance(); return .literal(.double(d))
        case .op("("):
            _ = advance()
            if skipOp(")") { return .tuple([]) }
            let inner = try parseTuple()
            try expectOp(")")
            return inner
        case .op("["):
            _ = advance()
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(","); if isOp("]") { break } }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            _ = advance()
            var pairs: [(Expression, Expression)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(","); if isOp("}") { break } }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw error("unexpected \(describe(token))")
        }
    }

    mutating func parsePostfix(_ start: Expression) throws -> Expression {
        var node = start
        while true {
            if skipOp(".") {
                switch current.kind {
                case .name(let n): _ = advance(); node = .attribute(node, n)
                case .integer(let i): _ = advance(); node = .item(node, .literal(.int(i)))
                default: throw error("expected name or number after '.'")
                }
            } else if isOp("[") {
                _ = advance()
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    mutating func parseSubscript(_ target: Expression) throws -> Expression {
        var parts: [Expression?] = []
        var isSlice = false
        var part: Expression? = nil
        while true {
            if isOp(":") { _ = advance(); isSlice = true; parts.append(part); part = nil; continue }
            if isOp("]") { _ = advance(); parts.append(part); break }
            if part != nil { throw error("expected ']' or ':', found \(describe(current))") }
            part = try parseExpression()
        }
        if !isSlice {
            guard let index = parts.first ?? nil else { throw error("expected an index inside '[]'") }
            return .item(target, index)
        }
        guard parts.count <= 3 else { throw error("a slice takes at most start:stop:step") }
        let start = parts[0], stop = parts.count > 1 ? parts[1] : nil, step = parts.count > 2 ? parts[2] : nil
        return .slice(target, start: start, stop: stop, step: step)
    }

    mutating func parseCallArguments() throws -> Arguments {
        try expectOp("(")
        var arguments = Arguments()
        while !isOp(")") {
            if !arguments.positional.isEmpty || !arguments.keywords.isEmpty {
                try expectOp(",")
                if isOp(")") { break }
            }
            if case .name(let n) = current.kind, case .op("=") = peek.kind {
                _ = advance(); _ = advance()
                arguments.keywords.append((n, try parseExpression()))
            } else {
                if !arguments.keywords.isEmpty { throw error("a positional argument follows a keyword argument") }
                arguments.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return arguments
    }

    mutating func parseFilters(_ start: Expression) throws -> Expression {
        var node = start
        while true {
            if skipOp("|") {
                let filterName = try parseDottedName()
                node = .filter(node, name: filterName, isOp("(") ? try parseCallArguments() : Arguments())
            } else if skipName("is") {
                let negated = skipName("not")
                let testName = try parseDottedName()
                var arguments = Arguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsPrimary, !isName("else"), !isName("or"), !isName("and") {
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                node = .test(node, name: testName, arguments, negated: negated)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    private var startsPrimary: Bool {
        switch current.kind {
        case .name, .string, .integer, .float, .op("["), .op("{"): return true
        default: return false
        }
    }
}
