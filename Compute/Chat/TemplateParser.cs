using System.Globalization;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// Parses template tokens into statements and expressions, with Jinja's grammar and operator precedence, for the
/// subset chat templates use. Anything else (an unknown tag, filter or test, <c>*args</c>) is refused here, with
/// its line and column.
/// </summary>
internal sealed class TemplateParser
{
    private const int MaxNesting = 100;

    private static readonly HashSet<string> CompareOperators = ["==", "!=", "<", "<=", ">", ">="];

    private readonly List<TemplateToken> _tokens;
    private int _index;
    private int _loopDepth;
    private int _nesting;

    private TemplateParser(List<TemplateToken> tokens) => _tokens = tokens;

    public static IReadOnlyList<Statement> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source));
        (List<Statement> body, _) = parser.ParseStatements(null);
        return body;
    }

    private TemplateToken Current => _tokens[_index];

    private TemplateToken Next() => _tokens[_index++];

    private bool IsOperator(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

    private bool IsName(string name) => Current.Kind == TokenKind.Name && Current.Value == name;

    private bool SkipOperator(string op)
    {
        if (!IsOperator(op))
            return false;
        _index++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name))
            return false;
        _index++;
        return true;
    }

    private TemplateToken Expect(TokenKind kind, string what)
    {
        if (Current.Kind != kind)
            throw Unexpected(what);
        return Next();
    }

    private void ExpectOperator(string op)
    {
        if (!SkipOperator(op))
            throw Unexpected($"'{op}'");
    }

    private ChatTemplateException Unexpected(string expected) =>
        ChatTemplateException.At(Current.Position, $"expected {expected}, found {Describe(Current)}");

    private static string Describe(TemplateToken token) => token.Kind switch
    {
        TokenKind.EndOfTemplate => "the end of the template",
        TokenKind.BlockEnd => "the end of the tag",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.String => "a string",
        TokenKind.Text => "template text",
        _ => $"'{token.Value}'",
    };

    /// <summary>
    /// Statements up to one of <paramref name="endTags"/> (null: the end of the template). Returns the end tag
    /// found, with the tokens positioned after its name.
    /// </summary>
    private (List<Statement> Body, string? EndTag) ParseStatements(string[]? endTags, string? opening = null, SourcePosition openedAt = default)
    {
        var body = new List<Statement>();
        while (true)
        {
            TemplateToken token = Next();
            switch (token.Kind)
            {
                case TokenKind.Text:
                    body.Add(new TextStatement(token.Position, token.Value));
                    break;
                case TokenKind.VariableBegin:
                    Expression value = ParseExpression();
                    Expect(TokenKind.VariableEnd, "'}}'");
                    body.Add(new OutputStatement(token.Position, value));
                    break;
                case TokenKind.BlockBegin:
                    TemplateToken name = Expect(TokenKind.Name, "a tag name");
                    if (endTags is not null && endTags.Contains(name.Value))
                        return (body, name.Value);
                    Statement? statement = ParseTag(name);
                    if (statement is not null)
                        body.Add(statement);
                    break;
                case TokenKind.EndOfTemplate:
                    if (endTags is not null)
                        throw ChatTemplateException.At(openedAt, $"'{{% {opening} %}}' is never closed: expected '{{% {endTags[^1]} %}}'");
                    return (body, null);
                default:
                    throw ChatTemplateException.At(token.Position, $"unexpected {Describe(token)}");
            }
        }
    }

    private Statement? ParseTag(TemplateToken name)
    {
        switch (name.Value)
        {
            case "for": return ParseFor(name.Position);
            case "if": return ParseIf(name.Position);
            case "set": return ParseSet(name.Position);
            case "macro": return ParseMacro(name.Position);
            case "break" or "continue":
                if (_loopDepth == 0)
                    throw ChatTemplateException.At(name.Position, $"'{{% {name.Value} %}}' outside a for loop");
                Expect(TokenKind.BlockEnd, "the end of the tag");
                return new LoopControlStatement(name.Position, name.Value == "break" ? Flow.Break : Flow.Continue);
            case "generation":
                // transformers' {% generation %} marks assistant text for training masks; rendering shows the body as is.
                Expect(TokenKind.BlockEnd, "the end of the tag");
                (List<Statement> body, _) = ParseStatements(["endgeneration"], "generation", name.Position);
                Expect(TokenKind.BlockEnd, "the end of the tag");
                return new IfStatement(name.Position, [(new LiteralExpression(name.Position, true), body)], []);
            case "endfor" or "endif" or "endset" or "endmacro" or "endgeneration" or "else" or "elif":
                throw ChatTemplateException.At(name.Position, $"unexpected '{{% {name.Value} %}}'");
            default:
                throw ChatTemplateException.At(name.Position, $"unsupported tag '{name.Value}'");
        }
    }

    private Statement ParseFor(SourcePosition at)
    {
        (List<string> targets, bool unpack) = ParseTargets();
        if (!SkipName("in"))
            throw Unexpected("'in'");
        Expression source = ParseExpression(withCondition: false);
        Expression? filter = SkipName("if") ? ParseExpression() : null;
        if (IsName("recursive"))
            throw ChatTemplateException.At(Current.Position, "unsupported loop option 'recursive'");
        Expect(TokenKind.BlockEnd, "the end of the tag");

        _loopDepth++;
        (List<Statement> body, string? end) = ParseStatements(["else", "endfor"], "for", at);
        _loopDepth--;
        List<Statement> otherwise = [];
        if (end == "else")
        {
            Expect(TokenKind.BlockEnd, "the end of the tag");
            (otherwise, _) = ParseStatements(["endfor"], "for", at);
        }
        Expect(TokenKind.BlockEnd, "the end of the tag");
        return new ForStatement(at, targets, unpack, source, filter, body, otherwise);
    }

    private Statement ParseIf(SourcePosition at)
    {
        var branches = new List<(Expression, IReadOnlyList<Statement>)>();
        Expression condition = ParseExpression();
        while (true)
        {
            Expect(TokenKind.BlockEnd, "the end of the tag");
            (List<Statement> body, string? end) = ParseStatements(["elif", "else", "endif"], "if", at);
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseExpression();
                continue;
            }
            List<Statement> otherwise = [];
            if (end == "else")
            {
                Expect(TokenKind.BlockEnd, "the end of the tag");
                (otherwise, _) = ParseStatements(["endif"], "if", at);
            }
            Expect(TokenKind.BlockEnd, "the end of the tag");
            return new IfStatement(at, branches, otherwise);
        }
    }

    private Statement ParseSet(SourcePosition at)
    {
        TemplateToken first = Expect(TokenKind.Name, "a variable name");
        if (SkipOperator("."))
        {
            string attribute = Expect(TokenKind.Name, "an attribute name").Value;
            ExpectOperator("=");
            Expression value = ParseTupleOrExpression();
            Expect(TokenKind.BlockEnd, "the end of the tag");
            return new SetStatement(at, [first.Value], unpack: false, attribute, value);
        }
        _index--;
        (List<string> targets, bool unpack) = ParseTargets();
        if (SkipOperator("="))
        {
            Expression value = ParseTupleOrExpression();
            Expect(TokenKind.BlockEnd, "the end of the tag");
            return new SetStatement(at, targets, unpack, attribute: null, value);
        }
        if (unpack)
            throw Unexpected("'='");
        if (IsOperator("|"))
            throw ChatTemplateException.At(Current.Position, "unsupported filter on a block set");
        Expect(TokenKind.BlockEnd, "'=' or the end of the tag");
        (List<Statement> body, _) = ParseStatements(["endset"], "set", at);
        Expect(TokenKind.BlockEnd, "the end of the tag");
        return new SetBlockStatement(at, targets[0], body);
    }

    private Statement ParseMacro(SourcePosition at)
    {
        string name = Expect(TokenKind.Name, "a macro name").Value;
        ExpectOperator("(");
        var parameters = new List<(string, Expression?)>();
        while (!SkipOperator(")"))
        {
            if (parameters.Count > 0)
                ExpectOperator(",");
            if (SkipOperator(")"))
                break;
            string parameter = Expect(TokenKind.Name, "a parameter name").Value;
            parameters.Add((parameter, SkipOperator("=") ? ParseExpression() : null));
        }
        Expect(TokenKind.BlockEnd, "the end of the tag");
        int loopDepth = _loopDepth;
        _loopDepth = 0;
        (List<Statement> body, _) = ParseStatements(["endmacro"], "macro", at);
        _loopDepth = loopDepth;
        Expect(TokenKind.BlockEnd, "the end of the tag");
        return new MacroStatement(at, name, parameters, body);
    }

    /// <summary>Loop or set targets: <c>x</c>, <c>k, v</c> or <c>(k, v)</c>.</summary>
    private (List<string> Names, bool Unpack) ParseTargets()
    {
        bool parenthesised = SkipOperator("(");
        var names = new List<string> { Expect(TokenKind.Name, "a variable name").Value };
        bool unpack = parenthesised;
        while (SkipOperator(","))
        {
            unpack = true;
            if (Current.Kind != TokenKind.Name)
                break;
            names.Add(Next().Value);
        }
        if (parenthesised)
            ExpectOperator(")");
        return (names, unpack);
    }

    private Expression ParseTupleOrExpression()
    {
        SourcePosition at = Current.Position;
        Expression first = ParseExpression();
        if (!IsOperator(","))
            return first;
        var items = new List<Expression> { first };
        while (SkipOperator(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd)
                break;
            items.Add(ParseExpression());
        }
        return new ListExpression(at, items, isTuple: true);
    }

    private Expression ParseExpression(bool withCondition = true)
    {
        if (++_nesting > MaxNesting)
            throw ChatTemplateException.At(Current.Position, $"expressions nest deeper than {MaxNesting}");
        try
        {
            return withCondition ? ParseConditional() : ParseOr();
        }
        finally
        {
            _nesting--;
        }
    }

    private Expression ParseConditional()
    {
        Expression expression = ParseOr();
        while (IsName("if"))
        {
            SourcePosition at = Next().Position;
            Expression condition = ParseOr();
            Expression? otherwise = SkipName("else") ? ParseExpression() : null;
            expression = new ConditionalExpression(at, condition, expression, otherwise);
        }
        return expression;
    }

    private Expression ParseOr()
    {
        Expression left = ParseAnd();
        while (IsName("or"))
        {
            SourcePosition at = Next().Position;
            left = new LogicalExpression(at, isAnd: false, left, ParseAnd());
        }
        return left;
    }

    private Expression ParseAnd()
    {
        Expression left = ParseNot();
        while (IsName("and"))
        {
            SourcePosition at = Next().Position;
            left = new LogicalExpression(at, isAnd: true, left, ParseNot());
        }
        return left;
    }

    private Expression ParseNot()
    {
        if (!IsName("not"))
            return ParseCompare();
        SourcePosition at = Next().Position;
        return Nested(() => new NotExpression(at, ParseNot()));
    }

    private Expression ParseCompare()
    {
        Expression first = ParseAdditive();
        var rest = new List<(string, Expression)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Value))
                rest.Add((Next().Value, ParseAdditive()));
            else if (SkipName("in"))
                rest.Add(("in", ParseAdditive()));
            else if (IsName("not") && _tokens[_index + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                _index += 2;
                rest.Add(("not in", ParseAdditive()));
            }
            else
                break;
        }
        return rest.Count == 0 ? first : new CompareExpression(first.At, first, rest);
    }

    private Expression ParseAdditive()
    {
        Expression left = ParseConcat();
        while (IsOperator("+") || IsOperator("-"))
        {
            TemplateToken op = Next();
            left = new ArithmeticExpression(op.Position, op.Value, left, ParseConcat());
        }
        return left;
    }

    private Expression ParseConcat()
    {
        Expression first = ParseMultiplicative();
        if (!IsOperator("~"))
            return first;
        var parts = new List<Expression> { first };
        SourcePosition at = Current.Position;
        while (SkipOperator("~"))
            parts.Add(ParseMultiplicative());
        return new ConcatExpression(at, parts);
    }

    private Expression ParseMultiplicative()
    {
        Expression left = ParsePower();
        while (IsOperator("*") || IsOperator("/") || IsOperator("//") || IsOperator("%"))
        {
            TemplateToken op = Next();
            left = new ArithmeticExpression(op.Position, op.Value, left, ParsePower());
        }
        return left;
    }

    private Expression ParsePower()
    {
        Expression left = ParseUnary(withFilter: true);
        while (IsOperator("**"))
        {
            TemplateToken op = Next();
            left = new ArithmeticExpression(op.Position, op.Value, left, ParseUnary(withFilter: true));
        }
        return left;
    }

    private Expression ParseUnary(bool withFilter)
    {
        Expression expression;
        if (IsOperator("-") || IsOperator("+"))
        {
            TemplateToken op = Next();
            expression = Nested(() => new NegateExpression(op.Position, ParseUnary(withFilter: false), op.Value == "-"));
        }
        else
        {
            expression = ParsePrimary();
        }
        expression = ParsePostfix(expression);
        return withFilter ? ParseFilters(expression) : expression;
    }

    private T Nested<T>(Func<T> parse)
    {
        if (++_nesting > MaxNesting)
            throw ChatTemplateException.At(Current.Position, $"expressions nest deeper than {MaxNesting}");
        try
        {
            return parse();
        }
        finally
        {
            _nesting--;
        }
    }

    private Expression ParsePrimary()
    {
        TemplateToken token = Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                _index++;
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpression(token.Position, true),
                    "false" or "False" => new LiteralExpression(token.Position, false),
                    "none" or "None" => new LiteralExpression(token.Position, null),
                    _ => new NameExpression(token.Position, token.Value),
                };
            case TokenKind.String:
                string text = "";
                while (Current.Kind == TokenKind.String)
                    text += Next().Value;
                return new LiteralExpression(token.Position, text);
            case TokenKind.Integer:
                _index++;
                if (!long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long integer))
                    throw ChatTemplateException.At(token.Position, $"integer literal {token.Value} does not fit in 64 bits");
                return new LiteralExpression(token.Position, integer);
            case TokenKind.Float:
                _index++;
                return new LiteralExpression(token.Position, double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture));
            case TokenKind.Operator when token.Value == "(":
                _index++;
                return Nested(() => ParseParenthesised(token.Position));
            case TokenKind.Operator when token.Value == "[":
                _index++;
                return Nested(() => new ListExpression(token.Position, ParseItems("]"), isTuple: false));
            case TokenKind.Operator when token.Value == "{":
                _index++;
                return Nested(() => ParseDict(token.Position));
            default:
                throw Unexpected("an expression");
        }
    }

    private Expression ParseParenthesised(SourcePosition at)
    {
        if (SkipOperator(")"))
            return new ListExpression(at, [], isTuple: true);
        Expression first = ParseExpression();
        if (SkipOperator(")"))
            return first;
        var items = new List<Expression> { first };
        while (SkipOperator(","))
        {
            if (IsOperator(")"))
                break;
            items.Add(ParseExpression());
        }
        ExpectOperator(")");
        return new ListExpression(at, items, isTuple: true);
    }

    private List<Expression> ParseItems(string close)
    {
        var items = new List<Expression>();
        while (!SkipOperator(close))
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
                if (SkipOperator(close))
                    break;
            }
            items.Add(ParseExpression());
        }
        return items;
    }

    private DictExpression ParseDict(SourcePosition at)
    {
        var pairs = new List<(Expression, Expression)>();
        while (!SkipOperator("}"))
        {
            if (pairs.Count > 0)
            {
                ExpectOperator(",");
                if (SkipOperator("}"))
                    break;
            }
            Expression key = ParseExpression();
            ExpectOperator(":");
            pairs.Add((key, ParseExpression()));
        }
        return new DictExpression(at, pairs);
    }

    private Expression ParsePostfix(Expression expression)
    {
        while (true)
        {
            if (IsOperator("."))
            {
                SourcePosition at = Next().Position;
                TemplateToken member = Current;
                if (member.Kind == TokenKind.Integer)
                {
                    _index++;
                    expression = new ItemExpression(at, expression, new LiteralExpression(member.Position, long.Parse(member.Value, CultureInfo.InvariantCulture)));
                }
                else
                {
                    expression = new AttributeExpression(at, expression, Expect(TokenKind.Name, "an attribute name").Value);
                }
            }
            else if (IsOperator("["))
            {
                expression = ParseSubscript(expression, Next().Position);
            }
            else if (IsOperator("("))
            {
                SourcePosition at = Next().Position;
                expression = new CallExpression(at, expression, ParseArguments());
            }
            else
            {
                return expression;
            }
        }
    }

    private Expression ParseSubscript(Expression target, SourcePosition at)
    {
        Expression? start = IsOperator(":") ? null : ParseExpression();
        if (start is not null && SkipOperator("]"))
            return new ItemExpression(at, target, start);
        ExpectOperator(":");
        Expression? stop = IsOperator(":") || IsOperator("]") ? null : ParseExpression();
        Expression? step = null;
        if (SkipOperator(":") && !IsOperator("]"))
            step = ParseExpression();
        ExpectOperator("]");
        return new SliceExpression(at, target, start, stop, step);
    }

    /// <summary>Call arguments after '(': positional, then <c>name=value</c>; <c>*args</c> and <c>**kwargs</c> are refused.</summary>
    private ArgumentExpressions ParseArguments()
    {
        var positional = new List<Expression>();
        var named = new List<KeyValuePair<string, Expression>>();
        while (!SkipOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                ExpectOperator(",");
                if (SkipOperator(")"))
                    break;
            }
            if (IsOperator("*") || IsOperator("**"))
                throw ChatTemplateException.At(Current.Position, $"unsupported argument unpacking '{Current.Value}'");
            if (Current.Kind == TokenKind.Name && _tokens[_index + 1] is { Kind: TokenKind.Operator, Value: "=" })
            {
                string name = Next().Value;
                _index++;
                named.Add(KeyValuePair.Create(name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0)
                    throw ChatTemplateException.At(Current.Position, "a positional argument follows a keyword argument");
                positional.Add(ParseExpression());
            }
        }
        return new ArgumentExpressions(positional, named);
    }

    private Expression ParseFilters(Expression expression)
    {
        while (true)
        {
            if (IsOperator("|"))
            {
                _index++;
                TemplateToken name = Expect(TokenKind.Name, "a filter name");
                if (JinjaFilters.Find(name.Value) is null)
                    throw ChatTemplateException.At(name.Position, $"unsupported filter '{name.Value}'");
                ArgumentExpressions arguments = SkipOperator("(") ? ParseArguments() : ArgumentExpressions.None;
                CheckTestArgument(name.Value, arguments);
                expression = new FilterExpression(name.Position, expression, name.Value, arguments);
            }
            else if (IsName("is"))
            {
                _index++;
                bool negated = SkipName("not");
                TemplateToken name = Current.Kind == TokenKind.Name || IsOperator("==") || IsOperator("!=")
                    ? Next()
                    : throw Unexpected("a test name");
                if (JinjaTests.Find(name.Value) is null)
                    throw ChatTemplateException.At(name.Position, $"unsupported test '{name.Value}'");
                ArgumentExpressions arguments;
                if (SkipOperator("("))
                    arguments = ParseArguments();
                else if (StartsTestArgument())
                    arguments = new ArgumentExpressions([ParsePostfix(ParsePrimary())], []);
                else
                    arguments = ArgumentExpressions.None;
                expression = new TestExpression(name.Position, expression, name.Value, arguments, negated);
            }
            else if (IsOperator("("))
            {
                SourcePosition at = Next().Position;
                expression = new CallExpression(at, expression, ParseArguments());
            }
            else
            {
                return expression;
            }
        }
    }

    /// <summary>Jinja's rule for a test argument without parentheses (<c>x is divisibleby 3</c>, <c>x is sameas none</c>).</summary>
    private bool StartsTestArgument() => Current.Kind switch
    {
        TokenKind.Name => Current.Value is not ("else" or "or" or "and" or "if" or "is" or "in" or "not"),
        TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
        TokenKind.Operator => Current.Value is "[" or "{",
        _ => false,
    };

    /// <summary>A test named by a string literal in select/selectattr/reject/rejectattr is checked here rather than when rendering.</summary>
    private static void CheckTestArgument(string filter, ArgumentExpressions arguments)
    {
        int testIndex = filter switch
        {
            "select" or "reject" => 0,
            "selectattr" or "rejectattr" => 1,
            _ => -1,
        };
        if (testIndex >= 0 && arguments.Positional.Count > testIndex && arguments.Positional[testIndex] is LiteralExpression { Value: string test } literal
            && JinjaTests.Find(test) is null)
        {
            throw ChatTemplateException.At(literal.At, $"unsupported test '{test}'");
        }
    }
}
