using System.Buffers.Binary;
using System.Text;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// The llama2.c <c>tokenizer.bin</c> vocabulary (int32 max_token_length, then per token: float32 score,
/// int32 byte length, bytes), encoding and decoding exactly as llama2.c's <c>encode</c> and <c>decode</c>:
/// a dummy leading space, one symbol per UTF-8 code point (or per byte, as <c>&lt;0xXX&gt;</c> byte tokens
/// at id byte + 3, when the code point has no token), then repeated merging of the adjacent pair whose
/// concatenation is the token with the highest score, leftmost first on ties.
/// </summary>
public sealed class Llama2cTokenizer : ITokenizer
{
    public const int BeginningOfSequenceId = 1;
    public const int EndOfSequenceId = 2;
    private const int ByteTokenOffset = 3;

    // llama2.c starts its search for the best merge at this score, so pairs scoring at or below it never merge.
    private const float NoMergeScore = -1e10f;

    private readonly float[] _scores;
    private readonly byte[][] _pieces;

    // Pieces as Latin-1 strings (one char per byte), so that byte sequences, including ones that are not
    // valid UTF-8, can be concatenated and looked up exactly.
    private readonly string[] _latin1Pieces;
    private readonly Dictionary<string, int> _idByLatin1Piece;

    // The raw byte that a <0xXX> token stands for, or -1 for ordinary tokens.
    private readonly short[] _rawByteOfToken;

    private Llama2cTokenizer(string source, int maxTokenLength, byte[][] pieces, float[] scores)
    {
        Source = source;
        MaxTokenLength = maxTokenLength;
        _pieces = pieces;
        _scores = scores;
        _latin1Pieces = new string[pieces.Length];
        _idByLatin1Piece = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        _rawByteOfToken = new short[pieces.Length];
        for (int id = 0; id < pieces.Length; id++)
        {
            _latin1Pieces[id] = Encoding.Latin1.GetString(pieces[id]);
            // llama2.c finds a piece by binary search over the sorted vocabulary, so with duplicates any copy
            // may win; the first is as good and is deterministic.
            _idByLatin1Piece.TryAdd(_latin1Pieces[id], id);
            _rawByteOfToken[id] = ParseByteToken(_latin1Pieces[id]);
        }
    }

    public string Source { get; }
    public int MaxTokenLength { get; }
    public int VocabSize => _pieces.Length;
    public int BosId => BeginningOfSequenceId;
    public int EosId => EndOfSequenceId;

    /// <summary>The bytes of token <paramref name="id"/> as stored in the file (spaces are plain spaces, not '▁').</summary>
    public ReadOnlySpan<byte> Piece(int id) => _pieces[id];

    public float Score(int id) => _scores[id];

    /// <summary>
    /// Reads a llama2.c tokenizer file. The format stores no token count: pass the model's vocabulary size to
    /// check that the file holds exactly that many tokens, or null to read tokens until the end of the file.
    /// </summary>
    public static Llama2cTokenizer Load(string path, int? vocabSize = null)
    {
        if (vocabSize is <= 0)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "vocabulary size must be positive");
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "tokenizer file not found");
        byte[] file = InputFileLimits.ReadAllBytes(path, InputFileLimits.Llama2cTokenizerBytes, "llama2.c tokenizer");
        if (file.Length < sizeof(int))
            throw new ModelFormatException(path, null, $"file is truncated: {file.Length} bytes, shorter than the 4-byte max_token_length header");
        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(file);
        if (maxTokenLength <= 0)
            throw new ModelFormatException(path, null, $"max_token_length is {maxTokenLength}: not a llama2.c tokenizer file");

        var pieces = new List<byte[]>(vocabSize ?? 32000);
        var scores = new List<float>(vocabSize ?? 32000);
        string OfExpected() => vocabSize is null ? "" : $" of the {vocabSize} the model's vocabulary needs";
        int offset = sizeof(int);
        while (vocabSize is null ? offset < file.Length : pieces.Count < vocabSize)
        {
            int entry = pieces.Count;
            if (file.Length - offset < 2 * sizeof(int))
                throw new ModelFormatException(path, null,
                    $"file ends inside token entry {entry}{OfExpected()}: its score and length need 8 bytes at offset {offset}, {file.Length - offset} remain");
            float score = BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan(offset));
            int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(offset + sizeof(float)));
            offset += 2 * sizeof(int);
            if (length < 0)
                throw new ModelFormatException(path, null, $"token entry {entry} has a negative length {length} at offset {offset - sizeof(int)}");
            if (file.Length - offset < length)
                throw new ModelFormatException(path, null,
                    $"file ends inside token entry {entry}{OfExpected()}: its {length} bytes start at offset {offset}, {file.Length - offset} remain");
            pieces.Add(file.AsSpan(offset, length).ToArray());
            scores.Add(score);
            offset += length;
        }
        if (offset != file.Length)
            throw new ModelFormatException(path, null,
                $"file holds more than the model's {vocabSize} tokens: {file.Length - offset} bytes follow token entry {vocabSize - 1}");
        if (pieces.Count <= ByteTokenOffset + 255)
            throw new ModelFormatException(path, null,
                $"file holds {pieces.Count} tokens, too few for the 3 control tokens and 256 byte tokens llama2.c expects");
        return new Llama2cTokenizer(path, maxTokenLength, pieces.ToArray(), scores.ToArray());
    }

    public int[] Encode(string text, bool addBos = true)
    {
        var symbols = new List<int>(text.Length + 2);
        // BOS takes part in merging below, as in llama2.c (no piece ever starts with its "\n<s>\n").
        if (addBos)
            symbols.Add(BeginningOfSequenceId);
        // SentencePiece models treat the start of text as following a space, hence the dummy prefix.
        if (text.Length > 0)
            AppendCodePoint(symbols, new Rune(' '));
        foreach (Rune codePoint in text.EnumerateRunes())
            AppendCodePoint(symbols, codePoint);
        return MergeBestPairs(symbols);
    }

    private void AppendCodePoint(List<int> symbols, Rune codePoint)
    {
        Span<byte> utf8 = stackalloc byte[4];
        int length = codePoint.EncodeToUtf8(utf8);
        if (_idByLatin1Piece.TryGetValue(Encoding.Latin1.GetString(utf8[..length]), out int id))
        {
            symbols.Add(id);
            return;
        }
        foreach (byte b in utf8[..length])
            symbols.Add(b + ByteTokenOffset);
    }

    /// <summary>
    /// llama2.c rescans the whole sequence for the best pair after every merge, O(n²). This gives the same
    /// result in O(n log n): the symbols form a linked list over their starting slots, and a priority queue
    /// holds every adjacent pair that forms a token, best score first and then leftmost slot (slot order is
    /// text order, so this is llama2.c's leftmost tie-break). A merge changes the left symbol and removes the
    /// right one; queue entries that name a changed or removed symbol are skipped when they surface.
    /// </summary>
    private int[] MergeBestPairs(List<int> initialSymbols)
    {
        int count = initialSymbols.Count;
        int[] tokenAt = initialSymbols.ToArray();
        int[] nextSlot = new int[count];
        int[] previousSlot = new int[count];
        int[] versionAt = new int[count];
        bool[] removed = new bool[count];
        for (int slot = 0; slot < count; slot++)
        {
            nextSlot[slot] = slot + 1;
            previousSlot[slot] = slot - 1;
        }

        var candidates = new PriorityQueue<MergeCandidate, MergeCandidate>(MergeCandidate.BestFirst);
        void ConsiderPair(int left, int right)
        {
            string merged = string.Concat(_latin1Pieces[tokenAt[left]], _latin1Pieces[tokenAt[right]]);
            if (_idByLatin1Piece.TryGetValue(merged, out int mergedId) && _scores[mergedId] > NoMergeScore)
            {
                var candidate = new MergeCandidate(_scores[mergedId], left, right, mergedId, versionAt[left], versionAt[right]);
                candidates.Enqueue(candidate, candidate);
            }
        }

        for (int slot = 0; slot + 1 < count; slot++)
            ConsiderPair(slot, slot + 1);

        while (candidates.TryDequeue(out MergeCandidate best, out _))
        {
            if (removed[best.Left] || removed[best.Right] || versionAt[best.Left] != best.LeftVersion || versionAt[best.Right] != best.RightVersion)
                continue;
            tokenAt[best.Left] = best.MergedId;
            versionAt[best.Left]++;
            removed[best.Right] = true;
            int after = nextSlot[best.Right];
            nextSlot[best.Left] = after;
            if (after < count)
                previousSlot[after] = best.Left;
            if (previousSlot[best.Left] >= 0)
                ConsiderPair(previousSlot[best.Left], best.Left);
            if (after < count)
                ConsiderPair(best.Left, after);
        }

        var result = new List<int>(count);
        for (int slot = 0; slot < count; slot = nextSlot[slot])
            result.Add(tokenAt[slot]);
        return result.ToArray();
    }

    private readonly record struct MergeCandidate(float Score, int Left, int Right, int MergedId, int LeftVersion, int RightVersion)
    {
        public static readonly IComparer<MergeCandidate> BestFirst = Comparer<MergeCandidate>.Create((a, b) =>
        {
            int byScore = b.Score.CompareTo(a.Score);
            return byScore != 0 ? byScore : a.Left.CompareTo(b.Left);
        });
    }

    /// <summary>
    /// As llama2.c's <c>decode</c>: a token right after BOS loses its leading space (the dummy prefix),
    /// <c>&lt;0xXX&gt;</c> tokens are raw bytes, and the bytes of all tokens are decoded as UTF-8 together,
    /// since one character's bytes may come from several byte tokens. BOS and EOS produce no text.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length * 4);
        int previous = -1;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {_pieces.Length} ({Source})");
            if (id is not BeginningOfSequenceId and not EndOfSequenceId)
            {
                ReadOnlySpan<byte> piece = _pieces[id];
                if (previous == BeginningOfSequenceId && piece.Length > 0 && piece[0] == (byte)' ')
                    piece = piece[1..];
                if (_rawByteOfToken[id] >= 0)
                    bytes.Add((byte)_rawByteOfToken[id]);
                else
                    bytes.AddRange(piece);
            }
            previous = id;
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    private static short ParseByteToken(string piece)
    {
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte value))
            return value;
        return -1;
    }
}
