using System.Text;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// GPT-2's byte-level alphabet, used by byte-level BPE vocabularies (GPT-2, Llama 3, Qwen2, SmolLM2): every
/// byte is spelled as one visible character, so that vocabulary files hold no raw control bytes or spaces.
/// Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes, in
/// order, take the characters from U+0100 on (so space, 0x20, is 'Ġ' and newline, 0x0A, is 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = BuildCharOfByte();
    private static readonly Dictionary<char, byte> ByteOfChar = Enumerable.Range(0, 256).ToDictionary(b => CharOfByte[b], b => (byte)b);

    public static char CharFor(byte value) => CharOfByte[value];

    /// <summary>The vocabulary spelling of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string Spell(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        return string.Create(utf8.Length, utf8, static (chars, bytes) =>
        {
            for (int i = 0; i < bytes.Length; i++)
                chars[i] = CharOfByte[bytes[i]];
        });
    }

    /// <summary>
    /// Appends the bytes a vocabulary token spells. A character outside the alphabet (only in hand-made
    /// vocabularies) stands for its own UTF-8 bytes.
    /// </summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in token.EnumerateRunes())
        {
            if (rune.IsBmp && ByteOfChar.TryGetValue((char)rune.Value, out byte value))
            {
                bytes.Add(value);
                continue;
            }
            bytes.AddRange(utf8[..rune.EncodeToUtf8(utf8)]);
        }
    }

    private static char[] BuildCharOfByte()
    {
        var chars = new char[256];
        int nextSubstitute = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
            chars[b] = printable ? (char)b : (char)nextSubstitute++;
        }
        return chars;
    }
}
