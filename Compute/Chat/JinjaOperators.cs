namespace FtpCluster.Compute.Chat;

/// <summary>
/// Jinja's attribute, item and slice access and Python's arithmetic on template values. A failed lookup gives
/// <see cref="JinjaUndefined"/> (as Jinja's getattr and getitem do); a lookup on undefined fails with its message.
/// </summary>
internal static class JinjaOperators
{
    public static object? GetAttribute(object? target, string name, SourcePosition at)
    {
        switch (target)
        {
            case JinjaUndefined undefined:
                throw ChatTemplateException.At(at, undefined.Description);
            case JinjaDict dict:
                if (JinjaMethods.IsDictMethod(name))
                    return new BoundMethod(dict, name);
                return dict.TryGetValue(name, out object? value) ? value : new JinjaUndefined($"'dict object' has no attribute '{name}'");
            case string s when JinjaMethods.IsStringMethod(name):
                return new BoundMethod(s, name);
            case JinjaNamespace ns:
                return ns.Attributes.TryGetValue(name, out object? attribute) ? attribute : new JinjaUndefined($"'Namespace' object has no attribute '{name}'");
            case LoopState loop:
                return loop.Attribute(name);
            default:
                return new JinjaUndefined($"'{JinjaValues.TypeName(target)} object' has no attribute '{name}'");
        }
    }

    public static object? GetItem(object? target, object? key, SourcePosition at)
    {
        if (target is JinjaUndefined undefined)
            throw ChatTemplateException.At(at, undefined.Description);
        switch (target, key)
        {
            case (JinjaDict dict, string name):
                return dict.TryGetValue(name, out object? value) ? value : new JinjaUndefined($"'dict object' has no attribute '{name}'");
            case (IReadOnlyList<object?> list, long or bool):
                long index = JinjaValues.ToLong(key);
                long position = index < 0 ? index + list.Count : index;
                return position >= 0 && position < list.Count
                    ? list[(int)position]
                    : new JinjaUndefined($"'{JinjaValues.TypeName(target)} object' has no element {index}");
            case (string s, long or bool):
                List<string> points = PythonText.CodePoints(s);
                long charIndex = JinjaValues.ToLong(key);
                long charPosition = charIndex < 0 ? charIndex + points.Count : charIndex;
                return charPosition >= 0 && charPosition < points.Count
                    ? points[(int)charPosition]
                    : new JinjaUndefined($"'str object' has no element {charIndex}");
            case (_, string attribute):
                return GetAttribute(target, attribute, at);
            default:
                return new JinjaUndefined($"'{JinjaValues.TypeName(target)} object' has no element {PythonText.Repr(key)}");
        }
    }

    /// <summary>Python's <c>target[start:stop:step]</c> on a list, tuple or string (by code point).</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step, SourcePosition at)
    {
        if (target is JinjaUndefined undefined)
            throw ChatTemplateException.At(at, undefined.Description);
        IReadOnlyList<object?> items = target switch
        {
            IReadOnlyList<object?> list => list,
            string s => [.. PythonText.CodePoints(s)],
            _ => throw ChatTemplateException.At(at, $"cannot slice a '{JinjaValues.TypeName(target)}' value"),
        };
        long stepValue = step is null ? 1 : SliceBound(step, at);
        if (stepValue == 0)
            throw ChatTemplateException.At(at, "slice step cannot be zero");
        int count = items.Count;
        long lower = stepValue > 0 ? 0 : -1;
        long upper = stepValue > 0 ? count : count - 1;
        long first = start is null ? (stepValue > 0 ? lower : upper) : Clamp(SliceBound(start, at), count, lower, upper);
        long last = stop is null ? (stepValue > 0 ? upper : lower) : Clamp(SliceBound(stop, at), count, lower, upper);

        var result = new List<object?>();
        for (long i = first; stepValue > 0 ? i < last : i > last; i += stepValue)
            result.Add(items[(int)i]);
        return target switch
        {
            string => string.Concat(result.Cast<string>()),
            object?[] => result.ToArray(),
            _ => result,
        };
    }

    private static long SliceBound(object? value, SourcePosition at) => value switch
    {
        long or bool => JinjaValues.ToLong(value),
        _ => throw ChatTemplateException.At(at, $"slice indices must be integers or none, not '{JinjaValues.TypeName(value)}'"),
    };

    private static long Clamp(long index, int count, long lower, long upper)
    {
        if (index < 0)
            index += count;
        return Math.Clamp(index, lower, upper);
    }

    /// <summary>Python's binary arithmetic: + - * / // % ** on numbers, + on strings and lists, string * int.</summary>
    public static object? Arithmetic(string op, object? left, object? right, RenderContext context, SourcePosition at)
    {
        if (left is JinjaUndefined leftUndefined)
            throw ChatTemplateException.At(at, leftUndefined.Description);
        if (right is JinjaUndefined rightUndefined)
            throw ChatTemplateException.At(at, rightUndefined.Description);

        if (JinjaValues.IsNumber(left) && JinjaValues.IsNumber(right))
            return NumberArithmetic(op, left, right, at);

        switch (op, left, right)
        {
            case ("+", string a, string b):
                context.Produced(a.Length + (long)b.Length, at);
                return a + b;
            case ("+", List<object?> a, List<object?> b):
                // Items count as characters of work, so lists doubled in a loop are bounded as strings are.
                context.Produced(a.Count + (long)b.Count, at);
                return new List<object?>([.. a, .. b]);
            case ("+", object?[] a, object?[] b):
                context.Produced(a.Length + (long)b.Length, at);
                return (object?[])[.. a, .. b];
            case ("*", string s, long or bool):
                return Repeat(s, JinjaValues.ToLong(right), context, at);
            case ("*", long or bool, string s):
                return Repeat(s, JinjaValues.ToLong(left), context, at);
        }
        throw ChatTemplateException.At(at,
            $"unsupported operand types for {op}: '{JinjaValues.TypeName(left)}' and '{JinjaValues.TypeName(right)}'");
    }

    private static string Repeat(string s, long times, RenderContext context, SourcePosition at)
    {
        if (times <= 0 || s.Length == 0)
            return "";
        context.Produced(s.Length * Math.Min(times, int.MaxValue), at);
        return string.Concat(Enumerable.Repeat(s, (int)times));
    }

    private static object NumberArithmetic(string op, object? left, object? right, SourcePosition at)
    {
        bool integers = left is not double && right is not double;
        try
        {
            if (integers)
            {
                long a = JinjaValues.ToLong(left), b = JinjaValues.ToLong(right);
                switch (op)
                {
                    case "+": return checked(a + b);
                    case "-": return checked(a - b);
                    case "*": return checked(a * b);
                    case "/":
                        if (b == 0)
                            throw ChatTemplateException.At(at, "division by zero");
                        return (double)a / b;
                    case "//":
                    case "%":
                        if (b == 0)
                            throw ChatTemplateException.At(at, "integer division or modulo by zero");
                        long quotient = a / b;
                        if ((a % b != 0) && ((a < 0) != (b < 0)))
                            quotient--;
                        return op == "//" ? quotient : a - quotient * b;
                    case "**":
                        if (b < 0)
                            return Math.Pow(a, b);
                        long power = 1;
                        for (long i = 0; i < b; i++)
                            power = checked(power * a);
                        return power;
                }
            }
            else
            {
                double a = JinjaValues.ToDouble(left), b = JinjaValues.ToDouble(right);
                switch (op)
                {
                    case "+": return a + b;
                    case "-": return a - b;
                    case "*": return a * b;
                    case "**": return Math.Pow(a, b);
                    case "/" or "//" or "%" when b == 0:
                        throw ChatTemplateException.At(at, "float division by zero");
                    case "/": return a / b;
                    case "//": return Math.Floor(a / b);
                    case "%":
                        double remainder = a % b;
                        return remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder;
                }
            }
        }
        catch (OverflowException)
        {
            throw ChatTemplateException.At(at, $"integer overflow in {op}: the result exceeds 64 bits");
        }
        throw ChatTemplateException.At(at, $"unsupported operator '{op}'");
    }

    /// <summary>Python's <c>needle in haystack</c>.</summary>
    public static bool Contains(object? haystack, object? needle, SourcePosition at) => haystack switch
    {
        string s when needle is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw ChatTemplateException.At(at, $"'in <string>' requires string as left operand, not '{JinjaValues.TypeName(needle)}'"),
        JinjaDict dict => needle is string key && dict.ContainsKey(key),
        IReadOnlyList<object?> list => list.Any(item => JinjaValues.AreEqual(item, needle)),
        JinjaUndefined => false,
        JinjaGenerator generator => generator.TakeRest().Any(item => JinjaValues.AreEqual(item, needle)),
        _ => throw ChatTemplateException.At(at, $"argument of type '{JinjaValues.TypeName(haystack)}' is not iterable"),
    };
}
