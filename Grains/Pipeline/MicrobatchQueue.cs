using System.Diagnostics;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// One sequence's next step waiting for a microbatch: its new tokens from <paramref name="FirstPosition"/>
/// on, and the token to draw after the last of them (none for a piece of a prompt that more pieces follow).
/// </summary>
/// <param name="Epoch">The plan the tokens were chosen for (a replay after a re-plan feeds more of them).</param>
/// <param name="Router">The deployment's router that plans the sequence's rows; -1: dense. A microbatch has one.</param>
internal sealed record PendingStep(long SequenceId, int Epoch, int[] Tokens, int FirstPosition, SampleRequest? Sample, int Router)
{
    /// <summary>What the step gave, or null when the plan changed before the step was sent (choose the tokens again).</summary>
    public TaskCompletionSource<StepOutcome?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The span the step was made in (its request's or line's): the microbatch that carries it joins that trace.</summary>
    public ActivityContext Trace { get; } = Activity.Current?.Context ?? default;
}

/// <summary>One step's share of a microbatch's result: the drawn token (if it asked for one), its log-probabilities, its cost.</summary>
internal sealed record StepOutcome(int? Token, SampledLogprobs? Logprobs, SequenceUsage? Usage);

/// <summary>How the coordinator cuts the waiting steps into microbatches.</summary>
/// <param name="MaxRows">Rows per microbatch; a single step longer than this still goes, alone.</param>
/// <param name="MaxInFlight">Microbatches in the pipeline at once: one per stage keeps every stage busy.</param>
internal readonly record struct MicrobatchLimits(int MaxRows, int MaxInFlight);

/// <summary>
/// Gathers the steps of many sequences into shared microbatches (decode steps of many sequences become
/// one matrix product instead of many vector ones) and keeps up to <see cref="MicrobatchLimits.MaxInFlight"/>
/// of them in the pipeline, so every stage has work while the others compute.
/// </summary>
/// <remarks>
/// Used from inside one grain, whose turns never overlap, so it takes no locks. A microbatch returns, its
/// sequences choose their next steps, and only then are the waiting steps cut: the queue looks once all
/// continuations queued before it have run, so the sequences that travelled together stay together.
/// </remarks>
internal sealed class MicrobatchQueue(
    Func<PendingStep[], Task<StepResult>> send, Func<int> currentEpoch, Func<MicrobatchLimits> limits)
{
    private readonly LinkedList<PendingStep> _waiting = new();
    private int _inFlight;
    private bool _lookScheduled;

    public Task<StepOutcome?> Submit(PendingStep step)
    {
        _waiting.AddLast(step);
        ScheduleLook();
        return step.Done.Task;
    }

    private void ScheduleLook()
    {
        if (_lookScheduled) return;
        _lookScheduled = true;
        _ = LookAfterQueuedWork();
    }

    private async Task LookAfterQueuedWork()
    {
        await Task.Yield();
        _lookScheduled = false;
        var (maxRows, maxInFlight) = limits();
        while (_inFlight < maxInFlight && TakeMicrobatch(maxRows) is { Length: > 0 } batch)
        {
            _inFlight++;
            _ = Run(batch);
        }
    }

    /// <summary>
    /// Waiting steps, oldest first, up to the row limit, all of the oldest one's router (one plan per microbatch:
    /// the others wait for the next); steps of an older plan are handed back.
    /// </summary>
    private PendingStep[] TakeMicrobatch(int maxRows)
    {
        var batch = new List<PendingStep>();
        int rows = 0, epoch = currentEpoch();
        for (var node = _waiting.First; node is not null;)
        {
            var (step, next) = (node.Value, node.Next);
            if (step.Epoch != epoch)
            {
                _waiting.Remove(node);
                step.Done.TrySetResult(null);
            }
            else if (batch.Count == 0 || step.Router == batch[0].Router)
            {
                if (batch.Count > 0 && rows + step.Tokens.Length > maxRows) break;
                _waiting.Remove(node);
                batch.Add(step);
                rows += step.Tokens.Length;
            }
            node = next;
        }
        return [.. batch];
    }

    private async Task Run(PendingStep[] batch)
    {
        try
        {
            var result = await send(batch);
            var usage = (result.Usage ?? []).ToDictionary(u => u.SequenceId);
            // The result answers the sample requests in the order of the steps that made one.
            int sample = 0;
            foreach (var step in batch)
            {
                var cost = usage.GetValueOrDefault(step.SequenceId);
                if (step.Sample is null)
                {
                    step.Done.TrySetResult(new StepOutcome(null, null, cost));
                    continue;
                }
                step.Done.TrySetResult(new StepOutcome(result.SampledTokens[sample], result.Logprobs?[sample], cost));
                sample++;
            }
        }
        catch (Exception e)
        {
            foreach (var step in batch) step.Done.TrySetException(e);
        }
        finally
        {
            _inFlight--;
            ScheduleLook();
        }
    }
}
