using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>Picks the tokenizer reader by file name, or the tokenizer file in a model directory.</summary>
public static class TokenizerLoader
{
    private const string Expected =
        "expected a llama2.c tokenizer (.bin), a SentencePiece model (.model), a Hugging Face tokenizer.json (.json), "
        + "or a directory holding tokenizer.json or tokenizer.model";

    /// <summary>
    /// Loads the tokenizer at <paramref name="path"/>: a <c>.bin</c> file is llama2.c's format, a <c>.model</c>
    /// file SentencePiece, a <c>.json</c> file a Hugging Face tokenizer.json; a directory is searched for
    /// tokenizer.json, then tokenizer.model. <paramref name="vocabSize"/> is the model's vocabulary size: the
    /// llama2.c file must hold exactly that many tokens (its format stores no count), and no other tokenizer
    /// may have ids beyond it (a model's embedding may have more rows than the tokenizer has tokens).
    /// </summary>
    public static ITokenizer Load(string path, int? vocabSize = null)
    {
        if (Directory.Exists(path))
        {
            foreach (string name in new[] { "tokenizer.json", "tokenizer.model" })
            {
                string candidate = Path.Combine(path, name);
                if (File.Exists(candidate))
                    return Load(candidate, vocabSize);
            }
            throw new ModelFormatException(path, null, $"directory holds neither tokenizer.json nor tokenizer.model: {Expected}");
        }
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, $"no such file or directory: {Expected}");

        ITokenizer tokenizer = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".bin" => Llama2cTokenizer.Load(path, vocabSize),
            ".model" => SentencePieceModelTokenizer.Load(path),
            ".json" => HuggingFaceBpeTokenizer.Load(path),
            _ => throw new ModelFormatException(path, null, $"unknown tokenizer file type: {Expected}"),
        };
        if (tokenizer.VocabSize > vocabSize)
            throw new ModelFormatException(path, null,
                $"the tokenizer has {tokenizer.VocabSize} token ids, more than the model's vocabulary of {vocabSize}");
        return tokenizer;
    }
}
