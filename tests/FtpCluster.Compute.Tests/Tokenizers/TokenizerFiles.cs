using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Models;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Tests.Tokenizers;

/// <summary>Vocabularies made in tests, written as the files a tokenizer is loaded from.</summary>
internal static class TokenizerFiles
{
    /// <summary>A GGUF file holding only the vocabulary's metadata (no tensors).</summary>
    public static string WriteGguf(TempDirectory temp, GgufVocabulary vocabulary)
    {
        string path = temp.File($"vocab-{Guid.NewGuid():N}.gguf");
        using var writer = GgufWriter.Create(path, vocabulary.ToMetadata(), []);
        writer.Complete();
        return path;
    }

    public static string WriteJson(TempDirectory temp, ByteLevelBpeFixture fixture)
    {
        string path = temp.File($"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, fixture.ToTokenizerJson().ToJsonString());
        return path;
    }
}
