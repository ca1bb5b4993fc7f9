using System.Globalization;
using System.Text;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// The Jinja filters chat templates use, with Jinja's behaviour on undefined values (empty, length 0) and
/// transformers' <c>tojson</c>. map, select(attr) and reject(attr) give generators, as in Jinja.
/// </summary>
internal static class JinjaFilters
{
    public delegate object? Filter(object? value, CallArguments arguments, RenderContext context, SourcePosition at);

    private static readonly Dictionary<string, Filter> Filters = new(StringComparer.Ordinal)
    {
        ["trim"] = Trim,
        ["length"] = Length,
        ["count"] = Length,
        ["upper"] = (v, a, c, at) => Text("upper", v, a, at).ToUpperInvariant(),
        ["lower"] = (v, a, c, at) => Text("lower", v, a, at).ToLowerInvariant(),
        ["capitalize"] = (v, a, c, at) => PythonText.Capitalize(Text("capitalize", v, a, at)),
        ["title"] = (v, a, c, at) => JinjaTitle(Text("title", v, a, at)),
        ["string"] = (v, a, c, at) => Text("string", v, a, at),
        ["safe"] = (v, a, c, at) => Text("safe", v, a, at),
        ["first"] = First,
        ["last"] = Last,
        ["list"] = ToList,
        ["join"] = Join,
        ["default"] = Default,
        ["d"] = Default,
        ["select"] = (v, a, c, at) => Select("select", v, a, c, at, byAttribute: false, keep: true),
        ["reject"] = (v, a, c, at) => Select("reject", v, a, c, at, byAttribute: false, keep: false),
        ["selectattr"] = (v, a, c, at) => Select("selectattr", v, a, c, at, byAttribute: true, keep: true),
        ["rejectattr"] = (v, a, c, at) => Select("rejectattr", v, a, c, at, byAttribute: true, keep: false),
        ["map"] = Map,
        ["tojson"] = ToJson,
        ["int"] = ToInt,
        ["float"] = ToFloat,
        ["abs"] = Abs,
        ["replace"] = Replace,
        ["items"] = Items,
        ["dictsort"] = DictSort,
        ["reverse"] = Reverse,
    };

    public static Filter? Find(string name) => Filters.GetValueOrDefault(name);

    /// <summary>Python's <c>str(value)</c> for <c>~</c>, join and printing; values Python would print with an address are refused.</summary>
    public static string ToText(object? value, SourcePosition at) => value switch
    {
        JinjaCallable callable => throw ChatTemplateException.At(at, $"cannot turn {callable.Name} into text: call it with ()"),
        JinjaGenerator => throw ChatTemplateException.At(at, "cannot turn a generator into text: pipe it through |list or |join"),
        LoopState => throw ChatTemplateException.At(at, "cannot turn the loop variable into text"),
        _ => PythonText.Str(value),
    };

    private static object? ToList(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("list", at);
        return new List<object?>(JinjaValues.Iterate(value, at));
    }

    private static string Text(string filter, object? value, CallArguments arguments, SourcePosition at)
    {
        arguments.Bind(filter, at);
        return ToText(value, at);
    }

    private static bool Given(object? argument) => argument != CallArguments.Missing;

    private static object? Trim(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object? chars = arguments.Bind("trim", at, "chars")[0];
        string text = ToText(value, at);
        return Given(chars) && chars is not null ? text.Trim(JinjaMethods.RequireString(chars, "trim", "chars", at).ToCharArray()) : text.Trim(PythonText.WhiteSpaceChars);
    }

    private static object? Length(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("length", at);
        return value switch
        {
            string s => (long)PythonText.CodePointCount(s),
            IReadOnlyList<object?> list => (long)list.Count,
            JinjaDict dict => (long)dict.Count,
            JinjaNamespace ns => throw ChatTemplateException.At(at, "object of type 'Namespace' has no len()"),
            JinjaUndefined => 0L,
            _ => throw ChatTemplateException.At(at, $"object of type '{JinjaValues.TypeName(value)}' has no len()"),
        };
    }

    private static object? First(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("first", at);
        if (value is JinjaGenerator generator)
            return generator.TryTakeNext(out object? next) ? next : new JinjaUndefined("No first item, sequence was empty.");
        IReadOnlyList<object?> items = JinjaValues.Iterate(value, at);
        return items.Count > 0 ? items[0] : new JinjaUndefined("No first item, sequence was empty.");
    }

    private static object? Last(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("last", at);
        if (value is JinjaGenerator)
            throw ChatTemplateException.At(at, "'generator' object is not reversible: pipe it through |list before |last");
        IReadOnlyList<object?> items = JinjaValues.Iterate(value, at);
        return items.Count > 0 ? items[^1] : new JinjaUndefined("No last item, sequence was empty.");
    }

    private static object? Join(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("join", at, "d", "attribute");
        string separator = Given(bound[0]) ? ToText(bound[0], at) : "";
        IEnumerable<object?> items = JinjaValues.Iterate(value, at);
        if (Given(bound[1]) && bound[1] is not null)
        {
            Func<object?, object?> getter = AttributeGetter(bound[1], at);
            items = items.Select(getter);
        }
        var text = new StringBuilder();
        bool first = true;
        foreach (object? item in items)
        {
            if (!first)
                text.Append(separator);
            first = false;
            text.Append(ToText(item, at));
            if (text.Length > context.Limits.MaxOutputChars)
                break;
        }
        context.Produced(text.Length, at);
        return text.ToString();
    }

    private static object? Default(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("default", at, "default_value", "boolean");
        object? fallback = Given(bound[0]) ? bound[0] : "";
        bool boolean = Given(bound[1]) && JinjaValues.IsTruthy(bound[1]);
        return value is JinjaUndefined || (boolean && !JinjaValues.IsTruthy(value)) ? fallback : value;
    }

    /// <summary>Jinja's attribute getter for selectattr, map and join: a dotted path, each part looked up as an item.</summary>
    private static Func<object?, object?> AttributeGetter(object? attribute, SourcePosition at)
    {
        object?[] parts = attribute switch
        {
            string path => [.. path.Split('.').Select(part => long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long index) ? (object?)index : part)],
            long index => [index],
            _ => throw ChatTemplateException.At(at, $"attribute must be a string or an integer, not '{JinjaValues.TypeName(attribute)}'"),
        };
        return item =>
        {
            foreach (object? part in parts)
                item = JinjaOperators.GetItem(item, part, at);
            return item;
        };
    }

    private static object? Select(string filter, object? value, CallArguments arguments, RenderContext context, SourcePosition at, bool byAttribute, bool keep)
    {
        if (arguments.Named.Count > 0)
            throw ChatTemplateException.At(at, $"'{filter}' takes positional arguments only");
        IReadOnlyList<object?> rest = arguments.Positional;
        Func<object?, object?> getter = item => item;
        if (byAttribute)
        {
            if (rest.Count == 0)
                throw ChatTemplateException.At(at, $"'{filter}' needs the attribute to test");
            getter = AttributeGetter(rest[0], at);
            rest = [.. rest.Skip(1)];
        }
        Func<object?, bool> test = JinjaValues.IsTruthy;
        if (rest.Count > 0)
        {
            string testName = JinjaMethods.RequireString(rest[0], filter, "test", at);
            JinjaTests.Test found = JinjaTests.Find(testName) ?? throw ChatTemplateException.At(at, $"unsupported test '{testName}'");
            object?[] testArguments = [.. rest.Skip(1)];
            test = item => found(item, testArguments, at);
        }
        var selected = new List<object?>();
        foreach (object? item in JinjaValues.Iterate(value, at))
        {
            if (test(getter(item)) == keep)
                selected.Add(item);
        }
        return new JinjaGenerator(selected);
    }

    private static object? Map(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        Func<object?, object?> transform;
        if (arguments.Positional.Count == 0)
        {
            object?[] bound = arguments.Bind("map", at, "attribute", "default");
            if (!Given(bound[0]))
                throw ChatTemplateException.At(at, "'map' needs a filter name or attribute=...");
            Func<object?, object?> getter = AttributeGetter(bound[0], at);
            object? fallback = bound[1];
            transform = Given(fallback)
                ? item => getter(item) is JinjaUndefined ? fallback : getter(item)
                : getter;
        }
        else
        {
            string filterName = JinjaMethods.RequireString(arguments.Positional[0], "map", "filter", at);
            Filter filter = Find(filterName) ?? throw ChatTemplateException.At(at, $"unsupported filter '{filterName}'");
            var filterArguments = new CallArguments([.. arguments.Positional.Skip(1)], arguments.Named);
            transform = item => filter(item, filterArguments, context, at);
        }
        return new JinjaGenerator([.. JinjaValues.Iterate(value, at).Select(transform)]);
    }

    private static object? ToJson(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("tojson", at, "ensure_ascii", "indent", "separators", "sort_keys");
        string json = PythonJson.Dumps(
            value,
            indent: Given(bound[1]) ? bound[1] : null,
            separators: Given(bound[2]) ? bound[2] : null,
            sortKeys: Given(bound[3]) && JinjaValues.IsTruthy(bound[3]),
            ensureAscii: Given(bound[0]) && JinjaValues.IsTruthy(bound[0]),
            context,
            at);
        context.Produced(json.Length, at);
        return json;
    }

    private static object? ToInt(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("int", at, "default", "base");
        object? fallback = Given(bound[0]) ? bound[0] : 0L;
        if (Given(bound[1]) && !JinjaValues.AreEqual(bound[1], 10L))
            throw ChatTemplateException.At(at, "unsupported argument: int only converts base 10");
        switch (value)
        {
            case long or bool:
                return JinjaValues.ToLong(value);
            case double d:
                return double.IsFinite(d) && Math.Abs(d) < 9.2e18 ? (long)Math.Truncate(d) : fallback;
            case string s:
                string digits = s.Trim(PythonText.WhiteSpaceChars).Replace("_", "", StringComparison.Ordinal);
                if (long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer))
                    return integer;
                if (double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out double real) && double.IsFinite(real) && Math.Abs(real) < 9.2e18)
                    return (long)Math.Truncate(real);
                return fallback;
            case JinjaUndefined undefined:
                throw ChatTemplateException.At(at, undefined.Description);
            default:
                return fallback;
        }
    }

    private static object? ToFloat(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object? fallback = arguments.Bind("float", at, "default")[0];
        fallback = Given(fallback) ? fallback : 0.0;
        return value switch
        {
            long or bool or double => JinjaValues.ToDouble(value),
            string s when double.TryParse(s.Trim(PythonText.WhiteSpaceChars), NumberStyles.Float, CultureInfo.InvariantCulture, out double real) => real,
            JinjaUndefined undefined => throw ChatTemplateException.At(at, undefined.Description),
            _ => fallback,
        };
    }

    private static object? Abs(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("abs", at);
        // Arms typed object: a switch over long and double arms would otherwise widen every long to double.
        return value switch
        {
            long l => (object)checked(Math.Abs(l)),
            bool b => b ? 1L : 0L,
            double d => Math.Abs(d),
            JinjaUndefined undefined => throw ChatTemplateException.At(at, undefined.Description),
            _ => throw ChatTemplateException.At(at, $"bad operand type for abs(): '{JinjaValues.TypeName(value)}'"),
        };
    }

    private static object? Replace(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("replace", at, "old", "new", "count");
        if (!Given(bound[0]) || !Given(bound[1]))
            throw ChatTemplateException.At(at, "'replace' takes the old and the new string");
        long count = Given(bound[2]) && bound[2] is not null ? JinjaMethods.RequireInteger(bound[2], "replace", "count", at) : -1;
        return JinjaMethods.Replace(ToText(value, at), ToText(bound[0], at), ToText(bound[1], at), count, context, at);
    }

    private static object? Items(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("items", at);
        return value switch
        {
            JinjaDict dict => new JinjaGenerator([.. dict.Select(pair => (object?)new object?[] { pair.Key, pair.Value })]),
            JinjaUndefined => new JinjaGenerator([]),
            _ => throw ChatTemplateException.At(at, $"'items': can only get item pairs from a mapping, not '{JinjaValues.TypeName(value)}'"),
        };
    }

    private static object? DictSort(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        object?[] bound = arguments.Bind("dictsort", at, "case_sensitive", "by", "reverse");
        if (value is not JinjaDict dict)
            throw ChatTemplateException.At(at, $"'dictsort' sorts a dict, not '{JinjaValues.TypeName(value)}'");
        bool caseSensitive = Given(bound[0]) && JinjaValues.IsTruthy(bound[0]);
        object? by = Given(bound[1]) ? bound[1] : "key";
        int position = by switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw ChatTemplateException.At(at, "'dictsort': by must be 'key' or 'value'"),
        };
        bool reverse = Given(bound[2]) && JinjaValues.IsTruthy(bound[2]);
        List<object?[]> pairs = [.. dict.Select(pair => new object?[] { pair.Key, pair.Value })];
        object? SortKey(object?[] pair) => !caseSensitive && pair[position] is string s ? s.ToLowerInvariant() : pair[position];
        var ordered = pairs.Select((pair, index) => (pair, index)).ToList();
        ordered.Sort((a, b) =>
        {
            int order = JinjaValues.Compare(SortKey(a.pair), SortKey(b.pair))
                ?? throw ChatTemplateException.At(at, "'dictsort': the values cannot be ordered");
            return order != 0 ? (reverse ? -order : order) : a.index.CompareTo(b.index);
        });
        return ordered.Select(entry => (object?)entry.pair).ToList();
    }

    private static object? Reverse(object? value, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        arguments.Bind("reverse", at);
        return value switch
        {
            string s => string.Concat(PythonText.CodePoints(s).AsEnumerable().Reverse()),
            IReadOnlyList<object?> list => new JinjaGenerator([.. list.Reverse()]),
            _ => throw ChatTemplateException.At(at, $"'reverse': argument is not reversible: '{JinjaValues.TypeName(value)}'"),
        };
    }

    /// <summary>Jinja's title filter: each word after a space, dash or opening bracket starts upper-case, the rest lower.</summary>
    private static string JinjaTitle(string s)
    {
        var text = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (char c in s)
        {
            bool separator = PythonText.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            text.Append(separator ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = separator;
        }
        return text.ToString();
    }
}
