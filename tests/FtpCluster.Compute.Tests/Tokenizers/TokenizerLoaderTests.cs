using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Tokenizers;

public sealed class TokenizerLoaderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tokenizer-loader-tests").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [SharedModelsFact]
    public void Loads_a_bin_file_as_llama2c_with_the_model_vocabulary_size()
    {
        var tokenizer = TokenizerLoader.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);

        Assert.IsType<Llama2cTokenizer>(tokenizer);
        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 500));
    }

    [SharedModelsFact]
    public void Loads_a_model_file_as_sentencepiece()
    {
        Assert.IsType<SentencePieceModelTokenizer>(TokenizerLoader.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.model"), 32000));
    }

    [SharedModelsFact]
    public void Loads_tokenizer_model_from_a_directory_without_tokenizer_json()
    {
        // The folder also holds tokenizer.bin, which a directory lookup does not consider.
        Assert.IsType<SentencePieceModelTokenizer>(TokenizerLoader.Load(SharedModels.PathTo("llama2-tokenizer")));
    }

    [Fact]
    public void Prefers_tokenizer_json_in_a_directory()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer.json"), HuggingFaceBpeTokenizerTests.Gpt2Style().ToJsonString());
        File.WriteAllText(Path.Combine(_folder, "tokenizer.model"), "not read: tokenizer.json comes first");

        Assert.IsType<HuggingFaceBpeTokenizer>(TokenizerLoader.Load(_folder));
    }

    [Fact]
    public void Refuses_a_tokenizer_with_more_ids_than_the_model_has()
    {
        string path = Path.Combine(_folder, "tokenizer.json");
        File.WriteAllText(path, HuggingFaceBpeTokenizerTests.Gpt2Style().ToJsonString());
        int tokenizerIds = TokenizerLoader.Load(path).VocabSize;

        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path, tokenizerIds - 1));

        Assert.Contains($"{tokenizerIds} token ids, more than the model's vocabulary of {tokenizerIds - 1}", error.Message, StringComparison.Ordinal);
        // A model may have more embedding rows than the tokenizer has tokens.
        Assert.Equal(tokenizerIds, TokenizerLoader.Load(path, tokenizerIds + 64).VocabSize);
    }

    [Fact]
    public void A_directory_without_a_tokenizer_names_the_directory_and_what_was_expected()
    {
        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(_folder));

        Assert.Equal(_folder, error.File);
        Assert.Contains("neither tokenizer.json nor tokenizer.model", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_file_type_names_the_file_and_what_was_expected()
    {
        string path = Path.Combine(_folder, "vocab.txt");
        File.WriteAllText(path, "hello");

        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));

        Assert.Equal(path, error.File);
        Assert.Contains("expected a llama2.c tokenizer (.bin)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_path_is_a_format_error_naming_it()
    {
        string path = Path.Combine(_folder, "absent.json");

        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));

        Assert.Equal(path, error.File);
    }
}
