using System.Buffers.Binary;
using System.Text;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Serving;
using FtpCluster.Compute.Tests.Models;
using FtpCluster.Compute.Tests.Tokenizers;
using FtpCluster.Compute.Tokenizers;
using FtpCluster.Grains.Wire;
using Xunit;

namespace FtpCluster.Compute.Tests.Fuzz;

/// <summary>
/// One fuzz target per untrusted format (docs/fuzzing.md): mutants of a valid input either load and work or
/// are refused with the format's own exception type, within a time and allocation bound.
/// Files are refused with <see cref="ModelFormatException"/>, the one type every model and tokenizer reader
/// documents; activation packets with <see cref="InvalidDataException"/>, ActivationCodec.Decode's documented
/// error; batch lines never throw, since each bad line becomes a <see cref="BatchLineError"/> for its output.
/// </summary>
public sealed class FuzzTests : IDisposable
{
    /// <summary>Model files are mapped, not read, so loading one allocates only its header's objects.</summary>
    private const long ModelFileAllocationBound = 16L << 20;

    /// <summary>Tokenizer files become vocabularies and merge tables, some tens of times the file's size.</summary>
    private const long TokenizerAllocationBound = 64L << 20;

    private static readonly Type[] FileErrors = [typeof(ModelFormatException)];

    private static readonly SyntheticModelOptions Small = SyntheticModelOptions.Preset("tiny") with
    {
        Layers = 1, Dim = 16, Heads = 2, KvHeads = 1, HiddenDim = 32, VocabSize = 32, MaxPositions = 64,
    };

    private const string SampleText = "Hello, world! 123 <|im_end|> héllo";

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Fuzz_llama2c_checkpoint()
    {
        string hf = _temp.File("hf");
        ModelSynthesizer.Write(Small, hf);
        string valid = _temp.File("valid.bin");
        using (var checkpoint = HuggingFaceCheckpoint.Open(hf))
            Llama2cWriter.Write(checkpoint, valid);
        string path = _temp.File("mutant.bin");
        Run("llama2c", File.ReadAllBytes(valid), Mutator.MutateBytes, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            using var checkpoint = Llama2cCheckpoint.Open(path);
            ReadEveryTensor(checkpoint);
        }, FileErrors, ModelFileAllocationBound);
    }

    [Fact]
    public void Fuzz_safetensors()
    {
        string hf = _temp.File("hf");
        ModelSynthesizer.Write(Small, hf);
        string path = ModelTestFiles.WeightsPath(hf);
        Run("safetensors", File.ReadAllBytes(path), MutateSafetensors, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            using var file = SafetensorsFile.Open(path);
            foreach (var tensor in file.Tensors.Values)
                ReadFirstElement(tensor);
        }, FileErrors, ModelFileAllocationBound);
    }

    [Fact]
    public void Fuzz_config_json()
    {
        string hf = _temp.File("hf");
        ModelSynthesizer.Write(Small, hf);
        string path = ModelTestFiles.ConfigPath(hf);
        Run("config.json", File.ReadAllBytes(path), Mutator.MutateJson, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            using var checkpoint = HuggingFaceCheckpoint.Open(hf);
            ReadEveryTensor(checkpoint);
        }, FileErrors, ModelFileAllocationBound);
    }

    [Fact]
    public void Fuzz_gguf()
    {
        string valid = _temp.File("valid.gguf");
        ModelSynthesizer.WriteGguf(Small, valid);
        string path = _temp.File("mutant.gguf");
        Run("gguf", File.ReadAllBytes(valid), Mutator.MutateBytes, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            using var checkpoint = GgufCheckpoint.Open(path);
            ReadEveryTensor(checkpoint);
        }, FileErrors, ModelFileAllocationBound);
    }

    [Fact]
    public void Fuzz_tokenizer_json()
    {
        byte[] valid = Encoding.UTF8.GetBytes(ByteLevelBpeFixture.Create("qwen2").ToTokenizerJson().ToJsonString());
        string path = _temp.File("tokenizer.json");
        Run("tokenizer.json", valid, Mutator.MutateJson, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            var tokenizer = HuggingFaceBpeTokenizer.Load(path);
            tokenizer.Decode(tokenizer.Encode(SampleText));
        }, FileErrors, TokenizerAllocationBound);
    }

    [SharedModelsFact]
    public void Fuzz_sentencepiece_tokenizer_model()
    {
        byte[] valid = File.ReadAllBytes(SharedModels.PathTo("llama2-tokenizer", "tokenizer.model"));
        string path = _temp.File("tokenizer.model");
        Run("tokenizer.model", valid, Mutator.MutateBytes, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            var tokenizer = SentencePieceModelTokenizer.Load(path);
            tokenizer.Decode(tokenizer.Encode(SampleText));
        }, FileErrors, TokenizerAllocationBound);
    }

    [Fact]
    public void Fuzz_llama2c_tokenizer()
    {
        string path = _temp.File("tok.bin");
        Run("llama2c-tokenizer", Llama2cTokenizerFile(), Mutator.MutateBytes, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            var tokenizer = Llama2cTokenizer.Load(path);
            tokenizer.Decode(tokenizer.Encode(SampleText));
        }, FileErrors, TokenizerAllocationBound);
    }

    [Fact]
    public void Fuzz_router_artifact()
    {
        string valid = _temp.File("valid-router.json");
        new RouterArtifact
        {
            ModelFingerprint = "sha256:00",
            Schedule = SparsitySchedule.Uniform(0.3, 4),
            Router = RouterKind.Learned,
            MlpParameters = [.. Enumerable.Range(0, RouterMlp.ParameterCount).Select(i => (float)Math.Sin(i))],
            Metrics = new Dictionary<string, double> { ["kl"] = 0.01 },
        }.Save(valid);
        string path = _temp.File("router.json");
        Run("router-artifact", File.ReadAllBytes(valid), Mutator.MutateJson, bytes =>
        {
            File.WriteAllBytes(path, bytes);
            RouterArtifact.Load(path).CreateRouter();
        }, FileErrors, TokenizerAllocationBound);
    }

    [Fact]
    public void Fuzz_activation_packet()
    {
        var rows = Enumerable.Range(0, 6).Select(r => new PacketRow(1000 + r / 3, r % 3, r)).ToArray();
        var hidden = Enumerable.Range(0, rows.Length * 16).Select(i => (float)Math.Cos(i)).ToArray();
        var packet = new ActivationPacket("dep-1", 42, 1, 2, 16, rows, hidden);
        foreach (var encoding in Enum.GetValues<WireEncoding>())
        {
            Run($"activation-packet-{encoding}", ActivationCodec.Encode(packet, encoding, int.MaxValue), Mutator.MutateBytes, bytes =>
            {
                var decoded = ActivationCodec.Decode(bytes);
                if (decoded.HiddenStates.Length > 0)
                    _ = decoded.HiddenStates[0] + decoded.HiddenStates[^1];
            }, [typeof(InvalidDataException)], 16L << 20);
        }
    }

    [Fact]
    public void Fuzz_batch_lines()
    {
        const string lines = """
            {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 7, "temperature": 0.5, "seed": 3}}
            {"custom_id": "p1", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "Once", "max_tokens": 5, "stop": ["\n"]}}
            """;
        Run("batch-lines", Encoding.UTF8.GetBytes(lines), MutateBatchLines, bytes =>
        {
            using var stream = new MemoryStream(bytes);
            foreach (var entry in new BatchInputReader(stream, "fuzz.jsonl").Read())
                _ = entry.LineNumber;
        }, [], 16L << 20);
    }

    private static void Run(string name, byte[] valid, Func<byte[], Random, byte[]> mutate, Action<byte[]> loadAndUse, Type[] allowed, long maxAllocatedBytes)
    {
        int mutants = FuzzRunner.Run(new FuzzTarget(name, valid, mutate, loadAndUse, allowed, maxAllocatedBytes));
        Assert.True(mutants >= 1);
    }

    private static void ReadEveryTensor(ICheckpoint checkpoint)
    {
        foreach (var (role, layer) in CheckpointTensors.All(checkpoint.Config))
            ReadFirstElement(CheckpointTensors.Require(checkpoint, role, layer));
    }

    private static void ReadFirstElement(WeightTensor tensor)
    {
        if (tensor.ElementCount == 0)
            return;
        Span<float> first = stackalloc float[1];
        tensor.CopyTo(first);
        tensor.CopyTo(first, tensor.ElementCount - 1);
    }

    /// <summary>Half the time the header's JSON is mutated (the file rebuilt around it), otherwise the file's bytes.</summary>
    private static byte[] MutateSafetensors(byte[] valid, Random random)
    {
        if (random.Next(2) == 0)
            return Mutator.MutateBytes(valid, random);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(valid));
        byte[] header = Mutator.MutateJson(valid.AsSpan(8, headerLength).ToArray(), random);
        var file = new byte[8 + header.Length + valid.Length - 8 - headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        valid.AsSpan(8 + headerLength).CopyTo(file.AsSpan(8 + header.Length));
        return file;
    }

    /// <summary>JSON-aware mutation of one line, or byte mutation of the whole input.</summary>
    private static byte[] MutateBatchLines(byte[] valid, Random random)
    {
        if (random.Next(2) == 0)
            return Mutator.MutateBytes(valid, random);
        var lines = Encoding.UTF8.GetString(valid).Split('\n');
        int at = random.Next(lines.Length);
        lines[at] = Encoding.UTF8.GetString(Mutator.MutateJson(Encoding.UTF8.GetBytes(lines[at]), random));
        return Encoding.UTF8.GetBytes(string.Join('\n', lines));
    }

    /// <summary>A llama2.c tokenizer: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens, then a few merged pieces.</summary>
    private static byte[] Llama2cTokenizerFile()
    {
        var pieces = new List<string> { "<unk>", "\n<s>\n", "\n</s>\n" };
        pieces.AddRange(Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"));
        pieces.AddRange([" ", "H", "e", "l", "o", "He", "ll", "llo", "Hello", " w", "or", "ld", " world", "1", "2", "3"]);
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write(pieces.Max(p => Encoding.UTF8.GetByteCount(p)));
        for (int i = 0; i < pieces.Count; i++)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(pieces[i]);
            writer.Write(i < 259 ? 0f : -i);
            writer.Write(utf8.Length);
            writer.Write(utf8);
        }
        writer.Flush();
        return stream.ToArray();
    }
}
