import Foundation

/// A parsed Jinja template, rendered in transformers' chat-template environment
/// (`transformers.utils.chat_template_utils._compile_jinja_template`): trim_blocks and
/// lstrip_blocks on, loop controls, `raise_exception`, `strftime_now`, `namespace`, `dict`,
/// `range`, and a `tojson` filter that does not escape HTML.
public struct Template: @unchecked Sendable {
    public let name: String
    let body: [Statement]

    /// Parses `source`; syntax errors name `name` (the template's file) and line:column.
    public init(_ source: String, name: String = "<template>") throws {
        self.name = name
        let tokens = try Lexer(source, name: name).tokenize()
        var parser = Parser(tokens: tokens, name: name)
        body = try parser.parseTemplate()
    }

    /// Renders with `context` as the template's variables. `now` fixes what `strftime_now` sees
    /// (transformers uses the current local time; tests and reproducible runs pin it).
    public func render(_ context: [String: Value], now: Date = Date(), timeZone: TimeZone = .current) throws -> String {
        let globals = Scope(parent: nil)
        globals.variables = Template.globals(now: now, timeZone: timeZone)
        let scope = Scope(parent: globals)
        for (k, v) in context { scope.variables[k] = v }
        var out = ""
        _ = try Renderer(templateName: name).render(body, in: scope, into: &out)
        return out
    }

    static func globals(now: Date, timeZone: TimeZone) -> [String: Value] {
        [
            "raise_exception": .function(Function("raise_exception") { args, _ in
                throw TemplateError.raised(args.first?.text ?? "")
            }),
            "strftime_now": .function(Function("strftime_now") { args, _ in
                .string(Strftime.format(args.first?.text ?? "", date: now, timeZone: timeZone))
            }),
            "namespace": .function(Function("namespace") { args, keywords in
                var d = Dict()
                if case .dict(let initial)? = args.first { d = initial }
                for (k, v) in keywords { d[k] = v }
                return .namespace(Namespace(d))
            }),
            "dict": .function(Function("dict") { args, keywords in
                var d = Dict()
                if case .dict(let initial)? = args.first { d = initial }
                for (k, v) in keywords { d[k] = v }
                return .dict(d)
            }),
            "range": .function(Function("range") { args, _ in
                let ints = try args.map { v -> Int in
                    guard let i = v.integer else { throw TemplateError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
                    return i
                }
                var start = 0, stop = 0, step = 1
                switch ints.count {
                case 1: stop = ints[0]
                case 2: start = ints[0]; stop = ints[1]
                case 3: start = ints[0]; stop = ints[1]; step = ints[2]
                default: throw TemplateError.type("range expected 1 to 3 arguments, got \(ints.count)")
                }
                guard step != 0 else { throw TemplateError.type("range() arg 3 must not be zero") }
                guard abs((stop - start) / step) <= 1_000_000 else { throw TemplateError.type("range too big (the sandbox allows 100000 items)") }
                return .array(Array(stride(from: start, to: stop, by: step)).map(Value.int))
            }),
        ]
    }
}

/// Python's `datetime.strftime` for the directives templates use (C locale names).
enum Strftime {
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    static let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    static func format(_ format: String, date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0, weekday = (c.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ v: Int, _ w: Int = 2) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        var out = ""
        var it = format.makeIterator()
        while let ch = it.next() {
            guard ch == "%" else { out.append(ch); continue }
            guard let d = it.next() else { out.append("%"); break }
            switch d {
            case "d": out += pad(day)
            case "-": // %-d, %-m: no padding (glibc)
                if let e = it.next() {
                    switch e {
                    case "d": out += String(day)
                    case "m": out += String(month)
                    case "H": out += String(hour)
                    case "I": out += String(hour % 12 == 0 ? 12 : hour % 12)
                    case "M": out += String(minute)
                    case "S": out += String(second)
                    case "j": out += String(dayOfYear)
                    default: out += "%-" + String(e)
                    }
                }
            case "e": out += (day < 10 ? " " : "") + String(day)
            case "m": out += pad(month)
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "y": out += pad(year % 100)
            case "Y": out += String(year)
            case "H": out += pad(hour)
            case "I": out += pad(hour % 12 == 0 ? 12 : hour % 12)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "M": out += pad(minute)
            case "S": out += pad(second)
            case "a": out += String(days[weekday].prefix(3))
            case "A": out += days[weekday]
            case "w": out += String(weekday)
            case "j": out += pad(dayOfYear, 3)
            case "f": out += "000000"
            case "Z": out += timeZone.abbreviation(for: date) ?? ""
            case "z":
                let offset = timeZone.secondsFromGMT(for: date) / 60
                out += (offset < 0 ? "-" : "+") + pad(abs(offset) / 60) + pad(abs(offset) % 60)
            case "F": out += "\(year)-\(pad(month))-\(pad(day))"
            case "T": out += "\(pad(hour)):\(pad(minute)):\(pad(second))"
            case "D": out += "\(pad(month))/\(pad(day))/\(pad(year % 100))"
            case "%": out += "%"
            default: out += "%" + String(d)
            }
        }
        return out
    }
}
