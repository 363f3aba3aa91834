import Foundation

/// allOf / anyOf / oneOf / not / if-then-else, and how a failed alternative is explained.
///
/// Reporting every branch's errors for a failed oneOf is unreadable, so:
/// - a oneOf whose branches all fix one property with `const` (a discriminator such as `kind`)
///   is validated against the branch the instance names, and only that branch's errors are reported;
///   an unknown value gets a "did you mean";
/// - otherwise, when every branch failed on the type alone, the types are merged
///   ("expected a string or a list, found the integer 3"); else the one branch that failed deepest,
///   then with the fewest errors, is reported, or "matches none of the N alternatives" when several tie.
extension SchemaValidator {
    func applyCombinators(_ instance: JSONValue, _ s: [String: JSONValue], _ path: DocumentPath,
                          _ failures: inout [SchemaFailure]) -> JSONValue {
        var value = instance
        for sub in s["allOf"]?.arrayValue ?? [] {
            value = validate(value, against: sub, at: path, into: &failures)
        }
        if let branches = s["anyOf"]?.arrayValue {
            value = alternatives(value, branches, exactlyOne: false, path, &failures)
        }
        if let branches = s["oneOf"]?.arrayValue {
            value = alternatives(value, branches, exactlyOne: true, path, &failures)
        }
        if let not = s["not"] {
            var scratch: [SchemaFailure] = []
            _ = validate(value, against: not, at: path, into: &scratch)
            if scratch.isEmpty { failures.append(SchemaFailure(path, "must not match the schema under 'not'")) }
        }
        if let condition = s["if"] {
            var scratch: [SchemaFailure] = []
            _ = validate(value, against: condition, at: path, into: &scratch)
            if scratch.isEmpty, let then = s["then"] {
                value = validate(value, against: then, at: path, into: &failures)
            } else if !scratch.isEmpty, let otherwise = s["else"] {
                value = validate(value, against: otherwise, at: path, into: &failures)
            }
        }
        return value
    }

    private func alternatives(_ value: JSONValue, _ branches: [JSONValue], exactlyOne: Bool, _ path: DocumentPath,
                              _ failures: inout [SchemaFailure]) -> JSONValue {
        if exactlyOne, case .object(let object) = value, let (property, kinds) = discriminator(branches) {
            return discriminated(value, object, property, kinds, branches, path, &failures)
        }
        var results: [(value: JSONValue, failures: [SchemaFailure])] = []
        for branch in branches {
            var scratch: [SchemaFailure] = []
            let filled = validate(value, against: branch, at: path, into: &scratch)
            results.append((filled, scratch))
            if !exactlyOne, scratch.isEmpty { return filled }  // anyOf: first match wins
        }
        let passing = results.indices.filter { results[$0].failures.isEmpty }
        if passing.count == 1 { return results[passing[0]].value }
        if passing.count > 1 {
            let list = passing.map { "#\($0 + 1)" }
            failures.append(SchemaFailure(path, "matches more than one alternative (\(list.joined(separator: ", "))); it must match exactly one"))
            return value
        }
        explainNoMatch(value, results.map(\.failures), path, &failures)
        return value
    }

    private func explainNoMatch(_ value: JSONValue, _ branchFailures: [[SchemaFailure]], _ path: DocumentPath,
                                _ failures: inout [SchemaFailure]) {
        func isTypeMismatch(_ list: [SchemaFailure]) -> Bool {
            list.count == 1 && list[0].path == path && list[0].expectedTypes != nil && list[0].key == nil
        }
        let relevant = branchFailures.filter { !isTypeMismatch($0) }
        if relevant.isEmpty {
            var types: [String] = []
            for list in branchFailures { for t in list[0].expectedTypes ?? [] where !types.contains(t) { types.append(t) } }
            var message = "expected \(DiagnosticText.expected(types: types)), found \(value.foundDescription)"
            if case .number(let d) = value, !d.isFinite, types.contains("number") || types.contains("integer") {
                message = "expected a finite number, found \(value.foundDescription)"
            }
            failures.append(SchemaFailure(path, message, expectedTypes: types))
            return
        }
        // Relevance, as in python-jsonschema's best_match: a branch that failed deeper inside the
        // instance matched more of its shape; among equals, the one with fewer errors.
        func rank(_ list: [SchemaFailure]) -> (Int, Int) {
            (-(list.map { $0.path.segments.count + ($0.key == nil ? 0 : 1) }.max() ?? 0), list.count)
        }
        let top = relevant.map(rank).min { $0 < $1 } ?? (0, 0)
        let best = relevant.filter { rank($0) == top }
        if best.count == 1 {
            failures.append(contentsOf: best[0])
        } else {
            failures.append(SchemaFailure(path, "matches none of the \(branchFailures.count) alternatives"))
        }
    }

    /// A property every branch fixes with a string `const` (preferring `kind`, then `type`), with
    /// each branch's value in order; nil when the branches have no common discriminator.
    func discriminator(_ branches: [JSONValue]) -> (String, [String])? {
        var constants: [[String: String]] = []
        for branch in branches {
            guard let s = resolved(branch), let properties = s["properties"]?.objectValue else { return nil }
            var fixed: [String: String] = [:]
            for (name, sub) in properties {
                if let c = sub.objectValue?["const"]?.stringValue { fixed[name] = c }
            }
            constants.append(fixed)
        }
        guard let first = constants.first else { return nil }
        let common = first.keys.filter { name in constants.allSatisfy { $0[name] != nil } }.sorted()
        guard let property = common.contains("kind") ? "kind" : common.contains("type") ? "type" : common.first else { return nil }
        let kinds = constants.compactMap { $0[property] }
        guard Set(kinds).count == kinds.count else { return nil }  // ambiguous: fall back to the generic rule
        return (property, kinds)
    }

    private func discriminated(_ value: JSONValue, _ object: [String: JSONValue], _ property: String, _ kinds: [String],
                               _ branches: [JSONValue], _ path: DocumentPath,
                               _ failures: inout [SchemaFailure]) -> JSONValue {
        guard let tag = object[property] else {
            failures.append(SchemaFailure(path, "missing required field '\(property)'"))
            return value
        }
        if case .string(let name) = tag, let index = kinds.firstIndex(of: name) {
            return validate(value, against: branches[index], at: path, into: &failures)
        }
        let noun = property == "kind" ? "stage kind" : "'\(property)' value"
        let shown = tag.stringValue.map { "'\($0)'" } ?? tag.yamlText
        var message = "unknown \(noun) \(shown)"
        if let text = tag.stringValue, let suggestion = Suggestion.closest(to: text, among: kinds) {
            message += "; did you mean '\(suggestion)'?"
        } else {
            message += "; expected one of: \(kinds.sorted().joined(separator: ", "))"
        }
        failures.append(SchemaFailure(path.appending(property), message))
        return value
    }
}
