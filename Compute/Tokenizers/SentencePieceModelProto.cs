using System.Buffers.Binary;
using System.Text;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// The kind of a vocabulary token, numbered as both SentencePiece's <c>ModelProto.SentencePiece.Type</c> and
/// GGUF's <c>tokenizer.ggml.token_type</c> number them (llama.cpp took the numbering from SentencePiece).
/// </summary>
public enum GgufTokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    /// <summary>BOS, EOS and chat markers: never produced from text by merging, and produce no text when decoded.</summary>
    Control = 3,
    /// <summary>Added tokens matched literally in the text.</summary>
    UserDefined = 4,
    Unused = 5,
    /// <summary>A <c>&lt;0xXX&gt;</c> token standing for one raw byte (byte fallback).</summary>
    Byte = 6,
}

/// <summary>One entry of a SentencePiece vocabulary: its text ('▁' for spaces), merge score and kind.</summary>
public sealed record SentencePiece(string Piece, float Score, GgufTokenType Type);

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto) that a BPE tokenizer uses, read
/// from and written to the protobuf wire format: the pieces (field 1: piece = 1, score = 2, type = 3), the
/// trainer spec (field 2: model_type = 3, byte_fallback = 35, unk/bos/eos/pad ids = 40..43 and pieces = 45..48)
/// and the normalizer spec (field 3: name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4,
/// escape_whitespaces = 5). Writing exists so that a vocabulary held elsewhere (GGUF metadata) can be handed to
/// Microsoft.ML.Tokenizers, whose SentencePiece tokenizer is built only from a serialized model.
/// </summary>
internal sealed class SentencePieceModelProto
{
    /// <summary>TrainerSpec.ModelType values.</summary>
    public const int UnigramModel = 1, BpeModel = 2;

    private const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    public required IReadOnlyList<SentencePiece> Pieces { get; init; }
    public int ModelType { get; init; } = UnigramModel;
    public bool ByteFallback { get; init; }
    public int UnknownId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    /// <summary>Reads a serialized ModelProto; fields other than the ones above are skipped.</summary>
    public static SentencePieceModelProto Parse(string source, ReadOnlySpan<byte> bytes)
    {
        var pieces = new List<SentencePiece>();
        var trainer = new Dictionary<int, ulong>();
        var normalizer = new Dictionary<int, ulong>();
        var reader = new WireReader(source, bytes, "ModelProto");
        while (reader.Next(out int field, out int wireType))
        {
            if (field == 1 && wireType == WireLengthDelimited)
                pieces.Add(ParsePiece(source, reader.Bytes(), pieces.Count));
            else if (field == 2 && wireType == WireLengthDelimited)
                CollectVarints(source, reader.Bytes(), "trainer_spec", trainer);
            else if (field == 3 && wireType == WireLengthDelimited)
                CollectVarints(source, reader.Bytes(), "normalizer_spec", normalizer);
            else
                reader.Skip(wireType);
        }
        if (pieces.Count == 0)
            throw new ModelFormatException(source, null, "the SentencePiece model has no pieces");

        bool Flag(Dictionary<int, ulong> spec, int field, bool fallback) => spec.TryGetValue(field, out ulong v) ? v != 0 : fallback;
        int Id(int field, int fallback) => trainer.TryGetValue(field, out ulong v) ? (int)v : fallback;
        return new SentencePieceModelProto
        {
            Pieces = pieces,
            ModelType = Id(3, UnigramModel),
            ByteFallback = Flag(trainer, 35, false),
            UnknownId = Id(40, 0),
            BosId = Id(41, 1),
            EosId = Id(42, 2),
            PadId = Id(43, -1),
            AddDummyPrefix = Flag(normalizer, 3, true),
            RemoveExtraWhitespaces = Flag(normalizer, 4, true),
            EscapeWhitespaces = Flag(normalizer, 5, true),
        };
    }

    public byte[] ToBytes()
    {
        var model = new WireWriter();
        foreach (SentencePiece piece in Pieces)
        {
            var entry = new WireWriter();
            entry.String(1, piece.Piece);
            entry.Float(2, piece.Score);
            entry.Varint(3, (ulong)piece.Type);
            model.Message(1, entry);
        }

        var trainer = new WireWriter();
        trainer.Varint(3, (ulong)ModelType);
        trainer.Varint(4, (ulong)Pieces.Count);
        trainer.Varint(35, ByteFallback ? 1UL : 0UL);
        // int32 fields carry negative values (pad_id -1) sign-extended to 64 bits, as protobuf encodes them.
        trainer.Varint(40, (ulong)(long)UnknownId);
        trainer.Varint(41, (ulong)(long)BosId);
        trainer.Varint(42, (ulong)(long)EosId);
        trainer.Varint(43, (ulong)(long)PadId);
        (int Field, int Id)[] namedPieces = [(45, UnknownId), (46, BosId), (47, EosId), (48, PadId)];
        foreach (var (field, id) in namedPieces)
        {
            if (id >= 0 && id < Pieces.Count)
                trainer.String(field, Pieces[id].Piece);
        }
        model.Message(2, trainer);

        var normalizer = new WireWriter();
        normalizer.String(1, "identity");
        normalizer.Varint(3, AddDummyPrefix ? 1UL : 0UL);
        normalizer.Varint(4, RemoveExtraWhitespaces ? 1UL : 0UL);
        normalizer.Varint(5, EscapeWhitespaces ? 1UL : 0UL);
        model.Message(3, normalizer);
        return model.ToArray();
    }

    private static SentencePiece ParsePiece(string source, ReadOnlySpan<byte> bytes, int index)
    {
        string piece = "";
        float score = 0;
        var type = GgufTokenType.Normal;
        var reader = new WireReader(source, bytes, $"pieces[{index}]");
        while (reader.Next(out int field, out int wireType))
        {
            if (field == 1 && wireType == WireLengthDelimited)
                piece = reader.Utf8();
            else if (field == 2 && wireType == WireFixed32)
                score = reader.Float();
            else if (field == 3 && wireType == WireVarint)
                type = (GgufTokenType)reader.Varint();
            else
                reader.Skip(wireType);
        }
        if (type is < GgufTokenType.Normal or > GgufTokenType.Byte)
            throw new ModelFormatException(source, null, $"pieces[{index}] (\"{piece}\") has type {(int)type}, not a SentencePiece piece type (1..6)");
        return new SentencePiece(piece, score, type);
    }

    /// <summary>The varint fields of a sub-message, by field number; the spec fields read here are all varints.</summary>
    private static void CollectVarints(string source, ReadOnlySpan<byte> bytes, string what, Dictionary<int, ulong> values)
    {
        var reader = new WireReader(source, bytes, what);
        while (reader.Next(out int field, out int wireType))
        {
            if (wireType == WireVarint)
                values[field] = reader.Varint();
            else
                reader.Skip(wireType);
        }
    }

    private ref struct WireReader(string source, ReadOnlySpan<byte> bytes, string what)
    {
        private readonly string _source = source;
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private readonly string _what = what;
        private int _position;

        public bool Next(out int field, out int wireType)
        {
            field = wireType = 0;
            if (_position == _bytes.Length)
                return false;
            ulong tag = Varint();
            field = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = Take(1)[0];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                    return value;
            }
            throw Problem("a varint runs past 10 bytes");
        }

        public float Float() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            return length <= (ulong)(_bytes.Length - _position) ? Take((int)length) : throw Problem($"a field of {length} bytes runs past the end");
        }

        public string Utf8() => Encoding.UTF8.GetString(Bytes());

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case WireVarint: Varint(); break;
                case WireFixed64: Take(8); break;
                case WireLengthDelimited: Bytes(); break;
                case WireFixed32: Take(4); break;
                default: throw Problem($"wire type {wireType} is not one protobuf writes");
            }
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (_bytes.Length - _position < count)
                throw Problem("the data ends inside a field");
            var taken = _bytes.Slice(_position, count);
            _position += count;
            return taken;
        }

        private readonly ModelFormatException Problem(string problem) =>
            new(_source, null, $"not a SentencePiece model: in {_what} at byte {_position}: {problem}");
    }

    private sealed class WireWriter
    {
        private readonly List<byte> _bytes = [];

        public void Varint(int field, ulong value)
        {
            Tag(field, WireVarint);
            Raw(value);
        }

        public void Float(int field, float value)
        {
            Tag(field, WireFixed32);
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
            _bytes.AddRange(bytes);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, WireWriter message) => Bytes(field, message.ToArray());

        public byte[] ToArray() => _bytes.ToArray();

        private void Bytes(int field, byte[] value)
        {
            Tag(field, WireLengthDelimited);
            Raw((ulong)value.Length);
            _bytes.AddRange(value);
        }

        private void Tag(int field, int wireType) => Raw((ulong)(field << 3 | wireType));

        private void Raw(ulong value)
        {
            while (value >= 0x80)
            {
                _bytes.Add((byte)(value | 0x80));
                value >>= 7;
            }
            _bytes.Add((byte)value);
        }
    }
}
