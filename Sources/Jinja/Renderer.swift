/// Variables visible at a point of the template. A `for` body gets a fresh scope per
/// iteration (Jinja2: assignments inside a loop do not leak out of it, which is why templates
/// use `namespace()`); `if` does not open a scope.
final class Scope {
    var variables: [String: Value] = [:]
    let parent: Scope?
    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

enum ControlFlow { case normal, breakLoop, continueLoop }

struct Renderer {
    let templateName: String

    func render(_ statements: [Statement], in scope: Scope, into out: inout String) throws -> ControlFlow {
        for statement in statements {
            let flow = try execute(statement, in: scope, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    /// Runs `body`, attaching the tag's location to an error that has none yet.
    func located<T>(_ location: SourceLocation, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as TemplateError {
            if case .located = error { throw error }
            if case .syntax = error { throw error }
            throw TemplateError.located(template: templateName, location: location, error: error)
        }
    }

    func execute(_ statement: Statement, in scope: Scope, into out: inout String) throws -> ControlFlow {
        switch statement {
        case .text(let text):
            out += text
        case .output(let expression, let location):
            out += try located(location) { try evaluate(expression, in: scope).text }
        case .conditional(let branches, let otherwise, let location):
            for (condition, body) in branches where try located(location, { try evaluate(condition, in: scope).truthy }) {
                return try render(body, in: scope, into: &out)
            }
            return try render(otherwise, in: scope, into: &out)
        case .loop(let targets, let iterable, let condition, let body, let otherwise, let location):
            return try runLoop(targets: targets, iterable: iterable, condition: condition, body: body,
                               otherwise: otherwise, location: location, scope: scope, out: &out)
        case .assign(let target, let expression, let location):
            try located(location) {
                let value = try evaluate(expression, in: scope)
                switch target {
                case .names(let names):
                    try bind(value, to: names, in: scope)
                case .attribute(let objectName, let attribute):
                    guard case .namespace(let namespace)? = scope.lookup(objectName) else {
                        throw TemplateError.type("cannot assign attribute on non-namespace object")
                    }
                    namespace.attributes[attribute] = value
                }
            }
        case .assignBlock(let name, let body, _):
            var captured = ""
            _ = try render(body, in: scope, into: &captured)
            scope.variables[name] = .string(captured)
        case .macro(let name, let parameters, let body, let location):
            scope.variables[name] = .function(makeMacro(name, parameters, body, location, closure: scope))
        case .filterBlock(let filters, let body, let location):
            var captured = ""
            _ = try render(body, in: scope, into: &captured)
            var value = Value.string(captured)
            try located(location) {
                for (name, arguments) in filters {
                    value = try Builtins.filter(name, value, try evaluate(arguments, in: scope), renderer: self)
                }
            }
            out += value.text
        case .block(let body):
            return try render(body, in: scope, into: &out)
        case .breakLoop: return .breakLoop
        case .continueLoop: return .continueLoop
        }
        return .normal
    }

    func runLoop(targets: [String], iterable: Expression, condition: Expression?, body: [Statement], otherwise: [Statement],
                 location: SourceLocation, scope: Scope, out: inout String) throws -> ControlFlow {
        var items = try located(location) { try Builtins.iterate(try evaluate(iterable, in: scope)) }
        func bind(_ item: Value, into s: Scope) throws { try self.bind(item, to: targets, in: s) }
        if let condition {   // `for x in xs if cond`: filtered before `loop` is computed
            items = try items.filter { item in
                let s = Scope(parent: scope)
                try located(location) { try bind(item, into: s) }
                return try located(location) { try evaluate(condition, in: s).truthy }
            }
        }
        if items.isEmpty { return try render(otherwise, in: scope, into: &out) }
        let count = items.count
        for (i, item) in items.enumerated() {
            let s = Scope(parent: scope)
            try located(location) { try bind(item, into: s) }
            var loop = Dict()
            loop["index"] = .int(i + 1); loop["index0"] = .int(i)
            loop["revindex"] = .int(count - i); loop["revindex0"] = .int(count - i - 1)
            loop["first"] = .bool(i == 0); loop["last"] = .bool(i == count - 1)
            loop["length"] = .int(count); loop["depth"] = .int(1); loop["depth0"] = .int(0)
            loop["previtem"] = i > 0 ? items[i - 1] : .undefined(message: "there is no previous item")
            loop["nextitem"] = i + 1 < count ? items[i + 1] : .undefined(message: "there is no next item")
            loop["cycle"] = .function(Function("cycle") { args, _ in
                guard !args.isEmpty else { throw TemplateError.type("no items for cycling given") }
                return args[i % args.count]
            })
            s.variables["loop"] = .dict(loop)
            let flow = try render(body, in: s, into: &out)
            if flow == .breakLoop { break }
        }
        return .normal
    }

    /// `x = value`, or Python's tuple unpacking for `a, b = value` (in `set` and `for`).
    func bind(_ value: Value, to names: [String], in scope: Scope) throws {
        if names.count == 1 { scope.variables[names[0]] = value; return }
        let parts = try Builtins.iterate(value)
        guard parts.count == names.count else {
            throw TemplateError.type(parts.count < names.count
                ? "not enough values to unpack (expected \(names.count), got \(parts.count))"
                : "too many values to unpack (expected \(names.count))")
        }
        for (n, v) in zip(names, parts) { scope.variables[n] = v }
    }

    func makeMacro(_ name: String, _ parameters: [(String, Expression?)], _ body: [Statement], _ location: SourceLocation, closure: Scope) -> Function {
        Function(name) { positional, keywords in
            let s = Scope(parent: closure)
            guard positional.count <= parameters.count else {
                throw TemplateError.type("macro '\(name)' takes not more than \(parameters.count) argument(s)")
            }
            for (i, (parameter, defaultValue)) in parameters.enumerated() {
                if i < positional.count { s.variables[parameter] = positional[i] }
                else if let kw = keywords.first(where: { $0.0 == parameter }) { s.variables[parameter] = kw.1 }
                else if let defaultValue { s.variables[parameter] = try self.evaluate(defaultValue, in: s) }
                else { s.variables[parameter] = .undefined(message: "parameter '\(parameter)' was not provided") }
            }
            if let unknown = keywords.first(where: { kw in !parameters.contains { $0.0 == kw.0 } }) {
                throw TemplateError.type("macro '\(name)' takes no keyword argument '\(unknown.0)'")
            }
            var out = ""
            _ = try self.render(body, in: s, into: &out)
            return .string(out)
        }
    }

    func evaluate(_ arguments: Arguments, in scope: Scope) throws -> ([Value], [(String, Value)]) {
        (try arguments.positional.map { try evaluate($0, in: scope) },
         try arguments.keywords.map { ($0.0, try evaluate($0.1, in: scope)) })
    }

    func evaluate(_ expression: Expression, in scope: Scope) throws -> Value {
        switch expression {
        case .literal(let v): return v
        case .name(let n): return scope.lookup(n) ?? .undefinedName(n)
        case .list(let items): return .array(try items.map { try evaluate($0, in: scope) })
        case .tuple(let items): return .tuple(try items.map { try evaluate($0, in: scope) })
        case .dict(let pairs):
            var d = Dict()
            for (k, v) in pairs {
                let key = try evaluate(k, in: scope)
                guard case .string(let s) = key else { throw TemplateError.type("dictionary keys must be strings, found \(key.typeName)") }
                d[s] = try evaluate(v, in: scope)
            }
            return .dict(d)
        case .attribute(let object, let name):
            return try Builtins.attribute(try evaluate(object, in: scope), name)
        case .item(let object, let index):
            return try Builtins.item(try evaluate(object, in: scope), try evaluate(index, in: scope))
        case .slice(let object, let start, let stop, let step):
            return try Builtins.slice(try evaluate(object, in: scope),
                                      try start.map { try evaluate($0, in: scope) },
                                      try stop.map { try evaluate($0, in: scope) },
                                      try step.map { try evaluate($0, in: scope) })
        case .call(let callee, let arguments):
            let f = try evaluate(callee, in: scope).defined()
            guard case .function(let function) = f else { throw TemplateError.type("'\(f.typeName)' object is not callable") }
            let (positional, keywords) = try evaluate(arguments, in: scope)
            return try function.call(positional, keywords)
        case .filter(let value, let name, let arguments):
            let (positional, keywords) = try evaluate(arguments, in: scope)
            return try Builtins.filter(name, try evaluate(value, in: scope), (positional, keywords), renderer: self)
        case .test(let value, let name, let arguments, let negated):
            let (positional, _) = try evaluate(arguments, in: scope)
            let result = try Builtins.test(name, try evaluate(value, in: scope), positional)
            return .bool(result != negated)
        case .not(let e): return .bool(!(try evaluate(e, in: scope).truthy))
        case .negate(let e):
            switch try evaluate(e, in: scope).defined() {
            case .int(let i): return .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            case let v: throw TemplateError.type("bad operand type for unary -: '\(v.typeName)'")
            }
        case .binary(let op, let l, let r):
            return try Builtins.binary(op, try evaluate(l, in: scope), try evaluate(r, in: scope))
        case .and(let l, let r):
            let left = try evaluate(l, in: scope)
            return left.truthy ? try evaluate(r, in: scope) : left
        case .or(let l, let r):
            let left = try evaluate(l, in: scope)
            return left.truthy ? left : try evaluate(r, in: scope)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: scope)
            for (op, e) in operations {
                let right = try evaluate(e, in: scope)
                if !(try Builtins.compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition, in: scope).truthy { return try evaluate(then, in: scope) }
            return try otherwise.map { try evaluate($0, in: scope) } ?? .undefined(message: "the inline if-expression on the template evaluated to false and no else section was defined.")
        }
    }
}
