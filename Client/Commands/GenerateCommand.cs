using System.CommandLine;
using System.Text.Json;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster generate</c>: a prompt in, a continuation out, in this process or through a pipeline of
/// stages on a cluster (<see cref="ClusterTarget"/>); both decide stop tokens and sample the same way.
/// </summary>
internal static class GenerateCommand
{
    private static readonly Option<string> Prompt = CliOption.Text("--prompt", "TEXT", "The prompt, encoded with the model's tokenizer (BOS first)");

    private static readonly Option<string> Ids = CliOption.Text("--ids", "JSON_ARRAY", "The prompt as token ids, such as [1,5,9]");

    private static readonly Option<int> MaxTokens = CliOption.Int("--max-tokens", "N", "Tokens to generate at most (fewer when a stop token comes)", 256);

    private static readonly Option<float?> Temperature = CliOption.OptionalFloat("--temperature", "T",
        "Sampling temperature; 0 is greedy (default 0, with --samples 1)");

    private static readonly Option<int> TopK = CliOption.Int("--top-k", "K", "Samples among the K most likely tokens only; 0 for all", 0);

    private static readonly Option<float> TopP = CliOption.Float("--top-p", "P", "Nucleus sampling: among the most likely tokens whose probabilities sum to P", 1f);

    private static readonly Option<int> Seed = CliOption.Int("--seed", "S", "The sampler's seed (with --samples, sample i draws with a seed hashed from S and i)", 0);

    private static readonly Option<int?> Samples = CliOption.OptionalInt("--samples", "N",
        "Writes N sequences sampled from the dense model to --out, one {\"ids\", \"text\"} per line (the prompt included; no prompt means BOS alone)");

    private static readonly Option<string> Out = CliOption.Text("--out", "FILE.jsonl", "Where --samples writes its sequences");

    private static readonly Option<bool> Json = CliOption.Flag("--json", "Prints {\"prompt_ids\", \"ids\" (prompt included), \"text\", \"finish_reason\"} and, on a cluster, the stages and their traffic");

    public static Command Create()
    {
        var command = new Command("generate", """
            Generates a continuation of a prompt, in this process or through a pipeline of stages (CLUSTER), or samples a data set.
              generate --model PATH (--prompt TEXT | --ids JSON_ARRAY) [options] [FTP] [CLUSTER]
              generate --model PATH --samples N --out FILE.jsonl [--prompt TEXT | --ids JSON_ARRAY] [options]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { Prompt, Ids, MaxTokens, Temperature, TopK, TopP, Seed, Samples, Out, Json }) command.Add(option);
        PruningOptionGroup.AddTo(command);
        ClusterOptionGroup.AddTo(command);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        var cluster = ClusterOptionGroup.Bind(parse);
        var pruning = PruningOptionGroup.Bind(parse);
        int? samples = parse.GetValue(Samples);
        string? samplesPath = parse.GetValue(Out);
        var options = new GenerationOptions
        {
            MaxTokens = parse.GetValue(MaxTokens),
            Sampling = new SamplingOptions
            {
                // A sample set is drawn from the model's own distribution unless told otherwise; one answer is greedy.
                Temperature = parse.GetValue(Temperature) ?? (samples is null ? 0f : 1f),
                TopK = parse.GetValue(TopK),
                TopP = parse.GetValue(TopP),
                Seed = parse.GetValue(Seed),
            },
        };
        string? prompt = parse.GetValue(Prompt);
        string? idsJson = parse.GetValue(Ids);
        bool json = parse.GetValue(Json);
        if (options.MaxTokens < 0) throw new UsageException($"--max-tokens must be >= 0, got {options.MaxTokens}");
        try
        {
            options.Sampling.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        if (samples is not null || samplesPath is not null)
        {
            if (samples is null) throw new UsageException("--out goes with --samples N");
            if (samplesPath is null) throw new UsageException("--samples needs --out FILE.jsonl");
            if (samples < 1) throw new UsageException($"--samples must be >= 1, got {samples}");
            if (cluster is not null) throw new UsageException("--samples runs in this process: it cannot be combined with --stages or --cluster");
            if (pruning is not null) throw new UsageException("--samples draws from the dense model: it cannot be combined with --router");
            if (json) throw new UsageException("--json does not apply to --samples: the samples file is JSON lines already");
            if (prompt is not null && idsJson is not null) throw new UsageException("give at most one of --prompt TEXT and --ids JSON_ARRAY");
            return WriteSamples(modelOptions, options, prompt, idsJson, samples.Value, samplesPath);
        }
        if (prompt is null == idsJson is null) throw new UsageException("give either --prompt TEXT or --ids JSON_ARRAY");
        pruning?.CheckUsableWith(cluster);
        if (cluster is not null)
        {
            modelOptions.CheckUsableWith(cluster);
            return RunInClusterAsync(cluster, modelOptions, pruning, options, prompt, idsJson, json).GetAwaiter().GetResult();
        }

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        var tokenizer = modelOptions.LoadTokenizer(model.Config);
        int[] promptIds = PromptIds(modelOptions, model.Config, tokenizer, prompt, idsJson);
        options = options with { StopTokens = StopTokens(tokenizer, model.Config.Architecture) };
        var stream = json || tokenizer is null ? null : new TextStream(tokenizer, promptIds);
        var result = pruning is null
            ? Generator.Generate(model, promptIds, options, stream is null ? null : stream.Add)
            : pruning.LoadPruner(model, modelOptions.ModelPath).Generate(promptIds, options, pruning.Routing, stream is null ? null : stream.Add);
        stream?.Finish();
        Print(result, tokenizer, json, traffic: null);
        return 0;
    }

    /// <summary>The same generation through a pipeline of stages; the text is printed once it is complete.</summary>
    private static async Task<int> RunInClusterAsync(
        ClusterTarget cluster, ModelOptions modelOptions, PruningOptions? pruning, GenerationOptions options, string? prompt, string? idsJson, bool json)
    {
        var config = modelOptions.ReadConfig();
        var tokenizer = modelOptions.LoadTokenizer(config);
        int[] promptIds = PromptIds(modelOptions, config, tokenizer, prompt, idsJson);
        var sampling = options.Sampling;
        var request = new GenerationRequest(promptIds, options.MaxTokens, [.. StopTokens(tokenizer, config.Architecture)],
            sampling.Temperature, sampling.TopK, sampling.TopP, sampling.Seed);

        using var interruption = new Interruption();
        await using var session = await PipelineSession.OpenAsync(cluster, modelOptions, pruning, interruption.Token);
        var reply = await session.Coordinator.Generate(request).WaitAsync(interruption.Token);
        var traffic = await session.TrafficAsync(interruption.Token);
        var result = new GenerationResult(reply.PromptIds, reply.Ids, reply.FinishReason);
        if (!json && tokenizer is not null)
        {
            var stream = new TextStream(tokenizer, promptIds);
            foreach (int id in result.Ids.AsSpan(promptIds.Length)) stream.Add(id);
            stream.Finish();
        }
        Print(result, tokenizer, json, traffic);
        return 0;
    }

    /// <summary>
    /// <c>--samples N --out FILE</c>: N sequences sampled from the dense model, one JSON object per line,
    /// <c>{"ids": [...], "text": "..."}</c> (the prompt included, so <c>eval --data</c> reads them as they are).
    /// Sample i draws with <see cref="SampleSeeds.For"/>(seed, i): the same seed gives the same file, and
    /// another seed a set that does not overlap it — how calibration and evaluation sets are built for a
    /// model that comes without data.
    /// </summary>
    private static int WriteSamples(ModelOptions modelOptions, GenerationOptions options, string? prompt, string? idsJson, int count, string path)
    {
        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        var tokenizer = modelOptions.LoadTokenizer(model.Config);
        int[] promptIds = prompt is null && idsJson is null
            ? [BosId(modelOptions, tokenizer, model.Config.Architecture)]
            : PromptIds(modelOptions, model.Config, tokenizer, prompt, idsJson);
        options = options with { StopTokens = StopTokens(tokenizer, model.Config.Architecture) };

        var progress = new ProgressLine("samples", count);
        long tokens = 0;
        using (var output = File.CreateText(path))
        {
            for (int i = 0; i < count; i++)
            {
                var sampling = options.Sampling with { Seed = SampleSeeds.For(options.Sampling.Seed, i) };
                var result = Generator.Generate(model, promptIds, options with { Sampling = sampling });
                output.WriteLine(JsonSerializer.Serialize(new { result.Ids, Text = tokenizer?.Decode(result.Ids) }, CommandSupport.Json));
                // Each sample is on disk as soon as it is drawn: an interrupted run keeps what it made.
                output.Flush();
                tokens += result.Ids.Length;
                progress.Report(i + 1);
            }
        }
        Console.Error.WriteLine($"wrote {count} samples ({tokens} tokens) to {path}");
        return 0;
    }

    /// <summary>The prompt of a sample set given none: BOS alone, as llama2.c starts every sequence.</summary>
    private static int BosId(ModelOptions modelOptions, ITokenizer? tokenizer, string architecture) => tokenizer switch
    {
        { BosId: >= 0 } => tokenizer.BosId,
        null when architecture == "llama2c" => 1,
        null => throw new UsageException($"no tokenizer found beside {modelOptions.ModelPath} to name the BOS id each sample starts from: pass --tokenizer PATH, or --ids JSON_ARRAY"),
        _ => throw new UsageException("the tokenizer has no BOS id to start samples from: give --prompt TEXT or --ids JSON_ARRAY"),
    };

    private static int[] PromptIds(ModelOptions modelOptions, ModelConfig config, ITokenizer? tokenizer, string? prompt, string? idsJson)
    {
        if (prompt is null) return CommandSupport.ParseIds(idsJson!, config.VocabSize);
        if (tokenizer is null)
            throw new UsageException($"no tokenizer found beside {modelOptions.ModelPath}: pass --tokenizer PATH, or --ids instead of --prompt");
        return tokenizer.Encode(prompt, addBos: true);
    }

    /// <summary>JSON, or the ids when there is no tokenizer (the text was streamed as it came); traffic on stderr.</summary>
    private static void Print(GenerationResult result, ITokenizer? tokenizer, bool json, PipelineTraffic? traffic)
    {
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                PromptIds = result.PromptIds,
                Ids = result.Ids,
                Text = tokenizer?.Decode(result.Ids),
                FinishReason = result.FinishReason,
                traffic?.Deployment,
                traffic?.Stages,
                traffic?.WireBytes,
            });
            return;
        }
        if (tokenizer is null) Console.WriteLine(string.Join(' ', result.Ids));
        if (traffic is not null) CommandSupport.PrintTraffic(traffic);
    }

    /// <summary>EOS ends generation; llama2.c models also end on BOS, as llama2.c's own loop does.</summary>
    private static HashSet<int> StopTokens(ITokenizer? tokenizer, string architecture)
    {
        var stop = new HashSet<int>();
        if (tokenizer is { EosId: >= 0 }) stop.Add(tokenizer.EosId);
        if (architecture == "llama2c") stop.Add(tokenizer?.BosId is >= 0 and var bos ? bos : 1);
        return stop;
    }

    /// <summary>
    /// Prints text as tokens arrive. Decoding the whole sequence each time (not token by token) keeps
    /// multi-byte characters split over tokens intact: output waits until the text is stable.
    /// </summary>
    private sealed class TextStream(ITokenizer tokenizer, int[] prompt)
    {
        private readonly List<int> _ids = [.. prompt];
        private string _printed = "";

        public void Add(int id)
        {
            if (_printed.Length == 0 && _ids.Count == prompt.Length) Print(tokenizer.Decode(_ids.ToArray()));
            _ids.Add(id);
            Print(tokenizer.Decode(_ids.ToArray()));
        }

        public void Finish()
        {
            Print(tokenizer.Decode(_ids.ToArray()));
            Console.WriteLine();
        }

        private void Print(string text)
        {
            if (!text.StartsWith(_printed, StringComparison.Ordinal) || text.EndsWith('\uFFFD')) return;
            Console.Write(text[_printed.Length..]);
            Console.Out.Flush();
            _printed = text;
        }
    }
}
