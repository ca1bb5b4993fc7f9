using System.Globalization;
using System.Text;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// The functions a chat template can call by name: Jinja's <c>range</c>, <c>namespace</c> and <c>dict</c>, and the
/// ones transformers adds, <c>raise_exception(message)</c> and <c>strftime_now(format)</c>.
/// </summary>
internal static class JinjaGlobals
{
    /// <summary>The sandbox's largest range, as Jinja's SandboxedEnvironment enforces it.</summary>
    public const int MaxRange = 100_000;

    public static void AddTo(Scope scope)
    {
        foreach (JinjaCallable function in new JinjaCallable[]
                 { new RangeFunction(), new NamespaceFunction(), new DictFunction(), new RaiseExceptionFunction(), new StrftimeNowFunction() })
        {
            scope.Set(function.Name, function);
        }
    }

    private sealed class RangeFunction : JinjaCallable
    {
        public override string Name => "range";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            if (arguments.Named.Count > 0 || arguments.Positional.Count is 0 or > 3)
                throw ChatTemplateException.At(at, "range takes 1 to 3 integer arguments: range(stop), range(start, stop[, step])");
            long[] values = [.. arguments.Positional.Select((value, i) => JinjaMethods.RequireInteger(value, Name, $"#{i + 1}", at))];
            (long start, long stop, long step) = values.Length switch
            {
                1 => (0L, values[0], 1L),
                2 => (values[0], values[1], 1L),
                _ => (values[0], values[1], values[2]),
            };
            if (step == 0)
                throw ChatTemplateException.At(at, "range() arg 3 must not be zero");
            long count = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
            if (count > MaxRange)
                throw ChatTemplateException.At(at, $"range too big: the sandbox allows at most {MaxRange} items");
            var items = new List<object?>((int)Math.Max(count, 0));
            for (long i = 0; i < count; i++)
                items.Add(start + i * step);
            return items;
        }
    }

    private sealed class NamespaceFunction : JinjaCallable
    {
        public override string Name => "namespace";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            var ns = new JinjaNamespace();
            foreach (KeyValuePair<string, object?> pair in DictFunction.Build(Name, arguments, at))
                ns.Attributes[pair.Key] = pair.Value;
            return ns;
        }
    }

    private sealed class DictFunction : JinjaCallable
    {
        public override string Name => "dict";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at) => Build(Name, arguments, at);

        /// <summary><c>f(mapping, **keywords)</c>: the mapping's items, then the keywords.</summary>
        public static JinjaDict Build(string callee, CallArguments arguments, SourcePosition at)
        {
            if (arguments.Positional.Count > 1 || (arguments.Positional.Count == 1 && arguments.Positional[0] is not JinjaDict))
                throw ChatTemplateException.At(at, $"{callee} takes at most one dict and keyword arguments");
            var dict = new JinjaDict();
            if (arguments.Positional.Count == 1)
            {
                foreach (KeyValuePair<string, object?> pair in (JinjaDict)arguments.Positional[0]!)
                    dict[pair.Key] = pair.Value;
            }
            foreach (KeyValuePair<string, object?> pair in arguments.Named)
                dict[pair.Key] = pair.Value;
            return dict;
        }
    }

    private sealed class RaiseExceptionFunction : JinjaCallable
    {
        public override string Name => "raise_exception";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            object? message = arguments.Bind(Name, at, "message")[0];
            throw ChatTemplateException.Raised(at, message == CallArguments.Missing ? "" : PythonText.Str(message));
        }
    }

    /// <summary>Python's <c>datetime.now().strftime(format)</c> for the directives date lines in templates use.</summary>
    private sealed class StrftimeNowFunction : JinjaCallable
    {
        public override string Name => "strftime_now";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            string format = JinjaMethods.RequireString(arguments.Bind(Name, at, "format")[0], Name, "format", at);
            DateTime now = context.Clock.GetLocalNow().DateTime;
            var text = new StringBuilder();
            for (int i = 0; i < format.Length; i++)
            {
                if (format[i] != '%')
                {
                    text.Append(format[i]);
                    continue;
                }
                if (++i == format.Length)
                    throw ChatTemplateException.At(at, "strftime_now: the format ends with a lone '%'");
                text.Append(format[i] switch
                {
                    'd' => now.ToString("dd", CultureInfo.InvariantCulture),
                    'm' => now.ToString("MM", CultureInfo.InvariantCulture),
                    'Y' => now.ToString("yyyy", CultureInfo.InvariantCulture),
                    'y' => now.ToString("yy", CultureInfo.InvariantCulture),
                    'H' => now.ToString("HH", CultureInfo.InvariantCulture),
                    'I' => now.ToString("hh", CultureInfo.InvariantCulture),
                    'M' => now.ToString("mm", CultureInfo.InvariantCulture),
                    'S' => now.ToString("ss", CultureInfo.InvariantCulture),
                    'p' => now.Hour < 12 ? "AM" : "PM",
                    'B' => now.ToString("MMMM", CultureInfo.InvariantCulture),
                    'b' => now.ToString("MMM", CultureInfo.InvariantCulture),
                    'A' => now.ToString("dddd", CultureInfo.InvariantCulture),
                    'a' => now.ToString("ddd", CultureInfo.InvariantCulture),
                    'j' => now.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                    '%' => "%",
                    _ => throw ChatTemplateException.At(at, $"strftime_now: unsupported directive '%{format[i]}'"),
                });
            }
            return text.ToString();
        }
    }
}
