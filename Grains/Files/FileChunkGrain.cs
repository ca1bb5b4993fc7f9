using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Files;

[GenerateSerializer]
[Alias("FtpCluster.FileChunkRecord")]
public sealed class FileChunkRecord
{
    [Id(0)] public byte[] Bytes { get; set; } = [];
}

internal sealed class FileChunkGrain(
    [PersistentState("piece", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<FileChunkRecord> record)
    : Grain, IFileChunkGrain
{
    public async Task Write(byte[] bytes)
    {
        if (bytes.Length > FileLimits.ChunkBytes)
            throw new ArgumentException($"file piece {this.GetPrimaryKeyString()}: {bytes.Length} bytes, over the {FileLimits.ChunkBytes} one piece holds");
        record.State.Bytes = bytes;
        await record.WriteStateAsync();
    }

    public Task<byte[]> Read() => Task.FromResult(record.State.Bytes);

    public async Task Clear()
    {
        if (!record.RecordExists) return;
        await record.ClearStateAsync();
        record.State = new FileChunkRecord();
    }
}
