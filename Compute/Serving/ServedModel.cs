namespace FtpCluster.Compute.Serving;

/// <summary>
/// What one deployment serves, as requests are checked against it.
/// </summary>
/// <param name="Name">The model's name, answered in responses' and model lists' <c>model</c>.</param>
/// <param name="Aliases">Other names a request's <c>model</c> may use for it (the forms of its path, say).</param>
/// <param name="ContextLength">Prompt and generated tokens together fit in this many.</param>
/// <param name="RouterSparsities">The sparsity of each token-pruning router loaded, in the order the cluster
/// numbers them; empty when the deployment prunes no tokens.</param>
public sealed record ServedModel(string Name, IReadOnlyList<string> Aliases, int ContextLength, int VocabSize, IReadOnlyList<double> RouterSparsities)
{
    /// <summary>How close a requested sparsity must be to a router's to be served by it.</summary>
    public const double SparsityTolerance = 1e-6;

    public bool Answers(string model) => model == Name || Aliases.Contains(model);

    /// <summary>The index of the router for <paramref name="sparsity"/>, or null when none is within <see cref="SparsityTolerance"/>.</summary>
    public int? RouterFor(double sparsity)
    {
        for (int i = 0; i < RouterSparsities.Count; i++)
            if (Math.Abs(RouterSparsities[i] - sparsity) <= SparsityTolerance) return i;
        return null;
    }
}

/// <summary>
/// Turns a request's prompt into token ids, the model's way. <see cref="PreparedRequest.Prepare"/> encodes a
/// completion's text prompt with <see cref="Encode"/>, and a chat's messages with <see cref="Encode"/> of
/// <see cref="RenderChat"/>'s text; an implementation whose chat template writes the BOS token as text must not
/// let <see cref="Encode"/> add a second one.
/// </summary>
public interface IPromptEncoder
{
    /// <summary>The ids of <paramref name="text"/>, with BOS first as the model expects.</summary>
    int[] Encode(string text);

    /// <summary>The prompt text of a chat: <paramref name="messages"/> (an array of <c>{role, content}</c> objects whose
    /// content is a string or an array of <c>{"type": "text", "text"}</c> parts) through the model's chat template,
    /// ending where the assistant's answer begins. May throw any exception; its message reaches the client.</summary>
    string RenderChat(System.Text.Json.JsonElement messages);
}
