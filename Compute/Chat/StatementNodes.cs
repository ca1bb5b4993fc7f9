namespace FtpCluster.Compute.Chat;

/// <summary>How a statement ended: normally, or by <c>{% break %}</c> / <c>{% continue %}</c> inside a loop.</summary>
internal enum Flow
{
    Normal,
    Break,
    Continue,
}

/// <summary>A parsed template statement; immutable, so one parsed template serves concurrent renderings.</summary>
internal abstract class Statement(SourcePosition at)
{
    public SourcePosition At { get; } = at;

    public abstract Flow Render(RenderContext context);

    public static Flow RenderAll(IReadOnlyList<Statement> body, RenderContext context)
    {
        foreach (Statement statement in body)
        {
            Flow flow = statement.Render(context);
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }
}

internal sealed class TextStatement(SourcePosition at, string text) : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        context.Write(text, At);
        return Flow.Normal;
    }
}

internal sealed class OutputStatement(SourcePosition at, Expression value) : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        context.Write(JinjaFilters.ToText(value.Evaluate(context), value.At), At);
        return Flow.Normal;
    }
}

internal sealed class IfStatement(SourcePosition at, IReadOnlyList<(Expression Condition, IReadOnlyList<Statement> Body)> branches, IReadOnlyList<Statement> otherwise)
    : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        foreach ((Expression condition, IReadOnlyList<Statement> body) in branches)
        {
            if (JinjaValues.IsTruthy(condition.Evaluate(context)))
                return RenderAll(body, context);
        }
        return RenderAll(otherwise, context);
    }
}

/// <summary>
/// <c>{% for a, b in items if condition %} ... {% else %} ... {% endfor %}</c>. Each iteration has its own scope
/// (a <c>set</c> inside does not outlive the iteration, as in Jinja); the else body runs when nothing was iterated.
/// </summary>
internal sealed class ForStatement(
    SourcePosition at,
    IReadOnlyList<string> targets,
    bool unpack,
    Expression source,
    Expression? filter,
    IReadOnlyList<Statement> body,
    IReadOnlyList<Statement> otherwise) : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        IReadOnlyList<object?> items = JinjaValues.Iterate(source.Evaluate(context), source.At);
        Scope outer = context.Scope;
        if (filter is not null)
        {
            var kept = new List<object?>();
            foreach (object? item in items)
            {
                context.CountIteration(At);
                context.Scope = new Scope(outer);
                Bind(item, context);
                bool keep = JinjaValues.IsTruthy(filter.Evaluate(context));
                context.Scope = outer;
                if (keep)
                    kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
            return RenderAll(otherwise, context);

        var loop = new LoopState(items);
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                context.CountIteration(At);
                context.Scope = new Scope(outer);
                loop.Index0 = i;
                context.Scope.Set("loop", loop);
                Bind(items[i], context);
                if (RenderAll(body, context) == Flow.Break)
                    break;
            }
        }
        finally
        {
            context.Scope = outer;
        }
        return Flow.Normal;
    }

    private void Bind(object? item, RenderContext context)
    {
        if (!unpack)
        {
            context.Scope.Set(targets[0], item);
            return;
        }
        IReadOnlyList<object?> parts = JinjaValues.TryIterate(item) is { } list && item is not JinjaUndefined
            ? list
            : throw ChatTemplateException.At(At, $"cannot unpack a '{JinjaValues.TypeName(item)}' value into {targets.Count} loop variables");
        if (parts.Count != targets.Count)
            throw ChatTemplateException.At(At, $"cannot unpack {parts.Count} values into {targets.Count} loop variables");
        for (int i = 0; i < targets.Count; i++)
            context.Scope.Set(targets[i], parts[i]);
    }
}

/// <summary><c>{% set x = value %}</c>, <c>{% set a, b = pair %}</c> or <c>{% set ns.attribute = value %}</c>.</summary>
internal sealed class SetStatement(SourcePosition at, IReadOnlyList<string> targets, bool unpack, string? attribute, Expression value)
    : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        object? result = value.Evaluate(context);
        if (attribute is not null)
        {
            if (context.Lookup(targets[0]) is not JinjaNamespace ns)
                throw ChatTemplateException.At(At, $"cannot set attribute '{attribute}' on '{targets[0]}': only a namespace() has attributes to set");
            ns.Attributes[attribute] = result;
        }
        else if (!unpack)
        {
            context.Scope.Set(targets[0], result);
        }
        else
        {
            IReadOnlyList<object?> parts = JinjaValues.TryIterate(result) is { } list && result is not JinjaUndefined
                ? list
                : throw ChatTemplateException.At(At, $"cannot unpack a '{JinjaValues.TypeName(result)}' value");
            if (parts.Count != targets.Count)
                throw ChatTemplateException.At(At, $"cannot unpack {parts.Count} values into {targets.Count} variables");
            for (int i = 0; i < targets.Count; i++)
                context.Scope.Set(targets[i], parts[i]);
        }
        return Flow.Normal;
    }
}

/// <summary><c>{% set x %}...{% endset %}</c>: the rendered body as a string.</summary>
internal sealed class SetBlockStatement(SourcePosition at, string target, IReadOnlyList<Statement> body) : Statement(at)
{
    public override Flow Render(RenderContext context)
    {
        string text = context.Capture(() => RenderAll(body, context));
        context.Scope.Set(target, text);
        return Flow.Normal;
    }
}

internal sealed class LoopControlStatement(SourcePosition at, Flow flow) : Statement(at)
{
    public override Flow Render(RenderContext context) => flow;
}

/// <summary><c>{% macro name(a, b=default) %}</c>: defines a callable that renders its body to a string.</summary>
internal sealed class MacroStatement(SourcePosition at, string name, IReadOnlyList<(string Name, Expression? Default)> parameters, IReadOnlyList<Statement> body)
    : Statement(at)
{
    private string MacroName { get; } = name;

    private IReadOnlyList<(string Name, Expression? Default)> Parameters { get; } = parameters;

    private IReadOnlyList<Statement> Body { get; } = body;

    public override Flow Render(RenderContext context)
    {
        context.Scope.Set(MacroName, new Macro(this, context.Scope));
        return Flow.Normal;
    }

    private sealed class Macro(MacroStatement definition, Scope closure) : JinjaCallable
    {
        public override string Name => $"macro '{definition.MacroName}'";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            var parameters = definition.Parameters;
            object?[] bound = arguments.Bind(definition.MacroName, at, [.. parameters.Select(parameter => parameter.Name)]);
            context.EnterCall(at);
            Scope caller = context.Scope;
            context.Scope = new Scope(closure);
            try
            {
                for (int i = 0; i < parameters.Count; i++)
                {
                    object? value = bound[i];
                    if (value == CallArguments.Missing)
                    {
                        Expression? fallback = parameters[i].Default;
                        value = fallback is null ? JinjaUndefined.Named(parameters[i].Name) : fallback.Evaluate(context);
                    }
                    context.Scope.Set(parameters[i].Name, value);
                }
                return context.Capture(() => RenderAll(definition.Body, context));
            }
            finally
            {
                context.Scope = caller;
                context.ExitCall();
            }
        }
    }
}
