using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster models synth|info|quantize|chat-template</c>: make random-weight checkpoints, describe any checkpoint, write one as quantized GGUF.</summary>
internal static class ModelsCommand
{
    private static readonly Option<string> Preset = CliOption.Text("--preset", "NAME",
        $"Starts from a preset: {string.Join(", ", SyntheticModelOptions.PresetNames)} (default tiny's sizes)").Completing(SyntheticModelOptions.PresetNames);

    private static readonly Option<string> Arch = CliOption.Text("--arch", "llama|mistral|qwen2", "The architecture written to config.json").Completing(["llama", "mistral", "qwen2"]);

    private static readonly Option<int?> Layers = CliOption.OptionalInt("--layers", "N", "Transformer blocks");

    private static readonly Option<int?> Dim = CliOption.OptionalInt("--dim", "N", "Hidden size");

    private static readonly Option<int?> Heads = CliOption.OptionalInt("--heads", "N", "Attention heads");

    private static readonly Option<int?> KvHeads = CliOption.OptionalInt("--kv-heads", "N", "Key/value heads (grouped-query attention when fewer than --heads)");

    private static readonly Option<int?> Hidden = CliOption.OptionalInt("--hidden", "N", "The feed-forward layer's hidden size");

    private static readonly Option<int?> Vocab = CliOption.OptionalInt("--vocab", "N", "Vocabulary size");

    private static readonly Option<int?> HeadDim = CliOption.OptionalInt("--head-dim", "N", "Size of one head (default --dim / --heads)");

    private static readonly Option<float?> RopeTheta = CliOption.OptionalFloat("--rope-theta", "X", "RoPE base frequency");

    private static readonly Option<int?> MaxPositions = CliOption.OptionalInt("--max-positions", "N", "The model's context length");

    private static readonly Option<TensorDType?> DType = CliOption.Parsed<TensorDType?>("--dtype", "f32|f16|bf16", "The weights' storage type",
        word => TensorDTypeExtensions.Parse(word), ["f32", "f16", "bf16"]);

    private static readonly Option<int?> Seed = CliOption.OptionalInt("--seed", "S", "Seeds the random weights");

    private static readonly Option<bool> Tied = CliOption.Flag("--tied", "The output layer shares the embedding's weights");

    private static readonly Option<bool> Untied = CliOption.Flag("--untied", "The output layer has weights of its own");

    private static readonly Option<int?> ShardMb = CliOption.OptionalInt("--shard-mb", "N", "Splits the safetensors into shards of at most N MiB, with an index");

    private static readonly Option<string> Format = CliOption.Text("--format", "hf|gguf",
        "hf (default): a Hugging Face folder; gguf: one GGUF file (llama or qwen2, f32/f16/bf16 weights, no tokenizer)").Completing(["hf", "gguf"]);

    private static readonly Option<string> Out = CliOption.Text("--out", "PATH", "The folder (hf) or file (gguf) the checkpoint is written to (required)");

    private static readonly Argument<string> InfoPath = new("PATH") { Description = "A checkpoint: a Hugging Face directory, a GGUF file, a llama2.c .bin file, or a Hugging Face repo id ORG/NAME[@REVISION]" };

    private static readonly Option<bool> InfoJson = CliOption.Flag("--json", "Prints the description as JSON");

    public static Command Create()
    {
        var synth = new Command("synth", """
            Writes a random-weight checkpoint: a Hugging Face folder, or with --format gguf one GGUF file of the same weights.
              models synth (--preset NAME | --layers N --dim N --heads N --kv-heads N --hidden N --vocab N) [--arch A] [--dtype D] [--seed S] [--format hf|gguf] --out PATH
            """);
        foreach (var option in new Option[] { Preset, Arch, Layers, Dim, Heads, KvHeads, Hidden, Vocab, HeadDim, RopeTheta, MaxPositions, DType, Seed, Tied, Untied, ShardMb, Format, Out })
            synth.Add(option);
        synth.SetAction(Synth);
        var info = new Command("info", "Architecture, parameter count, bytes per layer of a checkpoint.") { InfoPath, InfoJson };
        info.SetAction(Info);
        var chatTemplate = new Command("chat-template", """
            Prints the prompt text a chat request becomes: the messages through the model's chat template (chat_template of the
            model folder's tokenizer_config.json, rendered as Hugging Face does; a model without one gets the plain template
            "role: content" per line, then "assistant:"). Reads only tokenizer_config.json, not the weights.
              models chat-template --model PATH --messages JSON [--no-generation-prompt]
            """) { ChatModel, Messages, NoGenerationPrompt };
        chatTemplate.SetAction(ChatTemplateText);
        var quantize = new Command("quantize", $"""
            Writes a checkpoint (Hugging Face folder or repo id, llama2.c .bin, GGUF) as one GGUF file of the same architecture
            whose matrices are quantized in llama.cpp's blocks: every matrix in one type, or as llama.cpp's q4_k_s, q4_k_m and
            q5_k_m mixes choose (the output head in Q6_K, some v and down projections raised). Norms and biases stay F32, a
            matrix whose row length is not a multiple of the type's block falls back as llama.cpp's quantizer does (q4_k → q5_0,
            q5_k → q5_1, q6_k → q8_0, else f16). The vocabulary and chat template go along from a GGUF source or a SentencePiece
            tokenizer.model; other sources get none (said on stderr). Reads tensor by tensor.
              models quantize --model PATH --type {string.Join("|", GgufQuantization.Names)} --out FILE.gguf
            """) { QuantizeModel, QuantizeType, QuantizeOut };
        quantize.SetAction(Quantize);
        return new Command("models", "Make random-weight checkpoints, describe any checkpoint, write one as quantized GGUF, show a chat template's prompt.")
            { synth, info, quantize, chatTemplate };
    }

    private static readonly Option<string> QuantizeModel = CliOption.Text("--model", "PATH|ORG/NAME",
        "The checkpoint: a Hugging Face folder, a GGUF file, a llama2.c .bin file, or a Hugging Face repo id ORG/NAME[@REVISION] (required)");

    private static readonly Option<string> QuantizeType = CliOption.Text("--type", string.Join("|", GgufQuantization.Names),
        "The quantized type of the matrices, or one of llama.cpp's k-quant mixes (required)")
        .Completing([.. GgufQuantization.Names]);

    private static readonly Option<string> QuantizeOut = CliOption.Text("--out", "FILE.gguf", "The GGUF file written (required)");

    private static int Quantize(ParseResult parse)
    {
        string typeName = parse.Required(QuantizeType);
        GgufQuantization quantization;
        try
        {
            quantization = GgufQuantization.Parse(typeName);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--type: {e.Message}");
        }
        string output = parse.Required(QuantizeOut);
        using var source = Checkpoint.Open(ModelArgument.Resolve(parse.Required(QuantizeModel)));
        ProgressLine? progress = null;
        var result = GgufQuantizer.Quantize(source, output, quantization, (_, done, total) => (progress ??= new ProgressLine($"quantizing to {typeName}", total)).Report(done));
        if (result.NoVocabularyReason is { } reason)
            Console.Error.WriteLine($"no vocabulary written (tokenizer.ggml.model \"{FtpCluster.Compute.Tokenizers.GgufVocabulary.NoVocabulary}\": token ids go in directly): {reason}");
        string types = string.Join(", ", result.TensorsByType.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {kv.Key}"));
        Console.WriteLine($"wrote {output}: {GgufCheckpoint.ArchitectureName(result.Config)}, {result.Config.Layers} layers, tensors {types}, " +
            $"{new FileInfo(output).Length:N0} bytes");
        return 0;
    }

    private static readonly Option<string> ChatModel = CliOption.Text("--model", "PATH|ORG/NAME", "The model folder (or a file in it), or a Hugging Face repo id");

    private static readonly Option<string> Messages = CliOption.Text("--messages", "JSON",
        "The messages as a chat request gives them: [{\"role\": \"user\", \"content\": \"...\"}, ...]");

    private static readonly Option<bool> NoGenerationPrompt = CliOption.Flag("--no-generation-prompt", "Leave out the start of the assistant's turn");

    private static int ChatTemplateText(ParseResult parse)
    {
        string model = ModelArgument.Resolve(parse.Required(ChatModel));
        string messages = parse.Required(Messages);
        System.Text.Json.JsonDocument document;
        try
        {
            document = System.Text.Json.JsonDocument.Parse(messages);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new UsageException($"--messages expects a JSON array of {{\"role\", \"content\"}} objects: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Array)
                throw new UsageException($"--messages expects a JSON array of {{\"role\", \"content\"}} objects, got {document.RootElement.ValueKind}");
            try
            {
                Console.Write(FtpCluster.Compute.Chat.ChatTemplate.ForModel(model).Render(document.RootElement, !parse.GetValue(NoGenerationPrompt)));
            }
            catch (FtpCluster.Compute.Chat.ChatTemplateException e)
            {
                throw new InvalidOperationException(e.Message, e);
            }
        }
        return 0;
    }

    private static int Synth(ParseResult parse)
    {
        string output = parse.Required(Out);
        string format = parse.GetValue(Format) ?? "hf";
        if (format is not ("hf" or "gguf"))
            throw new UsageException($"--format must be hf or gguf, got '{format}'");
        if (format == "gguf" && parse.GetValue(ShardMb) is not null)
            throw new UsageException("--shard-mb applies to --format hf only: a GGUF model is one file");
        SyntheticModelOptions options;
        try
        {
            options = parse.GetValue(Preset) is { } preset ? SyntheticModelOptions.Preset(preset) : new SyntheticModelOptions();
            options = options with
            {
                Architecture = parse.GetValue(Arch) ?? options.Architecture,
                Layers = parse.GetValue(Layers) ?? options.Layers,
                Dim = parse.GetValue(Dim) ?? options.Dim,
                Heads = parse.GetValue(Heads) ?? options.Heads,
                KvHeads = parse.GetValue(KvHeads) ?? options.KvHeads,
                HiddenDim = parse.GetValue(Hidden) ?? options.HiddenDim,
                VocabSize = parse.GetValue(Vocab) ?? options.VocabSize,
                HeadDim = parse.GetValue(HeadDim) ?? options.HeadDim,
                RopeTheta = parse.GetValue(RopeTheta) ?? options.RopeTheta,
                MaxPositions = parse.GetValue(MaxPositions) ?? options.MaxPositions,
                DType = parse.GetValue(DType) ?? options.DType,
                Seed = parse.GetValue(Seed) is { } seed ? (ulong)seed : options.Seed,
                TiedEmbeddings = parse.GetValue(Tied) || !parse.GetValue(Untied) && options.TiedEmbeddings,
                MaxShardBytes = parse.GetValue(ShardMb) is { } shardMb ? shardMb * (1L << 20) : options.MaxShardBytes,
            };
            options.ToConfig();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        var config = format == "gguf" ? ModelSynthesizer.WriteGguf(options, output) : ModelSynthesizer.Write(options, output);
        Console.WriteLine($"wrote {output}: {config.Architecture}, {config.Layers} layers, dim {config.Dim}, " +
            $"{config.ParameterCount:N0} parameters, {options.DType}{(format == "gguf" ? ", GGUF" : "")}");
        return 0;
    }

    private static int Info(ParseResult parse)
    {
        bool json = parse.GetValue(InfoJson);
        using var checkpoint = Checkpoint.Open(ModelArgument.Resolve(parse.GetRequiredValue(InfoPath)));
        var info = ModelInfo.Describe(checkpoint);
        if (json)
        {
            CommandSupport.WriteJson(info);
            return 0;
        }
        Console.WriteLine($"{info.Source}");
        Console.WriteLine($"  architecture   {info.Architecture}");
        Console.WriteLine($"  layers         {info.Layers}");
        Console.WriteLine($"  dim            {info.Dim} (hidden {info.HiddenDim})");
        Console.WriteLine($"  heads          {info.Heads} (kv heads {info.KvHeads}, head dim {info.HeadDim})");
        Console.WriteLine($"  vocab          {info.VocabSize}{(info.TiedEmbeddings ? ", tied embeddings" : "")}");
        Console.WriteLine($"  context        {info.MaxSeqLen}");
        string scaling = info.RopeScaling is { } s ? $", llama3 scaling x{s.Factor}"
            : info.RopeFrequencyFactors is { } factors ? $", llama3 scaling as per-pair frequency factors (up to x{factors.Max()})" : "";
        Console.WriteLine($"  rope theta     {info.RopeTheta}{scaling}");
        Console.WriteLine($"  dtypes         {string.Join(", ", info.DTypes)}");
        Console.WriteLine($"  parameters     {info.ParameterCount:N0}");
        Console.WriteLine($"  bytes/layer    {info.BytesPerLayer:N0}");
        Console.WriteLine($"  total bytes    {info.TotalBytes:N0}");
        return 0;
    }
}
