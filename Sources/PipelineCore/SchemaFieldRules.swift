import Foundation

/// Two annotations of our own (`x-*`, ignored by other validators) for rules between fields that
/// JSON Schema can only say through `not`/`if` with unreadable errors. Both look at the fields as
/// written (before defaults); a field written with its schema default (`eval_split: 0`, the "off"
/// value) counts as not given. Each failure points at the field that breaks the rule.
///
/// - `x-exclusive: [["eval_data", "eval_split"]]`: at most one field of each group.
/// - `x-needs-one-of: [{"field": "keep", "equals": "best", "needs": ["eval_data", "eval_split"],
///   "why": "..."}]`: when `field` is written (with that value, if `equals` is given), one of
///   `needs` must be written too.
extension SchemaValidator {
    func checkFieldRules(_ object: [String: JSONValue], _ s: [String: JSONValue], _ path: DocumentPath,
                         _ failures: inout [SchemaFailure]) {
        let properties = s["properties"]
        func given(_ name: String) -> Bool {
            guard let value = object[name] else { return false }
            guard let defaultValue = properties?[name]?["default"] else { return true }
            if let a = value.doubleValue, let b = defaultValue.doubleValue { return a != b }   // 0 and 0.0 alike
            return value != defaultValue
        }
        for group in s["x-exclusive"]?.arrayValue ?? [] {
            let names = (group.arrayValue ?? []).compactMap(\.stringValue)
            let given = names.filter(given)
            guard given.count > 1, let first = given.first else { continue }
            for other in given.dropFirst() {
                failures.append(SchemaFailure(path, "'\(other)' cannot be combined with '\(first)': give only one of them", key: other))
            }
        }
        for rule in s["x-needs-one-of"]?.arrayValue ?? [] {
            guard let field = rule["field"]?.stringValue, given(field), let value = object[field] else { continue }
            if let wanted = rule["equals"], wanted != value { continue }
            let needs = (rule["needs"]?.arrayValue ?? []).compactMap(\.stringValue)
            guard !needs.isEmpty, !needs.contains(where: given) else { continue }
            let subject = rule["equals"].map { "'\(field): \(CanonicalJSON.displayText($0))'" } ?? "'\(field)'"
            let list = needs.map { "'\($0)'" }
            let alternatives = list.count == 1 ? list[0] : list.dropLast().joined(separator: ", ") + " or " + list[list.count - 1]
            let why = rule["why"]?.stringValue.map { " (\($0))" } ?? ""
            failures.append(SchemaFailure(path, "\(subject) needs \(alternatives)\(why)", key: field))
        }
    }
}
