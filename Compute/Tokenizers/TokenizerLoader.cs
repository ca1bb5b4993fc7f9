using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>Picks the tokenizer reader by file name, or the tokenizer file in a model directory.</summary>
public static class TokenizerLoader
{
    /// <summary>The tokenizer files a Hugging Face model folder may hold, in the order they are preferred.</summary>
    private static readonly string[] HuggingFaceFiles = ["tokenizer.json", "tokenizer.model"];

    private const string Expected =
        "expected a llama2.c tokenizer (.bin), a SentencePiece model (.model), a Hugging Face tokenizer.json (.json), "
        + "a GGUF file with a vocabulary (.gguf), or a directory holding tokenizer.json or tokenizer.model";

    /// <summary>
    /// The tokenizer that comes with a model: tokenizer.json or tokenizer.model in a Hugging Face directory; a GGUF
    /// file itself when its metadata holds a vocabulary; the one tok*.bin beside a llama2.c file (or a GGUF file
    /// without a vocabulary). Null when there is none (or several to choose from).
    /// </summary>
    public static string? FindBeside(string modelPath)
    {
        if (Directory.Exists(modelPath))
            return HuggingFaceFiles.Select(f => Path.Combine(modelPath, f)).FirstOrDefault(File.Exists);
        if (IsGguf(modelPath) && File.Exists(modelPath) && GgufTokenizer.HasVocabulary(modelPath))
            return modelPath;
        string dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        var candidates = Directory.GetFiles(dir, "tok*.bin").Where(f => Path.GetFullPath(f) != Path.GetFullPath(modelPath)).ToArray();
        return candidates.Length == 1 ? candidates[0] : null;
    }

    /// <summary>
    /// Loads the tokenizer at <paramref name="path"/>: a <c>.bin</c> file is llama2.c's format, a <c>.model</c>
    /// file SentencePiece, a <c>.json</c> file a Hugging Face tokenizer.json, a <c>.gguf</c> file the vocabulary in its
    /// metadata (<see cref="GgufTokenizer"/>); a directory is searched for
    /// tokenizer.json, then tokenizer.model. <paramref name="vocabSize"/> is the model's vocabulary size: the
    /// llama2.c file must hold exactly that many tokens (its format stores no count), and no other tokenizer
    /// may have ids beyond it (a model's embedding may have more rows than the tokenizer has tokens).
    /// </summary>
    public static ITokenizer Load(string path, int? vocabSize = null)
    {
        if (Directory.Exists(path))
        {
            foreach (string name in HuggingFaceFiles)
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
            ".gguf" => GgufTokenizer.Load(path),
            _ => throw new ModelFormatException(path, null, $"unknown tokenizer file type: {Expected}"),
        };
        if (tokenizer.VocabSize > vocabSize)
            throw new ModelFormatException(path, null,
                $"the tokenizer has {tokenizer.VocabSize} token ids, more than the model's vocabulary of {vocabSize}");
        return tokenizer;
    }

    private static bool IsGguf(string path) => Path.GetExtension(path).Equals(".gguf", StringComparison.OrdinalIgnoreCase);
}
