namespace FtpCluster.Compute.Chat;

/// <summary>
/// A chat template that cannot be loaded or rendered: a construct outside the supported Jinja subset, a runtime
/// error (a type mismatch, an undefined value used where Jinja refuses one), a bound exceeded, or the template's
/// own <c>raise_exception(message)</c>. <see cref="Line"/> and <see cref="Column"/> (1-based) locate the construct
/// in the template source when known.
/// </summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException(string message)
        : base(message)
    {
    }

    public ChatTemplateException(string message, Exception inner)
        : base(message, inner)
    {
    }

    private ChatTemplateException(string message, int? line, int? column, bool raisedByTemplate)
        : base(message)
    {
        Line = line;
        Column = column;
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>The 1-based template line of the construct at fault; null for errors outside the template text.</summary>
    public int? Line { get; }

    /// <summary>The 1-based column of the construct at fault; null for errors outside the template text.</summary>
    public int? Column { get; }

    /// <summary>
    /// True when the template itself called <c>raise_exception</c>: <see cref="Exception.Message"/> is then exactly
    /// the template's message (for example a role-alternation rule), meant for the client that sent the messages.
    /// </summary>
    public bool RaisedByTemplate { get; }

    /// <summary>An error at a place in the template: "chat template line L, column C: problem".</summary>
    internal static ChatTemplateException At(SourcePosition position, string problem) =>
        new($"chat template line {position.Line}, column {position.Column}: {problem}", position.Line, position.Column, false);

    /// <summary>The template's own <c>raise_exception(message)</c>.</summary>
    internal static ChatTemplateException Raised(SourcePosition position, string message) =>
        new(message, position.Line, position.Column, true);
}

/// <summary>A 1-based line and column in the template source.</summary>
internal readonly record struct SourcePosition(int Line, int Column);
