using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Models;
using FtpCluster.Compute.Tests.Tokenizers;
using FtpCluster.Compute.Tokenizers;
using FtpCluster.Grains.Wire;
using Xunit;

namespace FtpCluster.Compute.Tests.Fuzz;

/// <summary>The inputs fuzzing and review found mishandled, each reduced to the one field at fault.</summary>
public sealed class FuzzRegressionTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void An_offset_whose_end_wraps_past_long_max_is_refused_not_read()
    {
        string path = _temp.File("eight.bin");
        File.WriteAllBytes(path, new byte[8]);
        using var file = MappedFile.Open(path);
        // offset + 4 wraps to a negative number, which the old check took for "inside the file".
        var error = Assert.Throws<ModelFormatException>(() => new WeightTensor("t", file, long.MaxValue - 2, TensorDType.F32, [1]));
        Assert.Equal("t", error.Tensor);
        Assert.Contains("beyond the end of the file", error.Message);
    }

    [Fact]
    public void A_tensor_over_2_GiB_is_refused_by_name()
    {
        string path = _temp.File("eight.bin");
        File.WriteAllBytes(path, new byte[8]);
        using var file = MappedFile.Open(path);
        var error = Assert.Throws<ModelFormatException>(() => new WeightTensor("big", file, 0, TensorDType.F16, [1L << 20, 1L << 20]));
        Assert.Equal("big", error.Tensor);
        Assert.Contains("2 GiB", error.Message);
        Assert.Contains("negative", Assert.Throws<ModelFormatException>(() => new WeightTensor("neg", file, 0, TensorDType.F32, [-1, 2])).Message);
    }

    [Fact]
    public void Llama2c_header_vocab_of_int_min_is_refused_not_negated()
    {
        string path = _temp.File("model.bin");
        var header = new byte[7 * 4];
        int[] fields = [16, 32, 1, 2, 1, int.MinValue, 64];
        for (int i = 0; i < fields.Length; i++)
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4 * i), fields[i]);
        File.WriteAllBytes(path, header);
        Assert.Contains("vocab_size", Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Open(path)).Message);
    }

    [Theory]
    [InlineData("vocab_size", 2147483647, "vocabulary size")]
    [InlineData("max_position_embeddings", 1073741824, "max sequence length")]
    [InlineData("num_hidden_layers", 100000, "layer count")]
    [InlineData("intermediate_size", 1073741824, "hidden dim")]
    public void Config_values_that_would_size_absurd_allocations_are_refused_at_open(string key, int value, string field)
    {
        string hf = ModelTestFiles.WriteTiny(_temp);
        ModelTestFiles.EditConfig(hf, c => c[key] = value);
        var error = Assert.Throws<ModelFormatException>(() => HuggingFaceConfig.Read(ModelTestFiles.ConfigPath(hf)));
        Assert.Contains($"{field} {value} is beyond", error.Message);
    }

    [Fact]
    public void Invalid_utf8_inside_a_config_string_is_a_format_error()
    {
        string hf = ModelTestFiles.WriteTiny(_temp);
        string path = ModelTestFiles.ConfigPath(hf);
        byte[] text = File.ReadAllBytes(path);
        int at = Encoding.UTF8.GetString(text).IndexOf("LlamaForCausalLM", StringComparison.Ordinal);
        text[at] = 0xFF;
        File.WriteAllBytes(path, text);
        Assert.Contains("not valid UTF-8", Assert.Throws<ModelFormatException>(() => HuggingFaceConfig.Read(path)).Message);
    }

    [Fact]
    public void Invalid_utf8_in_a_safetensors_header_is_a_format_error()
    {
        string path = _temp.File("bad.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"__metadata__": {"k": "vX"}}""");
        header[^4] = 0xC3; // a lead byte without its continuation
        var file = new byte[8 + header.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(path, file);
        Assert.Contains("not valid UTF-8", Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void A_config_json_past_its_size_limit_is_refused_unread()
    {
        string path = _temp.File("config.json");
        using (var stream = File.Create(path))
            stream.SetLength(InputFileLimits.ConfigJsonBytes + 1);
        Assert.Contains("limit for a config.json", Assert.Throws<ModelFormatException>(() => HuggingFaceConfig.Read(path)).Message);
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(-5)]
    public void A_tokenizer_json_id_outside_any_vocabulary_is_refused(int id)
    {
        var json = ByteLevelBpeFixture.Create("gpt-2").ToTokenizerJson();
        json["model"]!["vocab"]!["789"] = id;
        string path = _temp.File("tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        Assert.IsType<ModelFormatException>(Record.Exception(() => HuggingFaceBpeTokenizer.Load(path)));
    }

    [Fact]
    public void A_backtracking_pre_tokenizer_pattern_times_out_as_a_format_error()
    {
        var json = ByteLevelBpeFixture.Create("gpt-2").ToTokenizerJson();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        };
        string path = _temp.File("tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var tokenizer = HuggingFaceBpeTokenizer.Load(path);
        var error = Assert.Throws<ModelFormatException>(() => tokenizer.Encode(new string('a', 64) + "!"));
        Assert.Contains("ran longer than", error.Message);
    }

    [Fact]
    public void An_activation_packet_blob_longer_than_the_packet_is_invalid_data()
    {
        var packet = new ActivationPacket("dep-1", 42, 1, 2, 4, [new PacketRow(1, 0)], [1f, 2f, 3f, 4f]);
        byte[] bytes = ActivationCodec.Encode(packet, WireEncoding.F32, int.MaxValue);
        // The last field is the hidden payload: a bin 8 (0xC4, length) of 16 bytes. Claim 255.
        int lengthAt = bytes.Length - 16 - 1;
        Assert.Equal(0xC4, bytes[lengthAt - 1]);
        bytes[lengthAt] = 0xFF;
        Assert.Throws<InvalidDataException>(() => ActivationCodec.Decode(bytes));
    }
}
