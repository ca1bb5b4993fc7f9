namespace FtpCluster.Compute.Chat;

/// <summary>The <c>loop</c> variable inside a for loop: position, neighbours and <c>loop.cycle(...)</c>.</summary>
internal sealed class LoopState(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }

    public object? Attribute(string name)
    {
        int length = items.Count;
        return name switch
        {
            "index" => (long)(Index0 + 1),
            "index0" => (long)Index0,
            "revindex" => (long)(length - Index0),
            "revindex0" => (long)(length - Index0 - 1),
            "first" => Index0 == 0,
            "last" => Index0 == length - 1,
            "length" => (long)length,
            "depth" => 1L,
            "depth0" => 0L,
            "previtem" => Index0 > 0 ? items[Index0 - 1] : new JinjaUndefined("there is no previous item"),
            "nextitem" => Index0 < length - 1 ? items[Index0 + 1] : new JinjaUndefined("there is no next item"),
            "cycle" => new CycleFunction(this),
            _ => new JinjaUndefined($"'LoopContext' object has no attribute '{name}'"),
        };
    }

    private sealed class CycleFunction(LoopState loop) : JinjaCallable
    {
        public override string Name => "loop.cycle";

        public override object? Invoke(CallArguments arguments, RenderContext context, SourcePosition at)
        {
            if (arguments.Positional.Count == 0 || arguments.Named.Count > 0)
                throw ChatTemplateException.At(at, "loop.cycle takes one or more positional arguments");
            return arguments.Positional[loop.Index0 % arguments.Positional.Count];
        }
    }
}
