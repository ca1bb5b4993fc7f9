using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class Llama2cCheckpointTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Truncated_file_is_reported_with_its_path()
    {
        string path = WriteTinyLlama2c();
        Truncate(path, 4);

        AssertFails(() => Llama2cCheckpoint.Open(path), path, "truncated");
    }

    [Fact]
    public void File_shorter_than_the_header_is_reported()
    {
        string path = _temp.File("short.bin");
        File.WriteAllBytes(path, new byte[20]);

        AssertFails(() => Llama2cCheckpoint.Open(path), path, "28-byte llama2.c header");
    }

    [Fact]
    public void Header_that_describes_no_model_is_reported()
    {
        string path = _temp.File("nonsense.bin");
        int[] header = [7, 96, 2, 3, 3, 128, 64]; // dim 7 is not a multiple of 3 heads
        File.WriteAllBytes(path, header.SelectMany(BitConverter.GetBytes).Concat(new byte[4096]).ToArray());

        AssertFails(() => Llama2cCheckpoint.Open(path), path, "does not describe a llama2.c model");
    }

    [Fact]
    public void Header_with_inconsistent_head_counts_is_reported()
    {
        string path = _temp.File("heads.bin");
        int[] header = [64, 96, 2, 4, 3, 128, 64]; // 4 heads cannot share 3 KV heads
        File.WriteAllBytes(path, header.SelectMany(BitConverter.GetBytes).Concat(new byte[4096]).ToArray());

        AssertFails(() => Llama2cCheckpoint.Open(path), path, "multiple of kv heads");
    }

    [Fact]
    public void A_path_that_does_not_exist_is_named_by_Checkpoint_Open() =>
        AssertFails(() => Checkpoint.Open(_temp.File("absent.bin")), _temp.File("absent.bin"), "no such file or directory");

    private string WriteTinyLlama2c()
    {
        string directory = WriteTiny(_temp);
        string path = _temp.File("model.bin");
        using var hf = HuggingFaceCheckpoint.Open(directory);
        Llama2cWriter.Write(hf, path);
        return path;
    }
}
