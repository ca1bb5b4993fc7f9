using System.Globalization;
using System.Text;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// Python's <c>json.dumps</c> as transformers' <c>tojson</c> filter calls it (ensure_ascii off unless asked, HTML
/// characters left alone): <c>", "</c> and <c>": "</c> separators, or <c>","</c> and newlines when indented;
/// floats as Python's repr, NaN and Infinity spelled as Python spells them.
/// </summary>
internal sealed class PythonJson
{
    private readonly StringBuilder _text = new();
    private readonly string? _indent;
    private readonly string _itemSeparator;
    private readonly string _keySeparator;
    private readonly bool _sortKeys;
    private readonly bool _ensureAscii;
    private readonly RenderContext _context;
    private readonly SourcePosition _at;

    private PythonJson(string? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii, RenderContext context, SourcePosition at)
    {
        _indent = indent;
        _itemSeparator = itemSeparator;
        _keySeparator = keySeparator;
        _sortKeys = sortKeys;
        _ensureAscii = ensureAscii;
        _context = context;
        _at = at;
    }

    /// <summary>
    /// <paramref name="indent"/> is Python's: null for one line, a number of spaces or a string per level.
    /// <paramref name="separators"/> is the (item, key) pair, or null for the default that goes with the indent.
    /// </summary>
    public static string Dumps(object? value, object? indent, object? separators, bool sortKeys, bool ensureAscii, RenderContext context, SourcePosition at)
    {
        string? indentText = indent switch
        {
            null => null,
            long or bool => new string(' ', (int)Math.Clamp(JinjaValues.ToLong(indent), 0, 1024)),
            string s => s,
            _ => throw ChatTemplateException.At(at, $"tojson: indent must be an integer or a string, not '{JinjaValues.TypeName(indent)}'"),
        };
        (string item, string key) = separators switch
        {
            null => (indentText is null ? ", " : ",", ": "),
            IReadOnlyList<object?> { Count: 2 } pair when pair[0] is string i && pair[1] is string k => (i, k),
            _ => throw ChatTemplateException.At(at, "tojson: separators must be an (item, key) pair of strings"),
        };
        var json = new PythonJson(indentText, item, key, sortKeys, ensureAscii, context, at);
        json.Write(value, 0);
        return json._text.ToString();
    }

    private void Write(object? value, int depth)
    {
        if (depth > _context.Limits.MaxCallDepth)
            throw ChatTemplateException.At(_at, $"tojson: values nest deeper than {_context.Limits.MaxCallDepth}");
        if (_text.Length > _context.Limits.MaxOutputChars)
            throw ChatTemplateException.At(_at, $"tojson: the JSON exceeds {_context.Limits.MaxOutputChars} characters");
        switch (value)
        {
            case null: _text.Append("null"); break;
            case bool b: _text.Append(b ? "true" : "false"); break;
            case long l: _text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: _text.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : PythonText.FloatRepr(d)); break;
            case string s: WriteString(s); break;
            case IReadOnlyList<object?> list:
                WriteContainer('[', ']', list.Count, depth, i => Write(list[i], depth + 1));
                break;
            case JinjaDict dict:
                List<KeyValuePair<string, object?>> pairs = [.. dict];
                if (_sortKeys)
                    pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
                WriteContainer('{', '}', pairs.Count, depth, i =>
                {
                    WriteString(pairs[i].Key);
                    _text.Append(_keySeparator);
                    Write(pairs[i].Value, depth + 1);
                });
                break;
            default:
                throw ChatTemplateException.At(_at, $"tojson: Object of type {JinjaValues.TypeName(value)} is not JSON serializable");
        }
    }

    private void WriteContainer(char open, char close, int count, int depth, Action<int> writeItem)
    {
        _text.Append(open);
        if (count == 0)
        {
            _text.Append(close);
            return;
        }
        for (int i = 0; i < count; i++)
        {
            if (i > 0)
                _text.Append(_itemSeparator);
            if (_indent is not null)
                NewLine(depth + 1);
            writeItem(i);
        }
        if (_indent is not null)
            NewLine(depth);
        _text.Append(close);
    }

    private void NewLine(int depth)
    {
        _text.Append('\n');
        for (int i = 0; i < depth; i++)
            _text.Append(_indent);
    }

    private void WriteString(string s)
    {
        _text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': _text.Append("\\\""); break;
                case '\\': _text.Append("\\\\"); break;
                case '\n': _text.Append("\\n"); break;
                case '\r': _text.Append("\\r"); break;
                case '\t': _text.Append("\\t"); break;
                case '\b': _text.Append("\\b"); break;
                case '\f': _text.Append("\\f"); break;
                default:
                    if (c < 0x20 || (_ensureAscii && c > 0x7e))
                        _text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    else
                        _text.Append(c);
                    break;
            }
        }
        _text.Append('"');
    }
}
