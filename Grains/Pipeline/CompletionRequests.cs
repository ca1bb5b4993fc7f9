using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Chat;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Hub;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Serving;
using FtpCluster.Compute.Tokenizers;
using FtpCluster.Grains.Telemetry;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// Request handling for one deployment: an OpenAI request body in, its response body out. Parses and checks the
/// body against the deployment, encodes the prompt (a chat's through the model's chat template), generates through
/// the scheduler, and writes the completion or chat.completion object. Every problem with a request ends that
/// request alone, as an error code and a message that names what is wrong.
/// </summary>
/// <remarks>
/// A model without a tokenizer (a synthesized checkpoint, say) is served too: its requests give the prompt as token
/// ids, and its answers count tokens but carry no text.
/// </remarks>
internal sealed class CompletionRequests(ServedModel served, ITokenizer? tokenizer, ChatTemplate chat, SequenceScheduler scheduler)
    : IPromptEncoder
{
    private readonly Lazy<(IReadOnlySet<int> Ids, string[] Strings)> _endOfTurn = new(() => EndOfTurn(tokenizer, chat));

    /// <summary>The deployment's tokenizer (the given one, else the one beside the model, if any) and chat template, loaded on the coordinator's silo.</summary>
    public static CompletionRequests Open(DeploymentRequest deployment, ModelConfig config, SequenceScheduler scheduler)
    {
        string? tokenizerPath = deployment.Tokenizer ?? TokenizerLoader.FindBeside(deployment.ModelPath);
        var tokenizer = tokenizerPath is null ? null : TokenizerLoader.Load(tokenizerPath, config.VocabSize);
        var chat = ChatTemplate.ForModel(deployment.ModelPath);
        double[] routers = [.. deployment.RouterPaths.Select(r => RouterArtifact.Load(r).Schedule.Mean)];
        return new CompletionRequests(ServedModelOf(deployment, config, routers), tokenizer, chat, scheduler);
    }

    /// <summary>
    /// What requests may call the deployment: its served name, and its model's path as given and in full. A snapshot of
    /// the Hugging Face cache (the folder a repo id resolves to, named by its commit) is served as its repo id,
    /// <c>org/name</c>, as the model was named on the command line, and answers to the bare <c>name</c> too.
    /// </summary>
    public static ServedModel ServedModelOf(DeploymentRequest deployment, ModelConfig config, IReadOnlyList<double> routerSparsities)
    {
        string path = deployment.ModelPath.TrimEnd(Path.DirectorySeparatorChar);
        string? repoId = HubCache.RepoIdOfSnapshot(path);
        // A folder's name as it is (Qwen2.5-0.5B has no extension); a checkpoint file's without its extension.
        string name = deployment.ServedName ?? repoId
            ?? (Directory.Exists(path) ? Path.GetFileName(path) : Path.GetFileNameWithoutExtension(path));
        string[] aliases = [.. new[] { path, Path.GetFullPath(path), Path.GetFileName(path), repoId, repoId?.Split('/')[1] }
            .OfType<string>().Where(a => a != name).Distinct(StringComparer.Ordinal)];
        return new ServedModel(name, aliases, config.MaxSeqLen, config.VocabSize, routerSparsities);
    }

    /// <summary>A job's line: its result, or the error that ends it alone.</summary>
    public async Task<CompletionLineResult> Run(CompletionLine line, CancellationToken cancellation)
    {
        PreparedRequest prepared;
        try
        {
            prepared = Prepare(line);
        }
        catch (RequestException e)
        {
            return CompletionLineResult.Failed(line, e.Code, e.Message);
        }
        return (await Generate(line, prepared, generated: null, cancellation)).Result;
    }

    /// <summary>The request checked against the deployment, its prompt encoded, the chat template's end-of-turn
    /// markers that are not one token added to its stop strings.</summary>
    /// <exception cref="RequestException">What is wrong with the request, naming its field.</exception>
    public PreparedRequest Prepare(CompletionLine line)
    {
        if (!CompletionEndpoints.TryParseUrl(line.Url, out var endpoint))
            throw new RequestException(ErrorCodes.InvalidValue, "url", $"unknown url '{line.Url}': expected {CompletionEndpoints.CompletionsUrl} or {CompletionEndpoints.ChatCompletionsUrl}");
        try
        {
            using var body = JsonDocument.Parse(line.Body);
            var prepared = PreparedRequest.Prepare(CompletionRequest.Parse(body.RootElement, endpoint), served, this);
            return prepared with { Stop = [.. prepared.Stop, .. _endOfTurn.Value.Strings] };
        }
        catch (JsonException e)
        {
            throw new RequestException(ErrorCodes.InvalidJsonLine, null, $"the request body is not JSON: {e.Message}");
        }
    }

    /// <summary>Generates a prepared request's answer; <paramref name="generated"/> sees the tokens as they come.</summary>
    /// <returns>The result, and the answer's text (empty for a failure).</returns>
    public async Task<(CompletionLineResult Result, string Text)> Generate(CompletionLine line, PreparedRequest prepared,
        Action<IReadOnlyList<int>>? generated, CancellationToken cancellation)
    {
        var stop = new StopStringMatcher(prepared.Stop);
        // Without a tokenizer the answer has no text, where no stop string occurs.
        var answer = prepared.Stop.Count == 0 ? null : NewAnswerText();
        Func<IReadOnlyList<int>, bool>? stopsAfter = answer is null ? null : tokens => stop.TryFind(answer(tokens), out _);
        // A request that names no sparsity gets the deployment's first router (or none).
        int router = prepared.RouterIndex ?? (served.RouterSparsities.Count > 0 ? 0 : -1);
        var spec = new SequenceSpec(prepared.PromptIds, prepared.MaxTokens, _endOfTurn.Value.Ids, prepared.Sampling, router,
            prepared.Logprobs ?? -1, stopsAfter, generated, OperationOf(prepared.Request.Endpoint));
        SequenceResult result;
        try
        {
            result = await scheduler.Run(spec, cancellation);
        }
        catch (ArgumentException e)
        {
            // What the request asks is beyond what the deployment can hold (its KV-cache room, say).
            return (CompletionLineResult.Failed(line, ErrorCodes.InvalidValue, e.Message), "");
        }

        var outcome = new CompletionOutcome(result.PromptIds.Length, result.Generated, result.FinishReason,
            result.Logprobs?.Select((l, i) => new TokenLogprob(result.Generated[i], l.Logprob,
                [.. l.TopTokens.Zip(l.TopLogprobs, (t, p) => new TokenAlternative(t, p))])).ToArray(),
            new FtpUsage(result.Usage.TokensComputed, result.Usage.TokensSkipped, result.Usage.WireBytes));
        var response = CompletionResponse.Create(prepared, outcome, Decode, id => Encoding.UTF8.GetBytes(Decode([id])));
        string responseBody = Encoding.UTF8.GetString(response.ToUtf8Json());
        return (new CompletionLineResult(line.Key, line.LineNumber, responseBody, null, null, result.PromptIds.Length, response.CompletionTokens,
            result.Usage.TokensComputed, result.Usage.TokensSkipped, result.Usage.WireBytes), response.Text);
    }

    /// <summary>The request's <c>gen_ai.operation.name</c>.</summary>
    private static string OperationOf(CompletionEndpoint endpoint) =>
        endpoint == CompletionEndpoint.ChatCompletions ? FtpClusterTelemetry.Values.ChatOperation : FtpClusterTelemetry.Values.TextCompletionOperation;

    public int[] Encode(string text)
    {
        // A chat template that writes BOS as text must not get a second one from the encoder.
        string bos = chat.SpecialTokens.GetValueOrDefault("bos_token", "");
        if (bos.Length > 0 && text.StartsWith(bos, StringComparison.Ordinal)) text = text[bos.Length..];
        return Tokenizer.Encode(text, addBos: true);
    }

    private ITokenizer Tokenizer => tokenizer ?? throw new RequestException(ErrorCodes.InvalidValue, "prompt",
        $"the model '{served.Name}' has no tokenizer here: give the prompt as an array of token ids");

    /// <summary>The text of tokens decoded together; empty without a tokenizer.</summary>
    public string Decode(int[] ids) => tokenizer?.Decode(ids) ?? "";

    /// <summary>
    /// The text of an answer as it grows, each call given its tokens so far (an <see cref="IncrementalDecoder"/>, so each
    /// call decodes only the tokens since the last whole character); null without a tokenizer, when answers have no text.
    /// </summary>
    public Func<IReadOnlyList<int>, string>? NewAnswerText() => tokenizer is null ? null : new IncrementalDecoder(tokenizer).Decode;

    public string RenderChat(JsonElement messages) => chat.Render(messages, addGenerationPrompt: true);

    /// <summary>
    /// Where an answer ends: EOS, and the chat template's end-of-turn tokens — as ids where the tokenizer knows them
    /// as one token, else as text to stop at.
    /// </summary>
    private static (IReadOnlySet<int> Ids, string[] Strings) EndOfTurn(ITokenizer? tokenizer, ChatTemplate chat)
    {
        var ids = new HashSet<int>();
        if (tokenizer is null) return (ids, []);
        if (tokenizer.EosId >= 0) ids.Add(tokenizer.EosId);
        var strings = new List<string>();
        foreach (string token in chat.EndOfTurnTokens)
        {
            int[] encoded = tokenizer.Encode(token, addBos: false);
            if (encoded.Length == 1) ids.Add(encoded[0]);
            else strings.Add(token);
        }
        return (ids, [.. strings]);
    }
}
