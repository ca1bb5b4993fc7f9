namespace FtpCluster.Compute.Chat;

/// <summary>A parsed expression; immutable, so one parsed template serves concurrent renderings.</summary>
internal abstract class Expression(SourcePosition at)
{
    public SourcePosition At { get; } = at;

    public abstract object? Evaluate(RenderContext context);
}

internal sealed class LiteralExpression(SourcePosition at, object? value) : Expression(at)
{
    public object? Value { get; } = value;

    public override object? Evaluate(RenderContext context) => Value;
}

internal sealed class NameExpression(SourcePosition at, string name) : Expression(at)
{
    public string Name { get; } = name;

    public override object? Evaluate(RenderContext context) => context.Lookup(Name);
}

internal sealed class ListExpression(SourcePosition at, IReadOnlyList<Expression> items, bool isTuple) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        var values = new List<object?>(items.Count);
        foreach (Expression item in items)
            values.Add(item.Evaluate(context));
        return isTuple ? values.ToArray() : values;
    }
}

internal sealed class DictExpression(SourcePosition at, IReadOnlyList<(Expression Key, Expression Value)> pairs) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        var dict = new JinjaDict();
        foreach ((Expression key, Expression value) in pairs)
        {
            if (key.Evaluate(context) is not string name)
                throw ChatTemplateException.At(key.At, "unsupported dict key: only string keys are supported");
            dict[name] = value.Evaluate(context);
        }
        return dict;
    }
}

internal sealed class AttributeExpression(SourcePosition at, Expression target, string name) : Expression(at)
{
    public Expression Target { get; } = target;

    public string Name { get; } = name;

    public override object? Evaluate(RenderContext context) => JinjaOperators.GetAttribute(Target.Evaluate(context), Name, At);
}

internal sealed class ItemExpression(SourcePosition at, Expression target, Expression key) : Expression(at)
{
    public override object? Evaluate(RenderContext context) =>
        JinjaOperators.GetItem(target.Evaluate(context), key.Evaluate(context), At);
}

internal sealed class SliceExpression(SourcePosition at, Expression target, Expression? start, Expression? stop, Expression? step)
    : Expression(at)
{
    public override object? Evaluate(RenderContext context) => JinjaOperators.Slice(
        target.Evaluate(context), start?.Evaluate(context), stop?.Evaluate(context), step?.Evaluate(context), At);
}

/// <summary>The argument expressions of a call, a filter or a test.</summary>
internal sealed class ArgumentExpressions(IReadOnlyList<Expression> positional, IReadOnlyList<KeyValuePair<string, Expression>> named)
{
    public static readonly ArgumentExpressions None = new([], []);

    public IReadOnlyList<Expression> Positional { get; } = positional;

    public IReadOnlyList<KeyValuePair<string, Expression>> Named { get; } = named;

    public CallArguments Evaluate(RenderContext context) => new(
        [.. Positional.Select(argument => argument.Evaluate(context))],
        [.. Named.Select(argument => KeyValuePair.Create(argument.Key, argument.Value.Evaluate(context)))]);
}

internal sealed class CallExpression(SourcePosition at, Expression callee, ArgumentExpressions arguments) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        object? target = callee.Evaluate(context);
        switch (target)
        {
            case JinjaCallable callable:
                return callable.Invoke(arguments.Evaluate(context), context, At);
            case JinjaUndefined when callee is AttributeExpression attribute:
                object? owner = attribute.Target.Evaluate(context);
                throw ChatTemplateException.At(attribute.At, $"unsupported method '{attribute.Name}' on a '{JinjaValues.TypeName(owner)}' value");
            case JinjaUndefined when callee is NameExpression name:
                throw ChatTemplateException.At(At, $"unsupported function '{name.Name}'");
            case JinjaUndefined undefined:
                throw ChatTemplateException.At(At, undefined.Description);
            default:
                throw ChatTemplateException.At(At, $"'{JinjaValues.TypeName(target)}' object is not callable");
        }
    }
}

internal sealed class FilterExpression(SourcePosition at, Expression target, string name, ArgumentExpressions arguments) : Expression(at)
{
    private readonly JinjaFilters.Filter _filter = JinjaFilters.Find(name)
        ?? throw ChatTemplateException.At(at, $"unsupported filter '{name}'");

    public override object? Evaluate(RenderContext context) =>
        _filter(target.Evaluate(context), arguments.Evaluate(context), context, At);
}

internal sealed class TestExpression(SourcePosition at, Expression target, string name, ArgumentExpressions arguments, bool negated)
    : Expression(at)
{
    private readonly JinjaTests.Test _test = JinjaTests.Find(name)
        ?? throw ChatTemplateException.At(at, $"unsupported test '{name}'");

    public override object? Evaluate(RenderContext context) =>
        _test(target.Evaluate(context), arguments.Evaluate(context).Positional, At) != negated;
}

internal sealed class NegateExpression(SourcePosition at, Expression operand, bool minus) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        object? value = operand.Evaluate(context);
        return value switch
        {
            long l when minus => checked(-l),
            double d when minus => -d,
            bool b when minus => b ? -1L : 0L,
            long or double => value,
            bool b => b ? 1L : 0L,
            JinjaUndefined undefined => throw ChatTemplateException.At(At, undefined.Description),
            _ => throw ChatTemplateException.At(At, $"bad operand type for unary {(minus ? '-' : '+')}: '{JinjaValues.TypeName(value)}'"),
        };
    }
}

internal sealed class NotExpression(SourcePosition at, Expression operand) : Expression(at)
{
    public override object? Evaluate(RenderContext context) => !JinjaValues.IsTruthy(operand.Evaluate(context));
}

internal sealed class ArithmeticExpression(SourcePosition at, string op, Expression left, Expression right) : Expression(at)
{
    public override object? Evaluate(RenderContext context) =>
        JinjaOperators.Arithmetic(op, left.Evaluate(context), right.Evaluate(context), context, At);
}

/// <summary><c>a ~ b ~ c</c>: every operand converted with str() and joined.</summary>
internal sealed class ConcatExpression(SourcePosition at, IReadOnlyList<Expression> parts) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        string[] texts = [.. parts.Select(part => JinjaFilters.ToText(part.Evaluate(context), part.At))];
        context.Produced(texts.Sum(text => (long)text.Length), At);
        return string.Concat(texts);
    }
}

/// <summary>A comparison chain, <c>a &lt; b &lt;= c</c> meaning <c>a &lt; b and b &lt;= c</c>, as in Python.</summary>
internal sealed class CompareExpression(SourcePosition at, Expression first, IReadOnlyList<(string Op, Expression Operand)> rest)
    : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        object? left = first.Evaluate(context);
        foreach ((string op, Expression operand) in rest)
        {
            object? right = operand.Evaluate(context);
            if (!Compare(op, left, right, operand.At))
                return false;
            left = right;
        }
        return true;
    }

    private static bool Compare(string op, object? left, object? right, SourcePosition at)
    {
        switch (op)
        {
            case "==": return JinjaValues.AreEqual(left, right);
            case "!=": return !JinjaValues.AreEqual(left, right);
            case "in": return JinjaOperators.Contains(right, left, at);
            case "not in": return !JinjaOperators.Contains(right, left, at);
        }
        if (left is JinjaUndefined leftUndefined)
            throw ChatTemplateException.At(at, leftUndefined.Description);
        if (right is JinjaUndefined rightUndefined)
            throw ChatTemplateException.At(at, rightUndefined.Description);
        int order = JinjaValues.Compare(left, right) ?? throw ChatTemplateException.At(at,
            $"'{op}' not supported between instances of '{JinjaValues.TypeName(left)}' and '{JinjaValues.TypeName(right)}'");
        return op switch
        {
            "<" => order < 0,
            "<=" => order <= 0,
            ">" => order > 0,
            _ => order >= 0,
        };
    }
}

/// <summary><c>a and b</c> / <c>a or b</c>: Python's short-circuit, returning the deciding operand itself.</summary>
internal sealed class LogicalExpression(SourcePosition at, bool isAnd, Expression left, Expression right) : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        object? value = left.Evaluate(context);
        return JinjaValues.IsTruthy(value) == isAnd ? right.Evaluate(context) : value;
    }
}

/// <summary><c>a if condition else b</c>; without else, a false condition gives undefined, as in Jinja.</summary>
internal sealed class ConditionalExpression(SourcePosition at, Expression condition, Expression whenTrue, Expression? whenFalse)
    : Expression(at)
{
    public override object? Evaluate(RenderContext context)
    {
        if (JinjaValues.IsTruthy(condition.Evaluate(context)))
            return whenTrue.Evaluate(context);
        return whenFalse is null ? new JinjaUndefined("the conditional expression has no else branch") : whenFalse.Evaluate(context);
    }
}
