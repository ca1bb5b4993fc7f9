using System.Text;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// Bounds on one rendering, so that a template (or a hostile one) cannot hang a request or exhaust memory.
/// </summary>
/// <param name="MaxOutputChars">The longest rendering, in UTF-16 characters (default 8 Mi).</param>
/// <param name="MaxWorkChars">All characters produced by string operations during one rendering, printed or not
/// (default 64 Mi): it stops templates that build and throw away large strings in a loop.</param>
/// <param name="MaxLoopIterations">For-loop iterations, all loops together (default 1,000,000).</param>
/// <param name="MaxCallDepth">Nested macro calls (default 100), so recursion cannot overflow the stack.</param>
public sealed record ChatTemplateLimits(
    int MaxOutputChars = 8 * 1024 * 1024,
    long MaxWorkChars = 64L * 1024 * 1024,
    int MaxLoopIterations = 1_000_000,
    int MaxCallDepth = 100)
{
    public static ChatTemplateLimits Default { get; } = new();
}

/// <summary>A variable scope: a for-loop iteration or a macro call opens one; <c>set</c> writes to the innermost.</summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public Scope? Parent { get; } = parent;

    public void Set(string name, object? value) => _variables[name] = value;

    public bool TryGet(string name, out object? value)
    {
        for (Scope? scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope._variables.TryGetValue(name, out value))
                return true;
        }
        value = null;
        return false;
    }
}

/// <summary>The state of one rendering: the output being written, the scopes, and the bounds spent so far.</summary>
internal sealed class RenderContext(Scope globals, ChatTemplateLimits limits, TimeProvider clock)
{
    private readonly Stack<StringBuilder> _outputs = new([new StringBuilder()]);
    private long _workChars;
    private int _iterations;
    private int _callDepth;

    public Scope Scope { get; set; } = new Scope(globals);

    public TimeProvider Clock { get; } = clock;

    public ChatTemplateLimits Limits { get; } = limits;

    public string Output => _outputs.Peek().ToString();

    public object? Lookup(string name) => Scope.TryGet(name, out object? value) ? value : JinjaUndefined.Named(name);

    public void Write(string text, SourcePosition at)
    {
        StringBuilder output = _outputs.Peek();
        if (output.Length + (long)text.Length > Limits.MaxOutputChars)
            throw ChatTemplateException.At(at, $"the rendering exceeds {Limits.MaxOutputChars} characters");
        Produced(text.Length, at);
        output.Append(text);
    }

    /// <summary>Renders <paramref name="render"/> into a string of its own (a macro call, a block set).</summary>
    public string Capture(Action render)
    {
        _outputs.Push(new StringBuilder());
        try
        {
            render();
            return _outputs.Peek().ToString();
        }
        finally
        {
            _outputs.Pop();
        }
    }

    /// <summary>Counts <paramref name="chars"/> produced by a string operation against the work bound.</summary>
    public void Produced(long chars, SourcePosition at)
    {
        if (chars > Limits.MaxOutputChars)
            throw ChatTemplateException.At(at, $"a string of {chars} characters exceeds the bound of {Limits.MaxOutputChars}");
        _workChars += chars;
        if (_workChars > Limits.MaxWorkChars)
            throw ChatTemplateException.At(at, $"the rendering produced more than {Limits.MaxWorkChars} characters of strings");
    }

    public void CountIteration(SourcePosition at)
    {
        if (++_iterations > Limits.MaxLoopIterations)
            throw ChatTemplateException.At(at, $"the rendering exceeds {Limits.MaxLoopIterations} loop iterations");
    }

    public void EnterCall(SourcePosition at)
    {
        if (++_callDepth > Limits.MaxCallDepth)
            throw ChatTemplateException.At(at, $"macro calls nest deeper than {Limits.MaxCallDepth}");
    }

    public void ExitCall() => _callDepth--;
}
