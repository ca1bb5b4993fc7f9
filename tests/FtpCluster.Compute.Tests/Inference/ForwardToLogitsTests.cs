using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Ilgpu;

namespace FtpCluster.Compute.Tests.Inference;

/// <summary>
/// <see cref="TransformerStage.ForwardToLogits"/>, the last stage's pass through to the logits, against
/// <see cref="TransformerStage.Forward"/> followed by <see cref="TransformerStage.Logits(ReadOnlySpan{float}, int, Span{float})"/>
/// on the rows it returned: the same products over the same rows, so equal to float32 rounding (1e-5 relative); and
/// the logits of chosen host rows, grouped the same way.
/// A random model of 70 rows, more than one group of <see cref="TransformerStage.LogitGroupRows"/>.
/// </summary>
public sealed class ForwardToLogitsTests : IDisposable
{
    private const int Rows = 70;
    private readonly string _folder = Directory.CreateTempSubdirectory("ftp-forward-to-logits-").FullName;
    private readonly CpuDevice _device = new();
    private readonly int[] _ids = [.. Enumerable.Range(0, Rows).Select(i => (i * 11 + 5) % 37)];

    public void Dispose()
    {
        _device.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>Every row: two groups (64 and 6), handed over in order, read where the blocks left them.</summary>
    [Fact]
    public void Every_row_matches_forward_then_logits() => AssertMatches([.. Enumerable.Range(0, Rows)], plan: null, [0, 64]);

    /// <summary>Some rows, in one group, gathered on the device; under an FTP plan that skips some of them in a block.</summary>
    [Fact]
    public void Chosen_rows_match_forward_then_logits_under_a_plan() =>
        AssertMatches([3, 10, 64, 65, 69], plan: [null, [.. Enumerable.Range(0, Rows).Where(r => r % 3 != 0)]], [0]);

    [Fact]
    public void No_rows_computes_the_blocks_and_no_logits()
    {
        using var stage = Load();
        using var cache = stage.NewCache();
        var hidden = Embedded(stage);
        int calls = 0;
        stage.ForwardToLogits(TokenRow.Consecutive(cache, 0, Rows), hidden, null, [], (_, _) => calls++);
        Assert.Equal(0, calls);
        Assert.Equal(Rows - 1, cache.LastPosition);
    }

    [Fact]
    public void Unsorted_rows_are_refused_before_any_block_runs()
    {
        using var stage = Load();
        using var cache = stage.NewCache();
        var error = Assert.Throws<ArgumentException>(() =>
            stage.ForwardToLogits(TokenRow.Consecutive(cache, 0, Rows), Embedded(stage), null, [5, 2], (_, _) => { }));
        Assert.Contains("sorted and distinct", error.Message);
        Assert.Equal(-1, cache.LastPosition);
    }

    private void AssertMatches(int[] logitRows, int[]?[]? plan, int[] expectedFirsts)
    {
        using var stage = Load();
        int vocab = stage.Config.VocabSize, dim = stage.Config.Dim;

        using var referenceCache = stage.NewCache();
        var hidden = Embedded(stage);
        stage.Forward(TokenRow.Consecutive(referenceCache, 0, Rows), hidden, plan);
        var chosen = logitRows.SelectMany(r => hidden.AsSpan(r * dim, dim).ToArray()).ToArray();
        var expected = new float[logitRows.Length * vocab];
        stage.Logits(chosen, logitRows.Length, expected);

        // The host rows' overload, which a routed microbatch's last stage takes, groups the rows the same way.
        var fromHostRows = new float[expected.Length];
        var hostFirsts = new List<int>();
        stage.Logits(hidden, logitRows, (first, logits) =>
        {
            hostFirsts.Add(first);
            logits.CopyTo(fromHostRows.AsSpan(first * vocab));
        });
        Assert.Equal(expectedFirsts, hostFirsts);
        Ilgpu.Numerics.AssertClose(expected, fromHostRows, what: "logits of host rows");

        using var cache = stage.NewCache();
        var input = Embedded(stage);
        var actual = new float[logitRows.Length * vocab];
        var firsts = new List<int>();
        stage.ForwardToLogits(TokenRow.Consecutive(cache, 0, Rows), input, plan, logitRows, (first, logits) =>
        {
            firsts.Add(first);
            logits.CopyTo(actual.AsSpan(first * vocab));
        });
        Assert.Equal(expectedFirsts, firsts);
        Ilgpu.Numerics.AssertClose(expected, actual, what: "logits");
        Assert.Equal(Embedded(stage), input); // the rows given are left as they were
    }

    private TransformerStage Load()
    {
        string path = Path.Combine(_folder, "model.bin");
        if (!File.Exists(path))
            IlgpuForwardTests.WriteTinyLlama2c(path, dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: 37, seqLen: 80);
        using var checkpoint = Checkpoint.Open(path);
        return new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), _device), _device);
    }

    private float[] Embedded(TransformerStage stage)
    {
        var hidden = new float[Rows * stage.Config.Dim];
        stage.Embed(_ids, hidden);
        return hidden;
    }
}
