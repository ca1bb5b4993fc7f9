using System.Globalization;
using System.Text;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// Python's text rules that a rendering must reproduce: what counts as whitespace, <c>str()</c> and <c>repr()</c>
/// of template values (a list printed in a template reads <c>['a', 1]</c>), float formatting, and strings indexed
/// by code point rather than by UTF-16 unit.
/// </summary>
internal static class PythonText
{
    /// <summary>The characters Python's <c>str.isspace()</c> accepts.</summary>
    public static readonly char[] WhiteSpaceChars =
    [
        '\t', '\n', '\v', '\f', '\r', '\x1c', '\x1d', '\x1e', '\x1f', ' ', '\x85', '\xa0', '\u1680',
        '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a',
        '\u2028', '\u2029', '\u202f', '\u205f', '\u3000',
    ];

    public static bool IsWhiteSpace(char c) => Array.IndexOf(WhiteSpaceChars, c) >= 0;

    /// <summary>Python's <c>str(value)</c>; undefined prints as the empty string, as Jinja's default Undefined does.</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr(value)</c> for the values a template handles.</summary>
    public static string Repr(object? value)
    {
        var text = new StringBuilder();
        AppendRepr(text, value);
        return text.ToString();
    }

    private static void AppendRepr(StringBuilder text, object? value)
    {
        switch (value)
        {
            case null: text.Append("None"); break;
            case bool b: text.Append(b ? "True" : "False"); break;
            case long l: text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: text.Append(FloatRepr(d)); break;
            case string s: AppendStringRepr(text, s); break;
            case JinjaUndefined: text.Append("Undefined"); break;
            case object?[] tuple:
                text.Append('(');
                AppendItems(text, tuple);
                text.Append(tuple.Length == 1 ? ",)" : ")");
                break;
            case List<object?> list:
                text.Append('[');
                AppendItems(text, list);
                text.Append(']');
                break;
            case JinjaDict dict:
                text.Append('{');
                bool first = true;
                foreach (KeyValuePair<string, object?> pair in dict)
                {
                    if (!first)
                        text.Append(", ");
                    first = false;
                    AppendStringRepr(text, pair.Key);
                    text.Append(": ");
                    AppendRepr(text, pair.Value);
                }
                text.Append('}');
                break;
            case JinjaNamespace ns:
                text.Append("<Namespace ");
                AppendRepr(text, ns.Attributes);
                text.Append('>');
                break;
            default: text.Append(JinjaValues.TypeName(value)); break;
        }
    }

    private static void AppendItems(StringBuilder text, IReadOnlyList<object?> items)
    {
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
                text.Append(", ");
            AppendRepr(text, items[i]);
        }
    }

    private static void AppendStringRepr(StringBuilder text, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        text.Append(quote);
        foreach (Rune rune in s.EnumerateRunes())
        {
            int c = rune.Value;
            if (c == quote || c == '\\')
                text.Append('\\').Append((char)c);
            else if (c == '\n')
                text.Append("\\n");
            else if (c == '\r')
                text.Append("\\r");
            else if (c == '\t')
                text.Append("\\t");
            else if (IsPrintable(rune))
                text.Append(rune.ToString());
            else if (c < 0x100)
                text.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
            else if (c < 0x10000)
                text.Append(CultureInfo.InvariantCulture, $"\\u{c:x4}");
            else
                text.Append(CultureInfo.InvariantCulture, $"\\U{c:x8}");
        }
        text.Append(quote);
    }

    private static bool IsPrintable(Rune rune)
    {
        if (rune.Value == ' ')
            return true;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }

    /// <summary>
    /// Python's <c>repr(float)</c>: the shortest digits that round-trip, positional for decimal exponents from -4 to
    /// 15 (with ".0" on whole numbers), scientific otherwise (<c>1e+16</c>, <c>1e-05</c>).
    /// </summary>
    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value))
            return "nan";
        if (double.IsInfinity(value))
            return value > 0 ? "inf" : "-inf";
        if (value == 0)
            return double.IsNegative(value) ? "-0.0" : "0.0";

        // The round-trip format gives the shortest digits; only their layout differs from Python's.
        string shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        (string digits, int exponent) = SplitDigits(shortest);
        string sign = value < 0 ? "-" : "";
        if (exponent is >= -4 and < 16)
        {
            string body;
            if (exponent < 0)
                body = "0." + new string('0', -exponent - 1) + digits;
            else if (digits.Length <= exponent + 1)
                body = digits + new string('0', exponent + 1 - digits.Length) + ".0";
            else
                body = digits[..(exponent + 1)] + "." + digits[(exponent + 1)..];
            return sign + body;
        }
        string mantissa = digits.Length == 1 ? digits : digits[..1] + "." + digits[1..];
        string exponentText = Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
        return $"{sign}{mantissa}e{(exponent < 0 ? '-' : '+')}{exponentText}";
    }

    /// <summary>Significant digits (no leading or trailing zeros) and the decimal exponent of the first one.</summary>
    private static (string Digits, int Exponent) SplitDigits(string formatted)
    {
        int exponent = 0;
        int e = formatted.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(formatted.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            formatted = formatted[..e];
        }
        int point = formatted.IndexOf('.', StringComparison.Ordinal);
        string integerPart = point < 0 ? formatted : formatted[..point];
        string fraction = point < 0 ? "" : formatted[(point + 1)..];
        string all = integerPart + fraction;
        int firstNonZero = 0;
        while (firstNonZero < all.Length - 1 && all[firstNonZero] == '0')
            firstNonZero++;
        exponent += integerPart.Length - 1 - firstNonZero;
        string digits = all[firstNonZero..].TrimEnd('0');
        return (digits.Length == 0 ? "0" : digits, exponent);
    }

    /// <summary>The number of code points, as Python's <c>len(str)</c> counts.</summary>
    public static int CodePointCount(string s)
    {
        int surrogatePairs = 0;
        for (int i = 0; i + 1 < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && char.IsLowSurrogate(s[i + 1]))
            {
                surrogatePairs++;
                i++;
            }
        }
        return s.Length - surrogatePairs;
    }

    /// <summary>The string's code points, each as a string, for indexing, slicing and iteration.</summary>
    public static List<string> CodePoints(string s)
    {
        var points = new List<string>(s.Length);
        foreach (Rune rune in s.EnumerateRunes())
            points.Add(rune.ToString());
        return points;
    }

    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\ud800', '\udfff') >= 0;

    /// <summary>Python's <c>str.title()</c>: a cased letter after a cased letter is lowered, any other is raised.</summary>
    public static string PythonTitle(string s)
    {
        var text = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (Rune rune in s.EnumerateRunes())
        {
            bool cased = Rune.IsLetter(rune) && (Rune.IsUpper(rune) || Rune.IsLower(rune) || Rune.GetUnicodeCategory(rune) == UnicodeCategory.TitlecaseLetter);
            text.Append((cased ? (previousCased ? Rune.ToLowerInvariant(rune) : Rune.ToUpperInvariant(rune)) : rune).ToString());
            previousCased = cased;
        }
        return text.ToString();
    }

    /// <summary>Python's <c>str.capitalize()</c>: the first character raised, the rest lowered.</summary>
    public static string Capitalize(string s)
    {
        if (s.Length == 0)
            return s;
        Rune first = Rune.GetRuneAt(s, 0);
        return Rune.ToUpperInvariant(first).ToString() + s[first.Utf16SequenceLength..].ToLowerInvariant();
    }

    /// <summary>Python's <c>str.split(sep, maxsplit)</c>; a null separator splits on whitespace runs.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsWhiteSpace(s[i]))
                    i++;
                if (i == s.Length)
                    break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(s[i..].TrimEnd(WhiteSpaceChars));
                    break;
                }
                int start = i;
                while (i < s.Length && !IsWhiteSpace(s[i]))
                    i++;
                parts.Add(s[start..i]);
            }
            return parts;
        }
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
                break;
            parts.Add(s[from..at]);
            from = at + separator.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }
}
