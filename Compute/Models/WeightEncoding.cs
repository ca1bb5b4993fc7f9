using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace FtpCluster.Compute.Models;

/// <summary>float32 values to the bytes of a storage type, as the model writers store them.</summary>
internal static class WeightEncoding
{
    /// <summary>Writes <paramref name="values"/> (whole blocks of a quantized type) as <paramref name="dtype"/> into <paramref name="destination"/>, which holds exactly their bytes.</summary>
    public static void Encode(ReadOnlySpan<float> values, TensorDType dtype, Span<byte> destination)
    {
        switch (dtype)
        {
            case TensorDType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case TensorDType.F16:
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(destination));
                break;
            case TensorDType.Q8_0:
                Q8Block.Quantize(values, destination);
                break;
            case TensorDType.Q4_0 or TensorDType.Q4_1 or TensorDType.Q5_0 or TensorDType.Q5_1:
                SmallBlocks.Quantize(dtype, values, destination);
                break;
            case TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K:
                SuperBlocks.Quantize(dtype, values, destination);
                break;
            default:
                var bf16 = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < values.Length; i++)
                    bf16[i] = ToBFloat16(values[i]);
                break;
        }
    }

    /// <summary>float32 to bfloat16, rounding to nearest even (truncating would bias every weight toward zero).</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x40);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }
}
