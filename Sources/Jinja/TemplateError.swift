import Foundation

/// Where in a template something is: 1-based line and column, counted in characters.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var description: String { "\(line):\(column)" }
}

/// Errors from parsing or rendering a template. `message` is exactly the text Jinja2 would
/// give (so `raise_exception("...")` surfaces the template's own words); `errorDescription`
/// adds the template name and the place.
public enum TemplateError: Error, LocalizedError, Equatable {
    /// The template does not parse.
    case syntax(template: String, location: SourceLocation, message: String)
    /// `raise_exception(message)` was called: the template refuses this conversation.
    case raised(String)
    /// An undefined value was used (Jinja2's UndefinedError).
    case undefined(String)
    /// An operation on the wrong kind of value (Python's TypeError/ValueError, Jinja2's runtime errors).
    case type(String)
    /// A runtime error, with the template and the tag where it happened.
    indirect case located(template: String, location: SourceLocation, error: TemplateError)

    /// The bare message, as Jinja2's exception would carry it.
    public var message: String {
        switch self {
        case .syntax(_, _, let message), .raised(let message), .undefined(let message), .type(let message): return message
        case .located(_, _, let error): return error.message
        }
    }

    /// Jinja2's exception class name: TemplateSyntaxError, TemplateError, UndefinedError, TypeError.
    public var kind: String {
        switch self {
        case .syntax: return "TemplateSyntaxError"
        case .raised: return "TemplateError"
        case .undefined: return "UndefinedError"
        case .type: return "TypeError"
        case .located(_, _, let error): return error.kind
        }
    }

    public var errorDescription: String? {
        switch self {
        case .syntax(let template, let location, let message): return "\(template):\(location): \(message)"
        case .raised(let message): return "the chat template refused this conversation: \(message)"
        case .undefined(let message), .type(let message): return message
        case .located(let template, let location, let error):
            if case .raised(let message) = error { return "\(template):\(location): the chat template refused this conversation: \(message)" }
            return "\(template):\(location): \(error.message)"
        }
    }
}
