namespace FtpCluster.Compute.Chat;

/// <summary>The Jinja tests (<c>x is defined</c>, <c>x is equalto y</c>) chat templates use.</summary>
internal static class JinjaTests
{
    public delegate bool Test(object? value, IReadOnlyList<object?> arguments, SourcePosition at);

    private static readonly Dictionary<string, Test> Tests = new(StringComparer.Ordinal)
    {
        ["defined"] = (v, a, at) => NoArguments("defined", a, at) && v is not JinjaUndefined,
        ["undefined"] = (v, a, at) => NoArguments("undefined", a, at) && v is JinjaUndefined,
        ["none"] = (v, a, at) => NoArguments("none", a, at) && v is null,
        ["string"] = (v, a, at) => NoArguments("string", a, at) && v is string,
        ["mapping"] = (v, a, at) => NoArguments("mapping", a, at) && v is JinjaDict,
        // Jinja's Undefined iterates (as empty) and has a length, so it passes both.
        ["iterable"] = (v, a, at) => NoArguments("iterable", a, at) && v is string or IReadOnlyList<object?> or JinjaDict or JinjaUndefined,
        ["sequence"] = (v, a, at) => NoArguments("sequence", a, at) && v is string or IReadOnlyList<object?> or JinjaDict or JinjaUndefined,
        ["number"] = (v, a, at) => NoArguments("number", a, at) && JinjaValues.IsNumber(v),
        ["integer"] = (v, a, at) => NoArguments("integer", a, at) && v is long,
        ["float"] = (v, a, at) => NoArguments("float", a, at) && v is double,
        ["boolean"] = (v, a, at) => NoArguments("boolean", a, at) && v is bool,
        ["true"] = (v, a, at) => NoArguments("true", a, at) && v is true,
        ["false"] = (v, a, at) => NoArguments("false", a, at) && v is false,
        ["callable"] = (v, a, at) => NoArguments("callable", a, at) && v is JinjaCallable,
        ["odd"] = (v, a, at) => NoArguments("odd", a, at) && Integer("odd", v, at) % 2 != 0,
        ["even"] = (v, a, at) => NoArguments("even", a, at) && Integer("even", v, at) % 2 == 0,
        ["divisibleby"] = (v, a, at) => Integer("divisibleby", v, at) % Integer("divisibleby", One("divisibleby", a, at), at) == 0,
        ["equalto"] = (v, a, at) => JinjaValues.AreEqual(v, One("equalto", a, at)),
        ["eq"] = (v, a, at) => JinjaValues.AreEqual(v, One("eq", a, at)),
        ["=="] = (v, a, at) => JinjaValues.AreEqual(v, One("==", a, at)),
        ["ne"] = (v, a, at) => !JinjaValues.AreEqual(v, One("ne", a, at)),
        ["!="] = (v, a, at) => !JinjaValues.AreEqual(v, One("!=", a, at)),
        ["sameas"] = (v, a, at) => SameAs(v, One("sameas", a, at)),
        ["in"] = (v, a, at) => JinjaOperators.Contains(One("in", a, at), v, at),
        ["lt"] = (v, a, at) => Order("lt", v, a, at) < 0,
        ["<"] = (v, a, at) => Order("<", v, a, at) < 0,
        ["le"] = (v, a, at) => Order("le", v, a, at) <= 0,
        ["<="] = (v, a, at) => Order("<=", v, a, at) <= 0,
        ["gt"] = (v, a, at) => Order("gt", v, a, at) > 0,
        [">"] = (v, a, at) => Order(">", v, a, at) > 0,
        ["ge"] = (v, a, at) => Order("ge", v, a, at) >= 0,
        [">="] = (v, a, at) => Order(">=", v, a, at) >= 0,
        ["lower"] = (v, a, at) => NoArguments("lower", a, at) && v is string s && string.Equals(s, s.ToLowerInvariant(), StringComparison.Ordinal),
        ["upper"] = (v, a, at) => NoArguments("upper", a, at) && v is string s && string.Equals(s, s.ToUpperInvariant(), StringComparison.Ordinal),
    };

    public static Test? Find(string name) => Tests.GetValueOrDefault(name);

    private static bool NoArguments(string test, IReadOnlyList<object?> arguments, SourcePosition at) =>
        arguments.Count == 0 ? true : throw ChatTemplateException.At(at, $"test '{test}' takes no arguments");

    private static object? One(string test, IReadOnlyList<object?> arguments, SourcePosition at) =>
        arguments.Count == 1 ? arguments[0] : throw ChatTemplateException.At(at, $"test '{test}' takes one argument");

    private static long Integer(string test, object? value, SourcePosition at) => value switch
    {
        long or bool => JinjaValues.ToLong(value),
        JinjaUndefined undefined => throw ChatTemplateException.At(at, undefined.Description),
        _ => throw ChatTemplateException.At(at, $"test '{test}' needs an integer, not '{JinjaValues.TypeName(value)}'"),
    };

    private static int Order(string test, object? value, IReadOnlyList<object?> arguments, SourcePosition at)
    {
        object? other = One(test, arguments, at);
        return JinjaValues.Compare(value, other) ?? throw ChatTemplateException.At(at,
            $"test '{test}' cannot order '{JinjaValues.TypeName(value)}' and '{JinjaValues.TypeName(other)}'");
    }

    // Python's "is": the constants are singletons, small values compare by value as CPython caches them.
    private static bool SameAs(object? value, object? other) => (value, other) switch
    {
        (null, null) => true,
        (bool a, bool b) => a == b,
        (JinjaUndefined, _) or (_, JinjaUndefined) => false,
        _ => ReferenceEquals(value, other),
    };
}
