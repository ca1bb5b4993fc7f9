using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Tests.Inference;

public sealed class KvCacheTests
{
    private const int KvDim = 6;

    [Fact]
    public void The_room_a_cache_holds_stays_within_the_bound_admission_counts_however_its_entries_come()
    {
        using var device = new CpuDevice();
        var random = new Random(14);
        for (int trial = 0; trial < 200; trial++)
        {
            using var cache = new LayerKvCache(device, KvDim);
            // A prompt in prefill chunks of random size, then decoded rows one at a time, as the scheduler feeds them.
            int prompt = random.Next(1, 1200), length = prompt + random.Next(1, 600), position = 0;
            while (position < length)
            {
                int rows = position < prompt ? Math.Min(prompt - position, random.Next(1, 300)) : 1;
                cache.Reserve(0, [.. Enumerable.Range(position, rows)]);
                position += rows;
                Assert.InRange(cache.Capacity, cache.Count, LayerKvCache.RowsHeldAtMost(cache.Count));
                Assert.Equal(cache.Capacity * LayerKvCache.BytesPerRow(KvDim), cache.Bytes);
            }
        }
    }

    [Fact]
    public void A_cache_takes_no_memory_until_used_and_then_its_first_rows_room_at_once()
    {
        using var device = new CpuDevice();
        using var cache = new LayerKvCache(device, KvDim);
        Assert.Equal((0, 0L), (cache.Capacity, cache.Bytes));
        cache.Reserve(0, [.. Enumerable.Range(0, 300)]);
        Assert.Equal(300, cache.Capacity);
        using var shortCache = new LayerKvCache(device, KvDim);
        shortCache.Reserve(0, [0, 1, 2]);
        Assert.Equal(LayerKvCache.GrowthRows, shortCache.Capacity);
    }

    [Fact]
    public void A_cache_told_its_length_takes_that_room_at_its_first_rows_and_never_grows()
    {
        using var device = new CpuDevice();
        using var cache = new LayerKvCache(device, KvDim, length: 300);
        // Promised before it is used, so counted.
        Assert.Equal((0, 300 * LayerKvCache.BytesPerRow(KvDim)), (cache.Capacity, cache.Bytes));
        cache.Reserve(0, [.. Enumerable.Range(0, 100)]);
        for (int position = 100; position < 300; position++)
        {
            cache.Reserve(0, [position]);
            Assert.Equal(300, cache.Capacity);
        }
        // Past its length it grows as any cache does.
        cache.Reserve(0, [300]);
        Assert.Equal(375, cache.Capacity);

        using var shortCache = new LayerKvCache(device, KvDim, length: 3);
        shortCache.Reserve(0, [0]);
        Assert.Equal(LayerKvCache.GrowthRows, shortCache.Capacity);
    }

    [Theory]
    [InlineData(0, 16)]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 32)]
    [InlineData(65, 80)]
    [InlineData(1001, 1250)]
    public void The_bound_is_the_room_of_entries_one_at_a_time_or_more(int entries, long bound)
    {
        Assert.Equal(bound, LayerKvCache.RowsHeldAtMost(entries));
        using var device = new CpuDevice();
        using var cache = new LayerKvCache(device, KvDim);
        for (int position = 0; position < entries; position++)
            cache.Reserve(0, [position]);
        Assert.InRange(cache.Capacity, entries, bound);
    }

    [Fact]
    public void Entries_keep_their_keys_values_and_positions_as_the_cache_grows()
    {
        using var device = new CpuDevice();
        using var cache = new LayerKvCache(device, KvDim);
        int[] chunks = [3, 14, 1, 40, 1, 1, 90];
        int position = 0;
        foreach (int rows in chunks)
        {
            int[] positions = [.. Enumerable.Range(position, rows).Select(p => 2 * p)];
            float[] keys = [.. Enumerable.Range(position * KvDim, rows * KvDim).Select(i => (float)i)];
            using var keyBuffer = device.UploadNew<float>(keys);
            using var valueBuffer = device.UploadNew<float>([.. keys.Select(k => -k)]);
            using var positionBuffer = device.UploadNew<int>(positions);
            device.AppendToCaches(keyBuffer.All, valueBuffer.All, positionBuffer.All, [cache.Reserve(0, positions)]);
            position += rows;
        }

        int count = chunks.Sum();
        Assert.Equal(count, cache.Count);
        Assert.Equal(Enumerable.Range(0, count * KvDim).Select(i => (float)i), device.ToArray(cache.Keys));
        Assert.Equal(Enumerable.Range(0, count * KvDim).Select(i => -(float)i), device.ToArray(cache.Values));
        Assert.Equal(Enumerable.Range(0, count).Select(p => 2 * p), device.ToArray(cache.DevicePositions));
        Assert.Equal(Enumerable.Range(0, count).Select(p => 2 * p), cache.Positions.ToArray());
    }
}
