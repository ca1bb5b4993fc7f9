using FtpCluster.Compute.Serving;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The online requests (HTTP calls) one deployment runs: each generates as its own sequence, and its client polls
/// for the text made since the last poll, which <see cref="StreamingText"/> lets out only once it is final. A
/// request nobody polls for <see cref="IdleTimeout"/> (its HTTP silo died with the connection) is cancelled, so
/// nothing runs for nobody.
/// </summary>
/// <remarks>Used from inside the coordinator grain, whose turns never overlap, so it takes no locks.</remarks>
internal sealed class OnlineCompletions(TimeProvider time)
{
    /// <summary>Online requests one deployment holds at once; past it, new ones are refused as overload.</summary>
    public const int MaxRequests = 4096;

    /// <summary>The longest a poll waits for text (well inside Orleans' call timeout).</summary>
    public static readonly TimeSpan MaxPollWait = TimeSpan.FromSeconds(10);

    /// <summary>How long a request may go unpolled before it is cancelled.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, Online> _requests = new(StringComparer.Ordinal);

    private sealed class Online(StreamingText text, Func<IReadOnlyList<int>, string> answerText, DateTimeOffset now)
    {
        public StreamingText Text { get; } = text;
        public Func<IReadOnlyList<int>, string> AnswerText { get; } = answerText;
        public CancellationTokenSource Cancellation { get; } = new();
        public IReadOnlyList<int> Generated { get; set; } = [];
        public int GeneratedPolled { get; set; }
        public (CompletionLineResult Result, string Text)? Finished { get; set; }
        public DateTimeOffset LastPolled { get; set; } = now;
        public TaskCompletionSource? Changed { get; set; }

        public void Signal()
        {
            Changed?.TrySetResult();
            Changed = null;
        }
    }

    public int Count => _requests.Count;

    /// <summary>
    /// Starts a request: <paramref name="generate"/> runs it, telling the tokens as they come, and ends with its
    /// result and final text; <paramref name="answerText"/> gives the text of the tokens so far, each call given more.
    /// </summary>
    /// <exception cref="InvalidOperationException">A request with this id is running already.</exception>
    public void Start(string id, IReadOnlyList<string> stopStrings, Func<IReadOnlyList<int>, string> answerText,
        Func<Action<IReadOnlyList<int>>, CancellationToken, Task<(CompletionLineResult Result, string Text)>> generate,
        Func<Exception, CompletionLineResult> failure)
    {
        if (_requests.ContainsKey(id)) throw new InvalidOperationException($"request {id} is running already");
        var online = new Online(new StreamingText(stopStrings), answerText, time.GetUtcNow());
        _requests[id] = online;
        _ = Run(online, generate, failure);
    }

    private static async Task Run(Online online,
        Func<Action<IReadOnlyList<int>>, CancellationToken, Task<(CompletionLineResult Result, string Text)>> generate,
        Func<Exception, CompletionLineResult> failure)
    {
        try
        {
            online.Finished = await generate(tokens =>
            {
                online.Generated = tokens;
                online.Signal();
            }, online.Cancellation.Token);
        }
        catch (Exception e)
        {
            // Cancelled (its client went away, or the deployment was unloaded), or the stages lost beyond recovery.
            online.Finished = (failure(e), "");
        }
        online.Signal();
    }

    /// <summary>The text since the last poll, waiting up to <paramref name="maxWait"/> for some; the whole result once finished.</summary>
    public async Task<CompletionProgress?> Poll(string id, TimeSpan maxWait)
    {
        if (!_requests.TryGetValue(id, out var online)) return null;
        online.LastPolled = time.GetUtcNow();
        if (online.Finished is null && online.Generated.Count == online.GeneratedPolled)
        {
            var changed = online.Changed ??= new TaskCompletionSource();
            var wait = TimeSpan.FromTicks(Math.Clamp(maxWait.Ticks, 0, MaxPollWait.Ticks));
            await Task.WhenAny(changed.Task, Task.Delay(wait, time));
        }
        online.LastPolled = time.GetUtcNow();
        if (online.Finished is { } finished)
        {
            _requests.Remove(id);
            online.Cancellation.Dispose();
            string rest = finished.Result.Succeeded ? online.Text.Finish(finished.Text) : "";
            return new CompletionProgress(rest, Finished: true, finished.Result);
        }
        online.GeneratedPolled = online.Generated.Count;
        return new CompletionProgress(online.Text.Next(online.AnswerText(online.Generated)), Finished: false, Result: null);
    }

    /// <summary>Stops a request: its sequence leaves its microbatch within a step, and it is forgotten.</summary>
    public void Cancel(string id)
    {
        if (!_requests.Remove(id, out var online)) return;
        online.Cancellation.Cancel();
        online.Signal();
    }

    public void CancelAll()
    {
        foreach (string id in _requests.Keys.ToArray()) Cancel(id);
    }

    /// <summary>Cancels the requests nobody has polled for <see cref="IdleTimeout"/>; returns their ids.</summary>
    public string[] CancelIdle()
    {
        var now = time.GetUtcNow();
        string[] idle = [.. _requests.Where(r => now - r.Value.LastPolled > IdleTimeout).Select(r => r.Key)];
        foreach (string id in idle) Cancel(id);
        return idle;
    }
}
