using System.Text.RegularExpressions;

namespace FtpCluster.Compute.Models;

/// <summary>
/// How large a model-side file may be before it is read whole, and how long a pattern taken from a file may run.
/// A silo reads these files from disk and from downloads it did not write; each bound is far above any real
/// file of its kind and far below what would hurt a silo to hold, so a damaged or crafted file is refused by
/// its size, before parsing, with the file and the limit named.
/// </summary>
public static class InputFileLimits
{
    /// <summary>config.json (real ones are a few kilobytes): 4 MiB.</summary>
    public const long ConfigJsonBytes = 4L << 20;

    /// <summary>model.safetensors.index.json (a line per tensor; the largest real ones are well under 1 MiB): 16 MiB.</summary>
    public const long SafetensorsIndexBytes = 16L << 20;

    /// <summary>A router artifact (a schedule, 385 router parameters and a few metrics): 4 MiB.</summary>
    public const long RouterArtifactBytes = 4L << 20;

    /// <summary>tokenizer.json (the largest real ones, 256k-token vocabularies with their merges, are about 35 MB): 64 MiB.</summary>
    public const long TokenizerJsonBytes = 64L << 20;

    /// <summary>A SentencePiece tokenizer.model (Llama 2's is 0.5 MB, 256k-piece ones about 5 MB): 64 MiB.</summary>
    public const long TokenizerModelBytes = 64L << 20;

    /// <summary>A llama2.c tokenizer .bin (Llama 2's 32000 tokens take 0.4 MB): 64 MiB.</summary>
    public const long Llama2cTokenizerBytes = 64L << 20;

    /// <summary>
    /// How long one match of a pre-tokenizer pattern may take (real patterns take microseconds on a request's
    /// text); past it encoding stops with a <see cref="ModelFormatException"/> instead of holding a silo's thread.
    /// </summary>
    public static readonly TimeSpan RegexMatchTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The longest pre-tokenizer pattern a file may give, in characters (real ones, GPT-4o's included, are under
    /// 1000): building a regex costs memory quadratic in the length of its literals, 5 MB at this bound.
    /// </summary>
    public const int PatternChars = 4096;

    /// <summary>A regex over a pattern taken from a file, with <see cref="RegexMatchTimeout"/>.</summary>
    public static Regex FilePattern(string pattern) => new(pattern, RegexOptions.CultureInvariant, RegexMatchTimeout);

    /// <summary>
    /// The whole file, refused before it is read when it is longer than <paramref name="maxBytes"/>.
    /// </summary>
    /// <param name="what">The kind of file, for the message: "config.json", "tokenizer.json".</param>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "file not found");
        // Measured through an open stream: the Hugging Face cache links snapshot files to blobs, and a link's
        // own length is not the file's.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = stream.Length;
        if (length > maxBytes)
            throw new ModelFormatException(path, null,
                $"{length} bytes is more than the {maxBytes}-byte limit for a {what}: not a {what}, or a damaged one");
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
