using System.Text.Json;
using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class ModelInfoTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("llama", false, TensorDType.F16)]
    [InlineData("qwen2", true, TensorDType.BF16)]
    [InlineData("mistral", false, TensorDType.F32)]
    public void Sizes_count_each_stored_tensor_once(string architecture, bool tied, TensorDType dtype)
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { Architecture = architecture, TiedEmbeddings = tied, DType = dtype });
        using var checkpoint = HuggingFaceCheckpoint.Open(directory);
        var c = checkpoint.Config;

        var info = ModelInfo.Describe(checkpoint);

        Assert.Equal(c.Architecture, info.Architecture);
        Assert.Equal((2, 64, 4, 2, 16, 96, 128, tied), (info.Layers, info.Dim, info.Heads, info.KvHeads, info.HeadDim, info.HiddenDim, info.VocabSize, info.TiedEmbeddings));
        Assert.Equal([dtype.SafetensorsName()], info.DTypes);
        Assert.Equal(c.ParameterCount, info.ParameterCount);
        Assert.Equal(c.ParametersPerLayer * dtype.Size(), info.BytesPerLayer);
        Assert.Equal(c.ParameterCount * dtype.Size(), info.TotalBytes);
        // Stored bytes are the data of the weight files: everything after the header.
        long fileData = new FileInfo(WeightsPath(directory)).Length - 8 - BitConverter.ToInt64(File.ReadAllBytes(WeightsPath(directory)), 0);
        Assert.Equal(fileData, info.TotalBytes);
    }

    [Fact]
    public void Llama2c_checkpoint_is_described_as_float32()
    {
        string directory = WriteTiny(_temp);
        string path = _temp.File("model.bin");
        using (var hf = HuggingFaceCheckpoint.Open(directory))
            Llama2cWriter.Write(hf, path);
        using var checkpoint = Llama2cCheckpoint.Open(path);

        var info = ModelInfo.Describe(checkpoint);

        Assert.Equal("llama2c", info.Architecture);
        Assert.Equal(["F32"], info.DTypes);
        Assert.Equal(checkpoint.Config.ParameterCount * 4, info.TotalBytes);
    }

    [Fact]
    public void Serialises_to_JSON_and_back()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 8192) });
        using var checkpoint = HuggingFaceCheckpoint.Open(directory);
        var info = ModelInfo.Describe(checkpoint);

        string json = JsonSerializer.Serialize(info);
        var back = JsonSerializer.Deserialize<ModelInfo>(json)!;

        Assert.Equal(json, JsonSerializer.Serialize(back));
        Assert.Equal(info.RopeScaling, back.RopeScaling);
        Assert.Equal(info.TotalBytes, back.TotalBytes);
        using var document = JsonDocument.Parse(json);
        Assert.Equal(info.ParameterCount, document.RootElement.GetProperty("ParameterCount").GetInt64());
    }
}
