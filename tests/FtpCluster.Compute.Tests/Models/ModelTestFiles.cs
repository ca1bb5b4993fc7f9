using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Models;

/// <summary>A fresh folder under the system temp directory, deleted with its contents on Dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ftpcluster-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Synthetic checkpoints for tests, and ways to damage them one field at a time.</summary>
internal static class ModelTestFiles
{
    /// <summary>The tiny preset (2 layers, dim 64, 4 heads, 2 KV heads, hidden 96, vocab 128) written to a subfolder.</summary>
    public static string WriteTiny(TempDirectory temp, SyntheticModelOptions? options = null, string name = "hf")
    {
        string directory = temp.File(name);
        ModelSynthesizer.Write(options ?? SyntheticModelOptions.Preset("tiny"), directory);
        return directory;
    }

    public static string ConfigPath(string directory) => Path.Combine(directory, HuggingFaceCheckpoint.ConfigFileName);

    public static string WeightsPath(string directory) => Path.Combine(directory, HuggingFaceCheckpoint.WeightsFileName);

    public static void EditConfig(string directory, Action<JsonObject> edit)
    {
        string path = ConfigPath(directory);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    /// <summary>Rewrites a safetensors header, keeping the data bytes after it as they are.</summary>
    public static void EditSafetensorsHeader(string path, Action<JsonObject> edit)
    {
        byte[] file = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        var header = JsonNode.Parse(file.AsSpan(8, headerLength))!.AsObject();
        edit(header);
        WriteSafetensors(path, header.ToJsonString(), file.AsSpan(8 + headerLength).ToArray());
    }

    /// <summary>A safetensors file from a header text and data bytes, as given: nothing is checked.</summary>
    public static void WriteSafetensors(string path, string header, byte[] data)
    {
        byte[] headerBytes = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
        stream.Write(length);
        stream.Write(headerBytes);
        stream.Write(data);
    }

    public static void Truncate(string path, long bytesToRemove)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(stream.Length - bytesToRemove);
    }

    /// <summary>Opening must fail with a <see cref="ModelFormatException"/> whose message names each of <paramref name="expected"/>.</summary>
    public static ModelFormatException AssertFails(Action open, params string[] expected)
    {
        var error = Assert.Throws<ModelFormatException>(open);
        foreach (string part in expected)
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        return error;
    }
}
