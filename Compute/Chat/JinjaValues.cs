using System.Text.Json;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// Jinja's default Undefined: what a missing variable, key, attribute or index evaluates to. It prints as the
/// empty string, is falsy, iterates as empty and has length 0; arithmetic, attribute access, indexing and calls
/// on it fail with <see cref="Description"/> (Jinja's "'x' is undefined" message).
/// </summary>
internal sealed class JinjaUndefined(string description)
{
    public string Description { get; } = description;

    public static JinjaUndefined Named(string name) => new($"'{name}' is undefined");
}

/// <summary>A Jinja dict: Python dicts keep insertion order, and templates print and serialise them in that order.</summary>
internal sealed class JinjaDict : OrderedDictionary<string, object?>
{
    public JinjaDict()
        : base(StringComparer.Ordinal)
    {
    }
}

/// <summary>The object <c>namespace(...)</c> returns: the one value whose attributes <c>{% set ns.x = ... %}</c> may change.</summary>
internal sealed class JinjaNamespace
{
    public JinjaDict Attributes { get; } = [];
}

/// <summary>
/// What Jinja's map, select, selectattr, reject, rejectattr, reverse and items filters return: a Python generator,
/// consumed by iteration (a second loop over it sees nothing), always truthy, and without a length, so that
/// templates behave here as they do under Jinja (<c>|list</c> first to count it).
/// </summary>
internal sealed class JinjaGenerator(IReadOnlyList<object?> items)
{
    private int _next;

    /// <summary>The items not yet consumed; they are consumed by this call.</summary>
    public IReadOnlyList<object?> TakeRest()
    {
        var rest = new List<object?>(items.Count - _next);
        for (; _next < items.Count; _next++)
            rest.Add(items[_next]);
        return rest;
    }

    /// <summary>Python's <c>next(generator)</c>; false when exhausted.</summary>
    public bool TryTakeNext(out object? item)
    {
        if (_next < items.Count)
        {
            item = items[_next++];
            return true;
        }
        item = null;
        return false;
    }
}

/// <summary>Something a template can call: a global function, a macro, a method bound to its value.</summary>
internal abstract class JinjaCallable
{
    /// <summary>The name errors use, e.g. "range" or "str.split".</summary>
    public abstract string Name { get; }

    public abstract object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at);
}

/// <summary>The positional and keyword arguments of one call, bound to parameter names by <see cref="Bind"/>.</summary>
internal sealed class CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> named)
{
    /// <summary>Marks a parameter the call left out.</summary>
    public static readonly object Missing = new();

    public static readonly CallArguments None = new([], []);

    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyList<KeyValuePair<string, object?>> Named { get; } = named;

    /// <summary>
    /// The arguments in the order of <paramref name="parameters"/>, <see cref="Missing"/> where left out; too many
    /// arguments, an unknown keyword or one given twice is an error naming <paramref name="callee"/>.
    /// </summary>
    public object?[] Bind(string callee, SourcePosition at, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw ChatTemplateException.At(at, $"'{callee}' takes at most {parameters.Length} argument(s), {Positional.Count} given");
        var bound = new object?[parameters.Length];
        Array.Fill(bound, Missing);
        for (int i = 0; i < Positional.Count; i++)
            bound[i] = Positional[i];
        foreach ((string name, object? value) in Named)
        {
            int index = Array.IndexOf(parameters, name);
            if (index < 0)
                throw ChatTemplateException.At(at, $"'{callee}' got an unexpected keyword argument '{name}'");
            if (bound[index] != Missing)
                throw ChatTemplateException.At(at, $"'{callee}' got multiple values for argument '{name}'");
            bound[index] = value;
        }
        return bound;
    }
}

/// <summary>Python's value rules as Jinja applies them: truthiness, equality, ordering, iteration, type names.</summary>
internal static class JinjaValues
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        object?[] => "tuple",
        List<object?> => "list",
        JinjaDict => "dict",
        JinjaNamespace => "Namespace",
        JinjaUndefined => "Undefined",
        LoopState => "LoopContext",
        JinjaGenerator => "generator",
        JinjaCallable c => $"function '{c.Name}'",
        _ => value.GetType().Name,
    };

    public static bool IsTruthy(object? value) => value switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IReadOnlyList<object?> list => list.Count > 0,
        JinjaDict dict => dict.Count > 0,
        JinjaUndefined => false,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"not a number: {TypeName(value)}"),
    };

    /// <summary>Python's <c>==</c>: numbers across int, float and bool; lists and tuples never equal each other.</summary>
    public static bool AreEqual(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            if (left is double || right is double)
                return ToDouble(left) == ToDouble(right);
            return ToLong(left) == ToLong(right);
        }
        switch (left, right)
        {
            case (null, null): return true;
            case (string a, string b): return string.Equals(a, b, StringComparison.Ordinal);
            case (JinjaUndefined, JinjaUndefined): return true;
            case (object?[] a, object?[] b): return SequenceEqual(a, b);
            case (List<object?> a, List<object?> b): return SequenceEqual(a, b);
            case (JinjaDict a, JinjaDict b):
                if (a.Count != b.Count)
                    return false;
                foreach (KeyValuePair<string, object?> pair in a)
                {
                    if (!b.TryGetValue(pair.Key, out object? other) || !AreEqual(pair.Value, other))
                        return false;
                }
                return true;
            default: return ReferenceEquals(left, right);
        }
    }

    private static bool SequenceEqual(IReadOnlyList<object?> a, IReadOnlyList<object?> b)
    {
        if (a.Count != b.Count)
            return false;
        for (int i = 0; i < a.Count; i++)
        {
            if (!AreEqual(a[i], b[i]))
                return false;
        }
        return true;
    }

    public static long ToLong(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"not an integer: {TypeName(value)}"),
    };

    /// <summary>Python's ordering (&lt; and friends); null when Python would raise a TypeError.</summary>
    public static int? Compare(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            if (left is double || right is double)
                return ToDouble(left).CompareTo(ToDouble(right));
            return ToLong(left).CompareTo(ToLong(right));
        }
        switch (left, right)
        {
            case (string a, string b): return Math.Sign(string.CompareOrdinal(a, b));
            case (object?[] a, object?[] b): return CompareSequences(a, b);
            case (List<object?> a, List<object?> b): return CompareSequences(a, b);
            default: return null;
        }
    }

    private static int? CompareSequences(IReadOnlyList<object?> a, IReadOnlyList<object?> b)
    {
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            if (AreEqual(a[i], b[i]))
                continue;
            return Compare(a[i], b[i]);
        }
        return a.Count.CompareTo(b.Count);
    }

    /// <summary>The items a for loop (or a filter) walks: a dict's keys, a string's characters, nothing for undefined.</summary>
    public static IReadOnlyList<object?>? TryIterate(object? value) => value switch
    {
        IReadOnlyList<object?> list => list,
        JinjaDict dict => [.. dict.Keys],
        string s => [.. PythonText.CodePoints(s)],
        JinjaUndefined => [],
        JinjaGenerator generator => generator.TakeRest(),
        _ => null,
    };

    public static IReadOnlyList<object?> Iterate(object? value, SourcePosition at) =>
        TryIterate(value) ?? throw ChatTemplateException.At(at, $"'{TypeName(value)}' object is not iterable");

    /// <summary>The template value of a JSON element: objects become dicts, arrays lists, numbers int or float.</summary>
    public static object? FromJson(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var dict = new JinjaDict();
                foreach (JsonProperty property in element.EnumerateObject())
                    dict[property.Name] = FromJson(property.Value);
                return dict;
            case JsonValueKind.Array:
                var list = new List<object?>(element.GetArrayLength());
                foreach (JsonElement item in element.EnumerateArray())
                    list.Add(FromJson(item));
                return list;
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
                if (element.TryGetInt64(out long integer) && IsIntegerLiteral(element.GetRawText()))
                    return integer;
                return element.GetDouble();
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }

    // Python's json module reads 2.0 and 1e3 as floats; only digits (and a sign) make an int.
    private static bool IsIntegerLiteral(string raw) => !raw.AsSpan().TrimStart('-').ContainsAnyExceptInRange('0', '9');
}
