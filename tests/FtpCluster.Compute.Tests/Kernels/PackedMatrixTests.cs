using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

public sealed class PackedMatrixTests
{
    [Theory]
    [InlineData(TensorDType.F32, 4)]
    [InlineData(TensorDType.BF16, 2)]
    [InlineData(TensorDType.F16, 2)]
    public void Resident_bytes_are_the_padded_panels_at_the_storage_width(TensorDType storage, int elementSize)
    {
        int rows = 33, cols = 10;
        var m = PackedMatrix.Pack(new float[rows * cols], rows, cols, storage);
        long panels = 2L * PackedMatrix.PanelWidth * cols * elementSize;
        Assert.Equal(storage, m.StorageType);
        Assert.InRange(m.ResidentBytes, panels, panels + 64 + 8);
    }

    [Fact]
    public void Bf16_packing_rounds_to_nearest_even()
    {
        // bfloat16 keeps 7 mantissa bits: 1 + 2^-8 is a tie that goes down to the even 1.0;
        // 1 + 3·2^-8 is a tie that goes up to the even 1 + 2^-6; 1 + 2^-8 + 2^-20 is just above the tie.
        float[] source = [1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 256 + 1f / (1 << 20), -3.0f, float.NaN];
        float[] expected = [1f, 1f + 1f / 64, 1f + 1f / 128, -3.0f, float.NaN];
        var m = PackedMatrix.Pack(source, source.Length, 1, TensorDType.BF16);
        for (int i = 0; i < source.Length; i++)
            Assert.Equal(expected[i], m[i, 0]);
    }

    [Fact]
    public void F16_packing_rounds_to_nearest_even()
    {
        // half keeps 10 mantissa bits: 1 + 2^-11 ties down to 1.0, 1 + 3·2^-11 ties up to 1 + 2^-9.
        float[] source = [1f + 1f / 2048, 1f + 3f / 2048, 70000f];
        float[] expected = [1f, 1f + 1f / 512, float.PositiveInfinity];
        var m = PackedMatrix.Pack(source, source.Length, 1, TensorDType.F16);
        for (int i = 0; i < source.Length; i++)
            Assert.Equal(expected[i], m[i, 0]);
    }

    [Theory]
    [InlineData(TensorDType.BF16, TensorDType.F32)]
    [InlineData(TensorDType.F16, TensorDType.F32)]
    [InlineData(TensorDType.F32, TensorDType.BF16)]
    [InlineData(TensorDType.BF16, TensorDType.BF16)]
    public void Packs_a_mapped_tensor_into_any_storage(TensorDType fileType, TensorDType storage)
    {
        int rows = 40, cols = 3;
        var values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++)
            values[i] = WeightConvert.Round(MathF.Sin(i) * 3, fileType);
        var bytes = new byte[values.Length * fileType.Size()];
        for (int i = 0; i < values.Length; i++)
        {
            switch (fileType)
            {
                case TensorDType.F32: BitConverter.TryWriteBytes(bytes.AsSpan(4 * i), values[i]); break;
                case TensorDType.BF16: BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), WeightConvert.ToBf16(values[i])); break;
                default: BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), WeightConvert.ToF16(values[i])); break;
            }
        }
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, bytes);
            using var file = MappedFile.Open(path);
            var tensor = new WeightTensor("w", file, 0, fileType, [rows, cols]);
            var m = PackedMatrix.Pack(tensor, storage);
            Assert.Equal(storage, m.StorageType);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    Assert.Equal(WeightConvert.Round(values[r * cols + c], storage), m[r, c]);
            Assert.Equal(fileType, PackedMatrix.Pack(tensor).StorageType);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
