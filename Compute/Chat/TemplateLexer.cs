using System.Globalization;
using System.Text;

namespace FtpCluster.Compute.Chat;

internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    EndOfTemplate,
}

/// <summary>One lexical token; <see cref="Value"/> is the decoded text (a string literal without quotes or escapes).</summary>
internal readonly record struct TemplateToken(TokenKind Kind, string Value, SourcePosition Position);

/// <summary>
/// Splits a template into text and tag tokens the way Jinja's lexer does with the settings Hugging Face renders
/// chat templates with (trim_blocks, lstrip_blocks, the single trailing newline of the source dropped, newlines
/// normalised to \n): <c>{%- -%}</c>, <c>{{- -}}</c> and <c>{#- -#}</c> strip all whitespace on their side,
/// <c>{%+</c> and <c>+%}</c> turn off lstrip_blocks and trim_blocks for that tag.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly string _source;
    private readonly List<TemplateToken> _tokens = [];
    private readonly int[] _lineStarts;
    private int _pos;

    private TemplateLexer(string source)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n'))
            source = source[..^1];
        _source = source;
        var starts = new List<int> { 0 };
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
                starts.Add(i + 1);
        }
        _lineStarts = [.. starts];
    }

    public static List<TemplateToken> Tokenize(string source)
    {
        var lexer = new TemplateLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private SourcePosition PositionOf(int offset)
    {
        int line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0)
            line = ~line - 1;
        return new SourcePosition(line + 1, offset - _lineStarts[line] + 1);
    }

    private void Run()
    {
        bool stripLeading = false;
        while (_pos <= _source.Length)
        {
            int tagStart = FindTagStart(_pos);
            int textStart = _pos;
            if (stripLeading)
            {
                while (textStart < tagStart && PythonText.IsWhiteSpace(_source[textStart]))
                    textStart++;
            }
            string text = _source[textStart..tagStart];
            if (tagStart == _source.Length)
            {
                AddText(text, textStart);
                break;
            }

            char kind = _source[tagStart + 1];
            char modifier = tagStart + 2 < _source.Length ? _source[tagStart + 2] : '\0';
            if (modifier == '-')
            {
                text = text.TrimEnd(PythonText.WhiteSpaceChars);
            }
            else if (kind != '{' && modifier != '+')
            {
                text = LStripBlock(text, textStart);
            }
            AddText(text, textStart);

            int bodyStart = tagStart + 2 + (modifier == '-' || (modifier == '+' && kind != '{') ? 1 : 0);
            (int end, char closeModifier) = kind == '#' ? SkipComment(tagStart, bodyStart) : LexTag(tagStart, bodyStart, kind);
            _pos = end;
            stripLeading = closeModifier == '-';
            if (kind != '{' && closeModifier == '\0' && _pos < _source.Length && _source[_pos] == '\n')
                _pos++;
        }
        _tokens.Add(new TemplateToken(TokenKind.EndOfTemplate, "", PositionOf(_source.Length)));
    }

    private int FindTagStart(int from)
    {
        for (int i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
                return i;
        }
        return _source.Length;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0)
            _tokens.Add(new TemplateToken(TokenKind.Text, text, PositionOf(offset)));
    }

    /// <summary>
    /// lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are dropped. The
    /// text begins a line when it holds a newline or when the source before it ends one.
    /// </summary>
    private string LStripBlock(string text, int textStart)
    {
        int lineStart = text.LastIndexOf('\n') + 1;
        bool lineStarting = lineStart > 0 || textStart == 0 || _source[textStart - 1] == '\n';
        if (!lineStarting)
            return text;
        for (int i = lineStart; i < text.Length; i++)
        {
            if (!PythonText.IsWhiteSpace(text[i]))
                return text;
        }
        return text[..lineStart];
    }

    private (int End, char Modifier) SkipComment(int tagStart, int bodyStart)
    {
        int close = _source.IndexOf("#}", bodyStart, StringComparison.Ordinal);
        if (close < 0)
            throw ChatTemplateException.At(PositionOf(tagStart), "unclosed comment: expected '#}'");
        char modifier = close > bodyStart && _source[close - 1] is '-' or '+' ? _source[close - 1] : '\0';
        return (close + 2, modifier);
    }

    private (int End, char Modifier) LexTag(int tagStart, int bodyStart, char kind)
    {
        bool isBlock = kind == '%';
        _tokens.Add(new TemplateToken(isBlock ? TokenKind.BlockBegin : TokenKind.VariableBegin, isBlock ? "{%" : "{{", PositionOf(tagStart)));
        char closer = isBlock ? '%' : '}';
        int depth = 0;
        int i = bodyStart;
        while (true)
        {
            while (i < _source.Length && PythonText.IsWhiteSpace(_source[i]))
                i++;
            if (i >= _source.Length)
                throw ChatTemplateException.At(PositionOf(tagStart), $"unclosed tag: expected '{closer}}}'");

            if (depth == 0)
            {
                int closeAt = i;
                char modifier = '\0';
                if (_source[i] is '-' or '+' && i + 1 < _source.Length && _source[i + 1] == closer)
                {
                    modifier = _source[i];
                    closeAt = i + 1;
                }
                if (closeAt + 1 < _source.Length && _source[closeAt] == closer && _source[closeAt + 1] == '}'
                    && !(modifier == '+' && !isBlock))
                {
                    _tokens.Add(new TemplateToken(isBlock ? TokenKind.BlockEnd : TokenKind.VariableEnd, "", PositionOf(i)));
                    return (closeAt + 2, modifier);
                }
            }

            char c = _source[i];
            SourcePosition at = PositionOf(i);
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = i;
                while (i < _source.Length && (char.IsAsciiLetterOrDigit(_source[i]) || _source[i] == '_'))
                    i++;
                _tokens.Add(new TemplateToken(TokenKind.Name, _source[start..i], at));
            }
            else if (char.IsAsciiDigit(c))
            {
                i = LexNumber(i, at);
            }
            else if (c is '\'' or '"')
            {
                i = LexString(i, at);
            }
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(_source, i, o, 0, o.Length) == 0);
                if (op is null)
                    throw ChatTemplateException.At(at, $"unexpected character '{c}' in a tag");
                if (op is "(" or "[" or "{")
                    depth++;
                else if (op is ")" or "]" or "}")
                    depth = Math.Max(0, depth - 1);
                _tokens.Add(new TemplateToken(TokenKind.Operator, op, at));
                i += op.Length;
            }
        }
    }

    private int LexNumber(int i, SourcePosition at)
    {
        int start = i;
        bool isFloat = false;
        SkipDigits(ref i);
        if (i + 1 < _source.Length && _source[i] == '.' && char.IsAsciiDigit(_source[i + 1]))
        {
            isFloat = true;
            i++;
            SkipDigits(ref i);
        }
        if (i < _source.Length && _source[i] is 'e' or 'E')
        {
            int exponent = i + 1;
            if (exponent < _source.Length && _source[exponent] is '+' or '-')
                exponent++;
            if (exponent < _source.Length && char.IsAsciiDigit(_source[exponent]))
            {
                isFloat = true;
                i = exponent;
                SkipDigits(ref i);
            }
        }
        string digits = _source[start..i].Replace("_", "", StringComparison.Ordinal);
        _tokens.Add(new TemplateToken(isFloat ? TokenKind.Float : TokenKind.Integer, digits, at));
        return i;
    }

    private void SkipDigits(ref int i)
    {
        while (i < _source.Length && (char.IsAsciiDigit(_source[i]) || (_source[i] == '_' && i + 1 < _source.Length && char.IsAsciiDigit(_source[i + 1]))))
            i++;
    }

    /// <summary>A quoted string; escapes decode as Python's unicode-escape codec does (unknown ones stay as written).</summary>
    private int LexString(int i, SourcePosition at)
    {
        char quote = _source[i++];
        var value = new StringBuilder();
        while (true)
        {
            if (i >= _source.Length)
                throw ChatTemplateException.At(at, "unterminated string literal");
            char c = _source[i++];
            if (c == quote)
                break;
            if (c != '\\')
            {
                value.Append(c);
                continue;
            }
            if (i >= _source.Length)
                throw ChatTemplateException.At(at, "unterminated string literal");
            char escape = _source[i++];
            switch (escape)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case '\\': value.Append('\\'); break;
                case '\'': value.Append('\''); break;
                case '"': value.Append('"'); break;
                case 'a': value.Append('\a'); break;
                case 'b': value.Append('\b'); break;
                case 'f': value.Append('\f'); break;
                case 'v': value.Append('\v'); break;
                case '\n': break;
                case 'x': i = AppendCodePoint(value, i, 2, at); break;
                case 'u': i = AppendCodePoint(value, i, 4, at); break;
                case 'U': i = AppendCodePoint(value, i, 8, at); break;
                case >= '0' and <= '7':
                {
                    int code = escape - '0';
                    for (int n = 0; n < 2 && i < _source.Length && _source[i] is >= '0' and <= '7'; n++)
                        code = code * 8 + (_source[i++] - '0');
                    value.Append((char)code);
                    break;
                }
                default: value.Append('\\').Append(escape); break;
            }
        }
        string text = value.ToString();
        // Jinja joins adjacent string literals ("a" "b") in the parser; keeping them apart here is enough.
        _tokens.Add(new TemplateToken(TokenKind.String, text, at));
        return i;
    }

    private int AppendCodePoint(StringBuilder value, int i, int digits, SourcePosition at)
    {
        if (i + digits > _source.Length
            || !int.TryParse(_source.AsSpan(i, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || !Rune.IsValid(code))
        {
            throw ChatTemplateException.At(at, $"invalid \\{_source[i - 1]} escape in a string literal: expected {digits} hex digits of a Unicode code point");
        }
        value.Append(new Rune(code).ToString());
        return i + digits;
    }
}
