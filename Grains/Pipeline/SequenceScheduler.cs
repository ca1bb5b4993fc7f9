using System.Diagnostics;
using FtpCluster.Compute.Inference;
using FtpCluster.Grains.Telemetry;

namespace FtpCluster.Grains.Pipeline;

/// <summary>One sequence to generate: its prompt, how to draw and when to stop.</summary>
/// <param name="Logprobs">Log-probabilities of each drawn token and this many alternatives; -1 for none.</param>
/// <param name="StopsAfter">Called with the generated tokens after each new one; true ends the sequence with "stop"
/// (the caller's stop strings). The last token is kept: the caller cuts its text.</param>
/// <param name="Router">Which of the deployment's routers prunes the sequence's tokens; -1: dense.</param>
/// <param name="Generated">Called with the generated tokens after each new one (before <paramref name="StopsAfter"/>), for
/// answers streamed as they are made.</param>
/// <param name="Operation">What the request is, for its metrics' <c>gen_ai.operation.name</c>: <c>chat</c> or <c>text_completion</c>.</param>
internal sealed record SequenceSpec(
    int[] PromptIds, int MaxTokens, IReadOnlySet<int> StopTokens, SamplingOptions Sampling, int Router, int Logprobs = -1,
    Func<IReadOnlyList<int>, bool>? StopsAfter = null, Action<IReadOnlyList<int>>? Generated = null,
    string Operation = FtpClusterTelemetry.Values.TextCompletionOperation);

/// <summary>What a deployment's scheduler reports: each sequence's latencies and token usage, and how many sequences wait.</summary>
/// <param name="Model">The deployment's served model name (<c>gen_ai.request.model</c>).</param>
internal sealed record SchedulerTelemetry(string Deployment, string Model, QueueGauge Queue, FtpClusterMetrics Metrics);

/// <param name="Generated">The drawn tokens, without the stop token that ended them.</param>
/// <param name="Logprobs">Per generated token, when asked for.</param>
internal sealed record SequenceResult(int[] PromptIds, int[] Generated, string FinishReason, SampledLogprobs[]? Logprobs, SequenceUsage Usage);

/// <summary>How the scheduler spends a deployment's room.</summary>
/// <param name="PrefillChunkTokens">Prompt tokens one step feeds at most: a long prompt goes in pieces, so the
/// decode steps of other sequences travel in every microbatch instead of waiting behind it.</param>
/// <param name="MaxSequences">Sequences generating at once; more wait for admission.</param>
/// <param name="MaxCacheRows">Rows of KV-cache room the sequences admitted may hold in every block (the tightest
/// stage's budget over what a row takes there); a sequence is admitted once the room its whole length takes fits
/// (<see cref="LayerKvCache.RowsHeldAtMost"/>: a cache's room runs ahead of its entries).</param>
internal readonly record struct SchedulerLimits(int PrefillChunkTokens, int MaxSequences, long MaxCacheRows);

/// <summary>
/// Runs sequences through a deployment's stages in steps: each sequence waits for room in the KV caches, then
/// feeds its prompt in pieces and draws token after token, every step joining the microbatch that leaves next
/// (continuous batching). No step depends on a long call: each is one trip through the stages.
/// </summary>
/// <remarks>
/// Used from inside the coordinator grain, whose turns never overlap, so it takes no locks. When a step fails
/// because a stage was lost, <c>withRecovery</c> re-plans (once for all the sequences that saw the failure) and the
/// sequence replays its tokens so far into the new stages before going on; sampling depends only on (seed,
/// draw) and the kernels are batch-invariant, so the result is the one a fault-free run gives.
/// </remarks>
/// <param name="withRecovery">Runs a step on the current plan (given its epoch), mending the plan and running it again
/// when a stage was lost (<see cref="DeploymentPlacement.WithRecovery{T}"/>).</param>
/// <param name="reserve">Tells the stages an admitted sequence's id and whole length before its first step, so that its
/// caches take their room once (<see cref="IStageGrain.Reserve"/>).</param>
internal sealed class SequenceScheduler(
    MicrobatchQueue microbatches, Func<int> currentEpoch, Func<Func<int, Task<StepOutcome>>, Task<StepOutcome>> withRecovery,
    Func<long, int, Task> reserve, Func<long, Task> release, Func<SchedulerLimits> limits, int contextLength, SchedulerTelemetry telemetry)
{
    private readonly LinkedList<(long Rows, TaskCompletionSource Admitted)> _waiting = new();

    /// <summary>From a random multiple of 2^22, so no sequence of this activation shares an id with one an earlier
    /// coordinator activation left in the stages' caches (unless both drew the same multiple, a chance in 2^31).</summary>
    private long _nextSequenceId = System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue) * (1L << 22);
    private int _running;
    private long _cacheRows;

    public int Running => _running;

    public int Waiting => _waiting.Count;

    /// <summary>An id no other sequence of this deployment has (for work outside the scheduler, such as scoring).</summary>
    public long NewSequenceId() => ++_nextSequenceId;

    public async Task<SequenceResult> Run(SequenceSpec spec, CancellationToken cancellation)
    {
        if (spec.PromptIds.Length == 0) throw new ArgumentException("the prompt has no tokens");
        if (spec.MaxTokens < 1) throw new ArgumentException($"max tokens must be at least 1, got {spec.MaxTokens}");
        spec.Sampling.Validate();
        int length = (int)Math.Min((long)spec.PromptIds.Length + spec.MaxTokens, contextLength);
        long rows = LayerKvCache.RowsHeldAtMost(length);
        if (spec.PromptIds.Length >= contextLength)
            throw new ArgumentException($"the prompt has {spec.PromptIds.Length} tokens, which leaves no room in the model's context of {contextLength}");
        // Latencies count from here: the time a sequence waits for admission is part of what its client waits.
        long arrived = Stopwatch.GetTimestamp();
        var labels = new GenerationLabels(spec.Operation, telemetry.Model, telemetry.Deployment);
        try
        {
            await Admit(length, rows, cancellation);
        }
        catch (Exception e)
        {
            telemetry.Metrics.RecordFailedRequest(labels, Stopwatch.GetElapsedTime(arrived).TotalSeconds, e.GetType().Name);
            throw;
        }
        long sequence = NewSequenceId();
        try
        {
            await reserve(sequence, length);
            return await Generate(sequence, spec, arrived, labels, cancellation);
        }
        catch (Exception e)
        {
            telemetry.Metrics.RecordFailedRequest(labels, Stopwatch.GetElapsedTime(arrived).TotalSeconds, e.GetType().Name);
            throw;
        }
        finally
        {
            await release(sequence);
            Leave(rows);
        }
    }

    /// <summary>Waits, first come first served, until the <paramref name="rows"/> of room the sequence's whole length takes fit in the caches.</summary>
    private Task Admit(int length, long rows, CancellationToken cancellation)
    {
        var (_, maxSequences, maxCacheRows) = limits();
        if (rows > maxCacheRows)
            throw new ArgumentException(
                $"the sequence's {length} tokens need KV-cache room for {rows} rows (the room a cache holds runs ahead of its entries), " +
                $"more than the deployment's {maxCacheRows}");
        if (_waiting.Count == 0 && Fits(rows))
        {
            Enter(rows);
            return Task.CompletedTask;
        }
        var admitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var node = _waiting.AddLast((rows, admitted));
        PublishWaiting();
        cancellation.Register(() =>
        {
            if (node.List is null) return; // admitted already
            _waiting.Remove(node);
            PublishWaiting();
            admitted.TrySetCanceled(cancellation);
        });
        return admitted.Task;

        bool Fits(long r) => _running < maxSequences && _cacheRows + r <= maxCacheRows;
    }

    private void Enter(long rows)
    {
        _running++;
        _cacheRows += rows;
    }

    private void Leave(long rows)
    {
        _running--;
        _cacheRows -= rows;
        var (_, maxSequences, maxCacheRows) = limits();
        while (_waiting.First is { } first && _running < maxSequences && _cacheRows + first.Value.Rows <= maxCacheRows)
        {
            _waiting.RemoveFirst();
            Enter(first.Value.Rows);
            first.Value.Admitted.TrySetResult();
        }
        PublishWaiting();
    }

    private void PublishWaiting() => telemetry.Queue.PublishWaiting(_waiting.Count);

    private async Task<SequenceResult> Generate(long sequence, SequenceSpec spec, long arrived, GenerationLabels labels, CancellationToken cancellation)
    {
        var fed = new List<int>();   // tokens the current plan's stages hold in their caches
        int fedEpoch = currentEpoch();
        var usage = new SequenceUsage(sequence, 0, 0, 0);

        // Feeds tokens at positions from firstPosition, in pieces, and draws after the last of them.
        Task<StepOutcome> Step(int[] tokens, int firstPosition, int draw) => withRecovery(async epoch =>
        {
            while (true)
            {
                cancellation.ThrowIfCancellationRequested();
                // The stages of a new plan hold nothing of this sequence: replay it from the start.
                bool replay = epoch != fedEpoch;
                int[] feed = replay ? [.. fed, .. tokens] : tokens;
                if (await FeedInPieces(epoch, feed, replay ? 0 : firstPosition, draw) is { } outcome)
                {
                    fedEpoch = epoch;
                    fed.AddRange(tokens);
                    return outcome;
                }
                epoch = currentEpoch(); // the plan changed while a piece waited: choose the feed again
            }
        });

        async Task<StepOutcome?> FeedInPieces(int epoch, int[] feed, int start, int draw)
        {
            int chunk = Math.Max(1, limits().PrefillChunkTokens);
            for (int offset = 0; ; offset += chunk)
            {
                bool last = offset + chunk >= feed.Length;
                int[] piece = feed[offset..Math.Min(feed.Length, offset + chunk)];
                var sample = last ? new SampleRequest(piece.Length - 1, spec.Sampling.Temperature, spec.Sampling.TopK, spec.Sampling.TopP,
                    spec.Sampling.Seed, draw, spec.Logprobs) : null;
                if (await microbatches.Submit(new PendingStep(sequence, epoch, piece, start + offset, sample, spec.Router)) is not { } outcome)
                    return null;
                if (outcome.Usage is { } cost) usage = usage.Plus(cost);
                if (last) return outcome;
                cancellation.ThrowIfCancellationRequested();
            }
        }

        var generated = new List<int>();
        var logprobs = spec.Logprobs >= 0 ? new List<SampledLogprobs>() : null;
        var next = await Step(spec.PromptIds, 0, 0);
        double firstToken = Stopwatch.GetElapsedTime(arrived).TotalSeconds;
        telemetry.Metrics.RecordTimeToFirstToken(labels, firstToken);
        while (true)
        {
            int token = next.Token!.Value;
            if (spec.StopTokens.Contains(token)) return Result("stop");
            generated.Add(token);
            if (logprobs is not null && next.Logprobs is { } l) logprobs.Add(l);
            spec.Generated?.Invoke(generated);
            if (spec.StopsAfter?.Invoke(generated) == true) return Result("stop");
            int length = spec.PromptIds.Length + generated.Count;
            if (generated.Count == spec.MaxTokens || length == contextLength) return Result("length");
            next = await Step([token], length - 1, generated.Count);
        }

        SequenceResult Result(string finishReason)
        {
            telemetry.Metrics.RecordRequest(labels, Stopwatch.GetElapsedTime(arrived).TotalSeconds, firstToken, spec.PromptIds.Length, generated.Count);
            return new(spec.PromptIds, [.. generated], finishReason, logprobs?.ToArray(), usage);
        }
    }
}
