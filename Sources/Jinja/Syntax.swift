/// The template's syntax tree. Expressions follow Jinja2's grammar and precedence
/// (jinja2/parser.py): conditional < or < and < not < comparison < `+ -` < `~` < `* / // %`
/// < `**` < unary minus < postfix (`.attr`, `[index]`, call) < filters and tests.
indirect enum Expression {
    case literal(Value)
    case name(String)
    case list([Expression])
    case tuple([Expression])
    case dict([(Expression, Expression)])
    case attribute(Expression, String)
    case item(Expression, Expression)
    case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
    case call(Expression, Arguments)
    case filter(Expression, name: String, Arguments)
    case test(Expression, name: String, Arguments, negated: Bool)
    case not(Expression)
    case negate(Expression)
    case binary(String, Expression, Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(Expression, [(String, Expression)])
    case conditional(then: Expression, condition: Expression, otherwise: Expression?)
}

struct Arguments {
    var positional: [Expression] = []
    var keywords: [(String, Expression)] = []
}

enum AssignTarget {
    case names([String])             // x, or a tuple: a, b
    case attribute(String, String)   // ns.attr
}

/// A statement or piece of output. Locations are the tag's, for runtime error messages.
indirect enum Statement {
    case text(String)
    case output(Expression, SourceLocation)
    case conditional([(Expression, [Statement])], otherwise: [Statement], SourceLocation)
    case loop(targets: [String], iterable: Expression, condition: Expression?, body: [Statement], otherwise: [Statement], SourceLocation)
    case assign(AssignTarget, Expression, SourceLocation)
    case assignBlock(String, [Statement], SourceLocation)
    case macro(name: String, parameters: [(String, Expression?)], body: [Statement], SourceLocation)
    case filterBlock([(String, Arguments)], [Statement], SourceLocation)
    case block([Statement])          // {% block %}, {% generation %}: the body, rendered in place
    case breakLoop, continueLoop
}
