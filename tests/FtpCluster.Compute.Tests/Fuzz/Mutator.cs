using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FtpCluster.Compute.Tests.Fuzz;

/// <summary>
/// Damages a valid input the ways files and packets get damaged or crafted: one to three mutations, all
/// drawn from the <see cref="Random"/> given, so a mutant is a function of its seed alone.
/// </summary>
internal static class Mutator
{
    private static readonly byte[] InterestingBytes = [0x00, 0xFF, 0x7F, 0x80];

    /// <summary>Little-endian words that turn counts, lengths and offsets into edge cases.</summary>
    private static readonly long[] InterestingWords =
        [0, -1, 1, int.MaxValue, int.MinValue, uint.MaxValue, 1L << 30, 1L << 31, 1L << 32, long.MaxValue, long.MinValue, long.MaxValue - 7];

    /// <summary>Numbers that JSON fields become: too big for int, negative, fractional, absurd sizes.</summary>
    private static readonly string[] InterestingNumbers =
        ["0", "-1", "2147483647", "2147483648", "-2147483648", "1073741824", "9223372036854775807", "18446744073709551615", "1e308", "-1e308", "0.5", "1e-300"];

    public static byte[] MutateBytes(byte[] input, Random random)
    {
        var bytes = new List<byte>(input);
        int count = random.Next(1, 4);
        for (int i = 0; i < count; i++)
            MutateOnce(bytes, random);
        return [.. bytes];
    }

    /// <summary>
    /// For JSON text: half the time a structure-aware change (a number replaced, a string lengthened, a value
    /// replaced by another kind, a key removed), otherwise byte mutations, which also reach the parser's errors.
    /// </summary>
    public static byte[] MutateJson(byte[] input, Random random)
    {
        if (random.Next(2) == 0)
            return MutateBytes(input, random);
        var root = JsonNode.Parse(input)!;
        int count = random.Next(1, 4);
        for (int i = 0; i < count; i++)
        {
            var leaves = new List<JsonNode>();
            Collect(root, leaves);
            if (leaves.Count == 0)
                break;
            MutateLeaf(leaves[random.Next(leaves.Count)], random);
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    private static void MutateOnce(List<byte> bytes, Random random)
    {
        int Position() => bytes.Count == 0 ? 0 : random.Next(bytes.Count);
        switch (random.Next(7))
        {
            case 0 when bytes.Count > 0:
                int bit = Position();
                bytes[bit] ^= (byte)(1 << random.Next(8));
                break;
            case 1 when bytes.Count > 0:
                bytes[Position()] = InterestingBytes[random.Next(InterestingBytes.Length)];
                break;
            case 2 when bytes.Count > 0:
                int keep = random.Next(bytes.Count);
                bytes.RemoveRange(keep, bytes.Count - keep);
                break;
            case 3 when bytes.Count > 0:
                int start = Position();
                int length = random.Next(1, Math.Min(bytes.Count - start, 256) + 1);
                bytes.InsertRange(Position(), bytes.GetRange(start, length));
                break;
            case 4:
                var inserted = new byte[random.Next(1, 17)];
                random.NextBytes(inserted);
                bytes.InsertRange(Position(), inserted);
                break;
            case 5 when bytes.Count >= 8:
                // Header fields of the binary formats are 4- and 8-byte words, mostly near the start.
                int at = random.Next(2) == 0 ? random.Next(Math.Min(bytes.Count - 7, 64)) : random.Next(bytes.Count - 7);
                Span<byte> word = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(word, InterestingWords[random.Next(InterestingWords.Length)]);
                int width = random.Next(2) == 0 ? 4 : 8;
                for (int i = 0; i < width; i++)
                    bytes[at + i] = word[i];
                break;
            default:
                if (bytes.Count > 0)
                    bytes[Position()] = (byte)random.Next(256);
                break;
        }
    }

    private static void Collect(JsonNode? node, List<JsonNode> leaves)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, child) in obj)
                    Collect(child, leaves);
                break;
            case JsonArray array:
                // A few elements of long arrays (vocabularies, merges, parameters) are enough to hit every kind.
                for (int i = 0; i < array.Count; i += Math.Max(1, array.Count / 16))
                    Collect(array[i], leaves);
                break;
            case JsonValue value:
                leaves.Add(value);
                break;
        }
    }

    private const int MaxLengthenedChars = 1 << 20;

    private static void MutateLeaf(JsonNode leaf, Random random)
    {
        var kind = leaf.GetValueKind();
        switch (random.Next(4))
        {
            case 0 when kind == JsonValueKind.Number:
            case 1 when kind == JsonValueKind.Number:
                leaf.ReplaceWith(JsonNode.Parse(InterestingNumbers[random.Next(InterestingNumbers.Length)]));
                break;
            case 0 when kind == JsonValueKind.String:
            case 1 when kind == JsonValueKind.String:
                string text = leaf.GetValue<string>();
                if (text.Length == 0)
                    text = "x";
                // At most a million characters: a string lengthened twice in one mutant overflowed string.Concat.
                int times = Math.Min(random.Next(2, 2000), Math.Max(2, MaxLengthenedChars / text.Length));
                leaf.ReplaceWith(JsonValue.Create(string.Concat(Enumerable.Repeat(text, times))));
                break;
            case 2:
                JsonNode?[] others = [null, JsonValue.Create(true), JsonValue.Create("s"), new JsonArray(), new JsonObject(), JsonValue.Create(-1)];
                leaf.ReplaceWith(others[random.Next(others.Length)]?.DeepClone());
                break;
            default:
                if (leaf.Parent is JsonObject parent)
                    parent.Remove(leaf.GetPropertyName());
                else if (leaf.Parent is JsonArray array)
                    array.Remove(leaf);
                break;
        }
    }
}
