import Foundation

/// One validation run: walks instance and schema together, collects every failure, and returns
/// the instance with `default`s filled in. Combinators (oneOf/anyOf/allOf/not/if) are in
/// SchemaCombinators.swift. A fresh validator per run holds the compiled-regex cache.
final class SchemaValidator {
    let root: JSONValue
    let references: [String: JSONValue]
    private var regexes: [String: NSRegularExpression] = [:]
    private var depth = 0
    static let maxDepth = 300

    init(root: JSONValue, references: [String: JSONValue]) {
        self.root = root
        self.references = references
    }

    func validate(_ instance: JSONValue, against schema: JSONValue, at path: DocumentPath,
                  into failures: inout [SchemaFailure]) -> JSONValue {
        switch schema {
        case .bool(true): return instance
        case .bool(false):
            failures.append(SchemaFailure(path, "no value is allowed here"))
            return instance
        case .object(let s):
            depth += 1
            defer { depth -= 1 }
            guard depth < SchemaValidator.maxDepth else {
                failures.append(SchemaFailure(path, "schema nesting deeper than \(SchemaValidator.maxDepth) levels (a $ref cycle?)"))
                return instance
            }
            return validateObjectSchema(instance, s, path, &failures)
        default:
            return instance
        }
    }

    private func validateObjectSchema(_ instance: JSONValue, _ s: [String: JSONValue], _ path: DocumentPath,
                                      _ failures: inout [SchemaFailure]) -> JSONValue {
        // A type mismatch makes every other keyword noise ("missing field" on a string): stop here.
        if let type = s["type"], let failure = checkType(instance, type, path) {
            failures.append(failure)
            return instance
        }
        var value = instance
        // An integral float where only integers are allowed becomes an integer (`epochs: 2.0` and
        // `epochs: 2` are the same field value, and so the same canonical JSON / cache key).
        if case .number(let d) = instance, let type = s["type"], SchemaValidator.typeNames(type) == ["integer"],
           let i = Int64(exactly: d) {
            value = .integer(i)
        }
        // Likewise an integer where only numbers are allowed is a float: `weight_decay: 0` and
        // `weight_decay: 0.0` are one configuration and one cache key.
        if case .integer(let i) = instance, let type = s["type"], SchemaValidator.typeNames(type) == ["number"] {
            value = .number(Double(i))
        }
        if let ref = s["$ref"]?.stringValue, let target = references[ref] {
            value = validate(value, against: target, at: path, into: &failures)
        }
        checkConstAndEnum(value, s, path, &failures)
        switch value {
        case .integer, .number: checkNumber(instance, s, path, &failures)  // bounds quote the number as written
        case .string(let text): checkString(text, value, s, path, &failures)
        case .array(let items): value = checkArray(items, s, path, &failures)
        case .object(let object): value = checkObject(object, s, path, &failures)
        default: break
        }
        return applyCombinators(value, s, path, &failures)
    }

    // MARK: type, const, enum

    /// Nil when `instance` has one of the types. "integer" accepts integral floats (2.0), as
    /// 2020-12 defines integers mathematically; non-finite floats are never numbers.
    func checkType(_ instance: JSONValue, _ type: JSONValue, _ path: DocumentPath) -> SchemaFailure? {
        let types = SchemaValidator.typeNames(type)
        for name in types where SchemaValidator.matches(instance, type: name) { return nil }
        if case .number(let d) = instance, !d.isFinite, types.contains("number") || types.contains("integer") {
            return SchemaFailure(path, "expected a finite number, found \(instance.foundDescription)", expectedTypes: types)
        }
        return SchemaFailure(path, "expected \(DiagnosticText.expected(types: types)), found \(instance.foundDescription)",
                             expectedTypes: types)
    }

    static func typeNames(_ type: JSONValue) -> [String] {
        type.stringValue.map { [$0] } ?? type.arrayValue?.compactMap(\.stringValue) ?? []
    }

    static func matches(_ instance: JSONValue, type: String) -> Bool {
        switch (type, instance) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .integer), ("number", .integer): return true
        case ("integer", .number(let d)): return d.isFinite && d.rounded() == d
        case ("number", .number(let d)): return d.isFinite
        default: return false
        }
    }

    private func checkConstAndEnum(_ value: JSONValue, _ s: [String: JSONValue], _ path: DocumentPath,
                                   _ failures: inout [SchemaFailure]) {
        if let constant = s["const"], !SchemaValidator.equal(value, constant) {
            failures.append(SchemaFailure(path, "must be \(constant.yamlText) (found \(value.yamlText))"))
        }
        if let options = s["enum"]?.arrayValue, !options.contains(where: { SchemaValidator.equal(value, $0) }) {
            var message = "must be one of: \(options.map(\.listedText).joined(separator: ", ")) (found \(value.yamlText))"
            if case .string(let text) = value {
                message += Suggestion.didYouMean(text, among: options.compactMap(\.stringValue))
            }
            failures.append(SchemaFailure(path, message))
        }
    }

    /// JSON equality with mathematical numbers (1 == 1.0).
    /// JSON equality for const/enum/uniqueItems: numbers by value, strings (and member names) by
    /// Unicode scalars. Swift's String == uses canonical equivalence ("é" precomposed equals
    /// "e" + combining accent), which JSON Schema does not.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (canonical(a), canonical(b)) {
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            let order = { (p: (key: String, value: JSONValue), q: (key: String, value: JSONValue)) in
                p.key.unicodeScalars.lexicographicallyPrecedes(q.key.unicodeScalars)
            }
            return zip(x.sorted(by: order), y.sorted(by: order)).allSatisfy {
                $0.key.unicodeScalars.elementsEqual($1.key.unicodeScalars) && equal($0.value, $1.value)
            }
        case (let x, let y): return x == y
        }
    }

    /// Integral floats become integers so that Hashable equality is numeric equality.
    static func canonical(_ v: JSONValue) -> JSONValue {
        switch v {
        case .number(let d):
            if d.isFinite, d.rounded() == d, let i = Int64(exactly: d) { return .integer(i) }
            return v
        case .array(let items): return .array(items.map(canonical))
        case .object(let o): return .object(o.mapValues(canonical))
        default: return v
        }
    }

    // MARK: numbers

    private func checkNumber(_ value: JSONValue, _ s: [String: JSONValue], _ path: DocumentPath,
                             _ failures: inout [SchemaFailure]) {
        guard let x = value.doubleValue, x.isFinite else { return }
        func bound(_ key: String, _ op: String, _ ok: (Double, Double) -> Bool) {
            guard let limit = s[key], let l = limit.doubleValue, !ok(x, l) else { return }
            failures.append(SchemaFailure(path, "must be \(op) \(limit.numberText) (found \(value.numberText))"))
        }
        bound("minimum", ">=", >=)
        bound("maximum", "<=", <=)
        bound("exclusiveMinimum", ">", >)
        bound("exclusiveMaximum", "<", <)
        if let m = s["multipleOf"], let divisor = m.doubleValue, divisor > 0 {
            let quotient = x / divisor
            if (quotient - quotient.rounded()).magnitude > 1e-9 * max(1, quotient.magnitude) {
                failures.append(SchemaFailure(path, "must be a multiple of \(m.numberText) (found \(value.numberText))"))
            }
        }
    }

    // MARK: strings

    private func checkString(_ text: String, _ value: JSONValue, _ s: [String: JSONValue], _ path: DocumentPath,
                             _ failures: inout [SchemaFailure]) {
        // JSON Schema counts characters as Unicode code points.
        let length = text.unicodeScalars.count
        if let min = s["minLength"]?.intValue, length < min {
            failures.append(SchemaFailure(path, "must be at least \(DiagnosticText.count(min, "character")) long (found \(length))"))
        }
        if let max = s["maxLength"]?.intValue, length > max {
            failures.append(SchemaFailure(path, "must be at most \(DiagnosticText.count(max, "character")) long (found \(length))"))
        }
        if let pattern = s["pattern"]?.stringValue, !matches(text, pattern: pattern) {
            failures.append(SchemaFailure(path, "must match the pattern '\(pattern)' (found \(value.yamlText))"))
        }
    }

    /// ECMA-262 semantics: the pattern may match anywhere unless it anchors itself.
    func matches(_ text: String, pattern: String) -> Bool {
        let regex: NSRegularExpression
        if let cached = regexes[pattern] {
            regex = cached
        } else {
            guard let compiled = try? NSRegularExpression(pattern: pattern) else { return false }  // checked in init
            regexes[pattern] = compiled
            regex = compiled
        }
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return regex.firstMatch(in: text, range: range) != nil
    }

    // MARK: arrays

    private func checkArray(_ items: [JSONValue], _ s: [String: JSONValue], _ path: DocumentPath,
                            _ failures: inout [SchemaFailure]) -> JSONValue {
        var result = items
        // 2020-12: prefixItems for the first items, items for the rest; draft-07's array form of items = prefixItems.
        var prefix = s["prefixItems"]?.arrayValue ?? []
        var rest = s["items"]
        if case .array(let tuple)? = rest { prefix = tuple; rest = nil }
        for (i, item) in items.enumerated() {
            let sub = i < prefix.count ? prefix[i] : rest
            if let sub { result[i] = validate(item, against: sub, at: path.appending(index: i), into: &failures) }
        }
        if let min = s["minItems"]?.intValue, items.count < min {
            failures.append(SchemaFailure(path, "must have at least \(DiagnosticText.count(min, "item")) (found \(items.count))"))
        }
        if let max = s["maxItems"]?.intValue, items.count > max {
            failures.append(SchemaFailure(path, "must have at most \(DiagnosticText.count(max, "item")) (found \(items.count))"))
        }
        if s["uniqueItems"]?.boolValue == true {
            var firstIndex: [JSONValue: Int] = [:]
            for (i, item) in items.enumerated() {
                let key = SchemaValidator.canonical(item)
                if let first = firstIndex[key] {
                    failures.append(SchemaFailure(path.appending(index: i), "duplicates item \(first) (items must be unique)"))
                } else {
                    firstIndex[key] = i
                }
            }
        }
        return .array(result)
    }

    // MARK: objects

    private func checkObject(_ object: [String: JSONValue], _ s: [String: JSONValue], _ path: DocumentPath,
                             _ failures: inout [SchemaFailure]) -> JSONValue {
        var result = object
        let properties = s["properties"]?.objectValue ?? [:]
        let patterns = s["patternProperties"]?.objectValue ?? [:]
        let additional = s["additionalProperties"]
        for key in object.keys.sorted() {
            guard let item = object[key] else { continue }
            let childPath = path.appending(key)
            var evaluated = false
            if let sub = properties[key] {
                result[key] = validate(item, against: sub, at: childPath, into: &failures)
                evaluated = true
            }
            for pattern in patterns.keys.sorted() where matches(key, pattern: pattern) {
                if let sub = patterns[pattern] {
                    result[key] = validate(result[key] ?? item, against: sub, at: childPath, into: &failures)
                }
                evaluated = true
            }
            guard !evaluated, let additional else { continue }
            if case .bool(false) = additional {
                let message = "unknown field '\(key)'" + Suggestion.didYouMean(key, among: properties.keys.sorted())
                failures.append(SchemaFailure(path, message, key: key))
            } else {
                result[key] = validate(item, against: additional, at: childPath, into: &failures)
            }
        }
        for case .string(let name) in s["required"]?.arrayValue ?? [] where object[name] == nil {
            failures.append(SchemaFailure(path, "missing required field '\(name)'"))
        }
        if let dependent = s["dependentRequired"]?.objectValue {
            for trigger in dependent.keys.sorted() where object[trigger] != nil {
                for case .string(let name) in dependent[trigger]?.arrayValue ?? [] where object[name] == nil {
                    failures.append(SchemaFailure(path, "missing field '\(name)' (required when '\(trigger)' is present)"))
                }
            }
        }
        checkFieldRules(object, s, path, &failures)
        if let min = s["minProperties"]?.intValue, object.count < min {
            failures.append(SchemaFailure(path, "must have at least \(DiagnosticText.count(min, "field")) (found \(object.count))"))
        }
        if let max = s["maxProperties"]?.intValue, object.count > max {
            failures.append(SchemaFailure(path, "must have at most \(DiagnosticText.count(max, "field")) (found \(object.count))"))
        }
        // Defaults for absent properties (not validated: the schema author vouches for them).
        for key in properties.keys.sorted() where result[key] == nil {
            if let value = defaultValue(of: properties[key]) { result[key] = value }
        }
        return .object(result)
    }

    /// The `default` of a subschema, following a chain of `$ref`s.
    func defaultValue(of schema: JSONValue?) -> JSONValue? {
        var current = schema
        for _ in 0..<32 {
            guard let s = current?.objectValue else { return nil }
            if let value = s["default"] {
                // Canonicalised like a written value: `"default": 0` on a number is 0.0.
                if case .integer(let i) = value, let type = s["type"], SchemaValidator.typeNames(type) == ["number"] { return .number(Double(i)) }
                return value
            }
            guard let ref = s["$ref"]?.stringValue else { return nil }
            current = references[ref]
        }
        return nil
    }

    /// Follows `$ref` until an object schema without one (used to inspect oneOf branches).
    func resolved(_ schema: JSONValue) -> [String: JSONValue]? {
        var current = schema
        for _ in 0..<32 {
            guard let s = current.objectValue else { return nil }
            guard let ref = s["$ref"]?.stringValue, let target = references[ref] else { return s }
            current = target
        }
        return nil
    }
}
