namespace FtpCluster.Compute.Chat;

/// <summary>A method looked up on a value (<c>message.get</c>, <c>text.strip</c>), called when the template calls it.</summary>
internal sealed class BoundMethod(object target, string method) : JinjaCallable
{
    public override string Name => $"{JinjaValues.TypeName(target)}.{method}";

    public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at) => target switch
    {
        string s => JinjaMethods.CallStringMethod(s, method, arguments, context, at),
        JinjaDict dict => JinjaMethods.CallDictMethod(dict, method, arguments, at),
        _ => throw ChatTemplateException.At(at, $"unsupported method '{method}' on a '{JinjaValues.TypeName(target)}' value"),
    };
}

/// <summary>The Python string and dict methods chat templates call; dicts and lists have no mutating methods, as in the sandbox.</summary>
internal static class JinjaMethods
{
    private static readonly HashSet<string> StringMethods =
        ["strip", "lstrip", "rstrip", "startswith", "endswith", "split", "upper", "lower", "replace", "title", "capitalize"];

    private static readonly HashSet<string> DictMethods = ["items", "keys", "values", "get"];

    public static bool IsStringMethod(string name) => StringMethods.Contains(name);

    public static bool IsDictMethod(string name) => DictMethods.Contains(name);

    public static object? CallStringMethod(string s, string method, CallArguments arguments, RenderContext context, SourcePosition at)
    {
        string callee = "str." + method;
        switch (method)
        {
            case "strip" or "lstrip" or "rstrip":
            {
                object? chars = arguments.Bind(callee, at, "chars")[0];
                char[] strip = chars == CallArguments.Missing || chars is null
                    ? PythonText.WhiteSpaceChars
                    : RequireString(chars, callee, "chars", at).ToCharArray();
                return method switch
                {
                    "strip" => s.Trim(strip),
                    "lstrip" => s.TrimStart(strip),
                    _ => s.TrimEnd(strip),
                };
            }
            case "startswith" or "endswith":
            {
                object? affix = arguments.Bind(callee, at, "prefix")[0];
                IEnumerable<object?> candidates = affix is object?[] tuple ? tuple : [affix];
                return candidates.Any(candidate =>
                {
                    string text = RequireString(candidate, callee, "prefix", at);
                    return method == "startswith" ? s.StartsWith(text, StringComparison.Ordinal) : s.EndsWith(text, StringComparison.Ordinal);
                });
            }
            case "split":
            {
                object?[] bound = arguments.Bind(callee, at, "sep", "maxsplit");
                string? separator = bound[0] == CallArguments.Missing || bound[0] is null ? null : RequireString(bound[0], callee, "sep", at);
                if (separator is "")
                    throw ChatTemplateException.At(at, "str.split: empty separator");
                long maxSplit = bound[1] == CallArguments.Missing ? -1 : RequireInteger(bound[1], callee, "maxsplit", at);
                return PythonText.Split(s, separator, maxSplit);
            }
            case "upper":
                arguments.Bind(callee, at);
                return s.ToUpperInvariant();
            case "lower":
                arguments.Bind(callee, at);
                return s.ToLowerInvariant();
            case "title":
                arguments.Bind(callee, at);
                return PythonText.PythonTitle(s);
            case "capitalize":
                arguments.Bind(callee, at);
                return PythonText.Capitalize(s);
            case "replace":
            {
                object?[] bound = arguments.Bind(callee, at, "old", "new", "count");
                if (bound[0] == CallArguments.Missing || bound[1] == CallArguments.Missing)
                    throw ChatTemplateException.At(at, "str.replace takes the old and the new string");
                long count = bound[2] == CallArguments.Missing ? -1 : RequireInteger(bound[2], callee, "count", at);
                return Replace(s, RequireString(bound[0], callee, "old", at), RequireString(bound[1], callee, "new", at), count, context, at);
            }
            default:
                throw ChatTemplateException.At(at, $"unsupported method '{method}' on a 'str' value");
        }
    }

    public static object? CallDictMethod(JinjaDict dict, string method, CallArguments arguments, SourcePosition at)
    {
        string callee = "dict." + method;
        switch (method)
        {
            case "items":
                arguments.Bind(callee, at);
                return dict.Select(pair => (object?)new object?[] { pair.Key, pair.Value }).ToList();
            case "keys":
                arguments.Bind(callee, at);
                return dict.Keys.Cast<object?>().ToList();
            case "values":
                arguments.Bind(callee, at);
                return dict.Values.ToList();
            case "get":
            {
                object?[] bound = arguments.Bind(callee, at, "key", "default");
                if (bound[0] == CallArguments.Missing)
                    throw ChatTemplateException.At(at, "dict.get takes a key");
                object? fallback = bound[1] == CallArguments.Missing ? null : bound[1];
                return bound[0] is string key && dict.TryGetValue(key, out object? value) ? value : fallback;
            }
            default:
                throw ChatTemplateException.At(at, $"unsupported method '{method}' on a 'dict' value");
        }
    }

    /// <summary>Python's <c>str.replace(old, new, count)</c>, including an empty <paramref name="old"/>.</summary>
    public static string Replace(string s, string old, string replacement, long count, RenderContext context, SourcePosition at)
    {
        var text = new System.Text.StringBuilder();
        long done = 0;
        if (old.Length == 0)
        {
            List<string> points = PythonText.CodePoints(s);
            for (int i = 0; i <= points.Count; i++)
            {
                if (count < 0 || done < count)
                {
                    text.Append(replacement);
                    done++;
                }
                if (i < points.Count)
                    text.Append(points[i]);
                if (text.Length > context.Limits.MaxOutputChars)
                    break;
            }
        }
        else
        {
            int from = 0;
            while (count < 0 || done < count)
            {
                int found = s.IndexOf(old, from, StringComparison.Ordinal);
                if (found < 0)
                    break;
                text.Append(s, from, found - from).Append(replacement);
                from = found + old.Length;
                done++;
                if (text.Length > context.Limits.MaxOutputChars)
                    break;
            }
            text.Append(s, from, s.Length - from);
        }
        context.Produced(text.Length, at);
        return text.ToString();
    }

    public static string RequireString(object? value, string callee, string parameter, SourcePosition at) =>
        value as string ?? throw ChatTemplateException.At(at,
            $"{callee}: argument '{parameter}' must be a string, not '{JinjaValues.TypeName(value)}'");

    public static long RequireInteger(object? value, string callee, string parameter, SourcePosition at) =>
        value is long or bool
            ? JinjaValues.ToLong(value)
            : throw ChatTemplateException.At(at, $"{callee}: argument '{parameter}' must be an integer, not '{JinjaValues.TypeName(value)}'");
}
