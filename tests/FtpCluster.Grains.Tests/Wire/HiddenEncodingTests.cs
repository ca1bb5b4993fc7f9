using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Tests.Wire;

/// <summary>
/// Round trips of the hidden rows. Hidden sizes 5, 37, 70 and 2048 run both the vector bodies and the scalar
/// tails, and for int8 per block also a short last block.
/// </summary>
public sealed class HiddenEncodingTests
{
    public static TheoryData<int> HiddenSizes => [5, 37, 70, 2048];

    /// <summary>Random values with exponents spread over [minExponent, maxExponent], both signs.</summary>
    private static ActivationPacket SpreadExponents(int hidden, int minExponent, int maxExponent, int seed = 7) =>
        WirePackets.With("dep", 6, hidden, seed, (random, _, _) =>
            (random.Next(2) == 0 ? -1f : 1f) * (float)(1 + random.NextDouble())
            * MathF.ScaleB(1f, random.Next(minExponent, maxExponent + 1)));

    [Theory]
    [MemberData(nameof(HiddenSizes))]
    public void F32_round_trips_bit_exact_including_nan_infinity_negative_zero_and_subnormals(int hidden)
    {
        var packet = SpreadExponents(hidden, -140, 120);
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, -1e-42f,
            BitConverter.Int32BitsToSingle(0x7FC1_2345)];
        specials.CopyTo(packet.HiddenStates.AsSpan(Math.Max(0, packet.HiddenStates.Length - specials.Length - 1)));

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.F32);

        Assert.Equal(packet.HiddenStates.Select(BitConverter.SingleToInt32Bits), decoded.Select(BitConverter.SingleToInt32Bits));
    }

    // A half has an 11-bit significand: rounding to nearest moves a normal value (2^-14 ≤ |x| ≤ 65504) by at
    // most half a unit in the last place, 2^-11 of its magnitude. The values must also be exactly what the
    // IEEE conversion gives, so the vector path cannot round differently from the scalar one.
    [Theory]
    [MemberData(nameof(HiddenSizes))]
    public void F16_is_the_ieee_rounding_within_relative_two_to_minus_11(int hidden)
    {
        var packet = SpreadExponents(hidden, -14, 14);

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.F16);

        for (int i = 0; i < decoded.Length; i++)
        {
            float x = packet.HiddenStates[i];
            Assert.Equal((float)(Half)x, decoded[i]);
            Assert.True(MathF.Abs(decoded[i] - x) <= MathF.Abs(x) * MathF.ScaleB(1f, -11), $"value {i}: {x} became {decoded[i]}");
        }
    }

    // bfloat16 keeps 8 significand bits, so the same argument gives 2^-8 relative, over float32's whole normal range.
    [Theory]
    [MemberData(nameof(HiddenSizes))]
    public void Bf16_is_round_to_nearest_even_within_relative_two_to_minus_8(int hidden)
    {
        var packet = SpreadExponents(hidden, -100, 100);

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.BF16);

        for (int i = 0; i < decoded.Length; i++)
        {
            float x = packet.HiddenStates[i];
            Assert.Equal(WeightConvert.FromBf16(WeightConvert.ToBf16(x)), decoded[i]);
            Assert.True(MathF.Abs(decoded[i] - x) <= MathF.Abs(x) * MathF.ScaleB(1f, -8), $"value {i}: {x} became {decoded[i]}");
        }
    }

    [Fact]
    public void Bf16_ties_go_to_the_even_neighbour_in_the_vector_body_and_the_tail()
    {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: even is 1. 1 + 3·2^-8 lies halfway between
        // 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6. 20 values: 16 go through the vector body, 4 through the tail.
        float downTie = 1f + MathF.ScaleB(1f, -8), upTie = 1f + 3 * MathF.ScaleB(1f, -8);
        var packet = WirePackets.With("dep", 1, 20, 1, (_, _, c) => c % 2 == 0 ? downTie : upTie);

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.BF16);

        for (int c = 0; c < 20; c++)
            Assert.Equal(c % 2 == 0 ? 1f : 1f + MathF.ScaleB(1f, -6), decoded[c]);
    }

    [Theory]
    [InlineData(WireEncoding.F16)]
    [InlineData(WireEncoding.BF16)]
    public void Sixteen_bit_encodings_carry_nan_and_infinities(WireEncoding encoding)
    {
        float[] specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1f];
        var packet = WirePackets.With("dep", 2, 20, 1, (_, r, c) => specials[(r * 20 + c) % 4]);

        var decoded = WirePackets.RoundTrip(packet, encoding);

        for (int i = 0; i < decoded.Length; i++)
            Assert.Equal(specials[i % 4], decoded[i]); // xunit's float equality treats NaN as equal to NaN
    }

    [Fact]
    public void F16_turns_magnitudes_beyond_its_range_into_infinity()
    {
        var packet = WirePackets.With("dep", 1, 3, 1, (_, _, c) => c switch { 0 => 70000f, 1 => -1e6f, _ => 65504f });

        Assert.Equal([float.PositiveInfinity, float.NegativeInfinity, 65504f], WirePackets.RoundTrip(packet, WireEncoding.F16));
    }

    // Symmetric int8 with scale = max|group| / 127 rounds each value to the nearest multiple of the scale, so it
    // moves by at most half a step, max|group| / 254. The 1e-4 allowance covers float32 rounding of the scale,
    // its inverse and the two products, which shifts a value by under 3e-5 of a step.
    private static float Int8Bound(ReadOnlySpan<float> group) =>
        group.ToArray().Max(MathF.Abs) / 254f * (1 + 1e-4f);

    [Theory]
    [MemberData(nameof(HiddenSizes))]
    public void Int8_per_row_stays_within_half_a_step_of_each_row(int hidden)
    {
        var packet = WirePackets.With("dep", 5, hidden, 3, (random, r, _) => (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, 4 * r - 8));

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.Int8PerRow);

        for (int r = 0; r < packet.RowCount; r++)
        {
            var row = packet.HiddenRow(r);
            float bound = Int8Bound(row);
            for (int c = 0; c < hidden; c++)
                Assert.True(MathF.Abs(decoded[r * hidden + c] - row[c]) <= bound, $"row {r} column {c}: {row[c]} became {decoded[r * hidden + c]}, bound {bound}");
        }
    }

    [Theory]
    [MemberData(nameof(HiddenSizes))]
    public void Int8_per_block_stays_within_half_a_step_of_each_block_including_a_short_last_block(int hidden)
    {
        var packet = WirePackets.With("dep", 5, hidden, 4, (random, _, c) => (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, c / 32 % 9 - 4));

        var decoded = WirePackets.RoundTrip(packet, WireEncoding.Int8PerBlock32);

        for (int r = 0; r < packet.RowCount; r++)
        {
            var row = packet.HiddenRow(r);
            for (int start = 0; start < hidden; start += 32)
            {
                var block = row[start..Math.Min(hidden, start + 32)];
                float bound = Int8Bound(block);
                for (int c = start; c < start + block.Length; c++)
                    Assert.True(MathF.Abs(decoded[r * hidden + c] - row[c]) <= bound, $"row {r} column {c}: {row[c]} became {decoded[r * hidden + c]}, bound {bound}");
            }
        }
    }

    [Theory]
    [InlineData(WireEncoding.Int8PerRow)]
    [InlineData(WireEncoding.Int8PerBlock32)]
    public void Int8_rows_of_zeros_come_back_exactly_zero(WireEncoding encoding)
    {
        // Row 1 is all zeros between two ordinary rows; in row 2 only the first block is zero.
        var packet = WirePackets.With("dep", 3, 70, 5, (random, r, c) => r == 1 || (r == 2 && c < 32) ? 0f : (float)random.NextDouble() + 0.5f);

        var decoded = WirePackets.RoundTrip(packet, encoding);

        Assert.All(decoded.AsSpan(70, 70).ToArray(), v => Assert.Equal(0f, v));
        if (encoding == WireEncoding.Int8PerBlock32)
            Assert.All(decoded.AsSpan(140, 32).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(decoded.AsSpan(0, 70).ToArray(), v => Assert.NotEqual(0f, v));
    }

    [Fact]
    public void One_outlier_costs_per_row_scales_the_whole_row_but_per_block_scales_only_its_block()
    {
        const int hidden = 2048, outlierColumn = 100;
        var packet = WirePackets.With("dep", 1, hidden, 6, (random, _, c) => c == outlierColumn ? 1000f : (float)(random.NextDouble() * 2 - 1));

        double perRow = RmsError(packet, WireEncoding.Int8PerRow);
        double perBlock = RmsError(packet, WireEncoding.Int8PerBlock32);

        // Per row, the step is 1000/127 ≈ 7.9, so every ordinary value (|x| ≤ 1) rounds to 0: RMS error ≈ 1/√3.
        // Per block, 63 of the 64 blocks keep a step of about 1/127; only the outlier's block rounds to 0.
        Assert.InRange(perRow, 0.5, 0.65);
        Assert.True(perBlock < perRow / 5, $"per-block RMS error {perBlock} vs per-row {perRow}");
        Assert.Equal(1000f, WirePackets.RoundTrip(packet, WireEncoding.Int8PerBlock32)[outlierColumn], 1000f / 254);
    }

    private static double RmsError(ActivationPacket packet, WireEncoding encoding)
    {
        var decoded = WirePackets.RoundTrip(packet, encoding);
        return Math.Sqrt(decoded.Select((v, i) => Math.Pow(v - packet.HiddenStates[i], 2)).Average());
    }

    [Theory]
    [InlineData(WireEncoding.Int8PerRow, float.NaN)]
    [InlineData(WireEncoding.Int8PerBlock32, float.NaN)]
    [InlineData(WireEncoding.Int8PerRow, float.NegativeInfinity)]
    [InlineData(WireEncoding.Int8PerBlock32, float.PositiveInfinity)]
    public void Int8_refuses_a_row_holding_nan_or_infinity_and_names_it(WireEncoding encoding, float bad)
    {
        var packet = WirePackets.With("dep", 4, 70, 1, (_, r, c) => r == 2 && c == 40 ? bad : 0.5f);

        var error = Assert.Throws<ArgumentException>(() => ActivationCodec.Encode(packet, encoding, int.MaxValue));

        Assert.Contains("row 2 ", error.Message);
        Assert.Contains("column 40", error.Message);
        Assert.Contains("cannot carry NaN or infinity", error.Message);
    }
}
