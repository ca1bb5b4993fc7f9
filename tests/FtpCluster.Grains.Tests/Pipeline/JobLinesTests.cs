using FtpCluster.Grains.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace FtpCluster.Grains.Tests.Pipeline;

/// <summary>A job's lines on one deployment: its concurrency limit, keys, collection, cancellation and idle expiry.</summary>
public sealed class JobLinesTests
{
    /// <summary>Lines that finish when the test says so, recording which ran and with what cancellation.</summary>
    private sealed class ControlledLines
    {
        public Dictionary<string, TaskCompletionSource<CompletionLineResult>> Running { get; } = [];
        public Dictionary<string, CancellationToken> Tokens { get; } = [];
        public List<string> Started { get; } = [];

        public Task<CompletionLineResult> Run(CompletionLine line, CancellationToken cancellation)
        {
            // Completed inline, as a grain's turns run one at a time: no thread of the test's runs beside another.
            var done = new TaskCompletionSource<CompletionLineResult>();
            cancellation.Register(() => done.TrySetCanceled(cancellation));
            Running[line.Key] = done;
            Tokens[line.Key] = cancellation;
            Started.Add(line.Key);
            return done.Task;
        }

        public void Finish(string key) => Running[key].SetResult(new CompletionLineResult(key, 0, "{}", null, null));
    }

    private static CompletionLine Line(string key) => new(key, 1, "/v1/completions", "{}");

    [Fact]
    public async Task At_most_the_jobs_limit_runs_and_the_rest_start_as_lines_finish()
    {
        var lines = new ControlledLines();
        var jobs = new JobLines(lines.Run, TimeProvider.System);
        Assert.Equal(3, jobs.Submit("job", [Line("a"), Line("b"), Line("c")], maxConcurrent: 2));
        Assert.Equal(["a", "b"], lines.Started);

        lines.Finish("a");
        var collected = await jobs.Collect("job", TimeSpan.FromSeconds(5));
        Assert.Equal("a", Assert.Single(collected.Results).Key);
        Assert.Equal(2, collected.Held); // b running, c started in a's place
        Assert.Equal(["a", "b", "c"], lines.Started);
    }

    [Fact]
    public async Task A_line_submitted_again_while_queued_or_running_runs_once()
    {
        var lines = new ControlledLines();
        var jobs = new JobLines(lines.Run, TimeProvider.System);
        jobs.Submit("job", [Line("a"), Line("b")], maxConcurrent: 1);
        Assert.Equal(0, jobs.Submit("job", [Line("a"), Line("b")], maxConcurrent: 1));
        lines.Finish("a");
        await jobs.Collect("job", TimeSpan.FromSeconds(5));
        lines.Finish("b");
        await jobs.Collect("job", TimeSpan.FromSeconds(5));
        Assert.Equal(["a", "b"], lines.Started);
    }

    [Fact]
    public async Task Results_are_collected_once_and_other_jobs_do_not_see_them()
    {
        var lines = new ControlledLines();
        var jobs = new JobLines(lines.Run, TimeProvider.System);
        jobs.Submit("one", [Line("a")], 4);
        jobs.Submit("two", [Line("b")], 4);
        lines.Finish("a");
        Assert.Equal("a", Assert.Single((await jobs.Collect("one", TimeSpan.FromSeconds(5))).Results).Key);
        Assert.Empty((await jobs.Collect("one", TimeSpan.Zero)).Results);
        var other = await jobs.Collect("two", TimeSpan.Zero);
        Assert.Empty(other.Results);
        Assert.Equal(1, other.Held);
        // A job this coordinator never saw (it came back after its silo died): it holds none of the job's lines.
        Assert.Equal(0, (await jobs.Collect("unknown", TimeSpan.Zero)).Held);
    }

    [Fact]
    public async Task A_cancelled_job_stops_its_running_lines_and_never_starts_the_waiting_ones()
    {
        var lines = new ControlledLines();
        var jobs = new JobLines(lines.Run, TimeProvider.System);
        jobs.Submit("job", [Line("a"), Line("b"), Line("c")], maxConcurrent: 2);
        lines.Finish("a");
        var kept = (await jobs.Collect("job", TimeSpan.FromSeconds(5))).Results;

        jobs.Cancel("job");
        Assert.True(lines.Tokens["b"].IsCancellationRequested);
        Assert.True(lines.Tokens["c"].IsCancellationRequested);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lines.Running["b"].Task);
        Assert.Equal("a", Assert.Single(kept).Key);
        Assert.Equal(0, jobs.JobCount);
    }

    [Fact]
    public async Task A_line_whose_handler_throws_fails_alone()
    {
        var jobs = new JobLines((line, _) => line.Key == "bad"
            ? Task.FromException<CompletionLineResult>(new InvalidOperationException("the stages could not be placed again"))
            : Task.FromResult(new CompletionLineResult(line.Key, line.LineNumber, "{}", null, null)), TimeProvider.System);
        jobs.Submit("job", [Line("good"), Line("bad"), Line("also-good")], 3);
        var results = (await jobs.Collect("job", TimeSpan.Zero)).Results.ToDictionary(r => r.Key);
        Assert.True(results["good"].Succeeded);
        Assert.True(results["also-good"].Succeeded);
        Assert.Equal("server_error", results["bad"].ErrorCode);
        Assert.Contains("could not be placed again", results["bad"].ErrorMessage);
    }

    [Fact]
    public void A_job_that_stops_collecting_is_cancelled_after_the_idle_timeout()
    {
        var lines = new ControlledLines();
        var time = new FakeTimeProvider();
        var jobs = new JobLines(lines.Run, time);
        jobs.Submit("job", [Line("a")], 1);
        time.Advance(JobLines.IdleTimeout - TimeSpan.FromSeconds(1));
        Assert.Empty(jobs.CancelIdle());
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(["job"], jobs.CancelIdle());
        Assert.True(lines.Tokens["a"].IsCancellationRequested);
    }

    [Fact]
    public void A_submission_past_the_queue_bound_is_refused_and_queues_nothing()
    {
        var lines = new ControlledLines();
        var jobs = new JobLines(lines.Run, TimeProvider.System);
        var many = Enumerable.Range(0, JobLines.MaxQueuedPerJob + 2).Select(i => Line($"l{i}")).ToArray();
        var error = Assert.Throws<InvalidOperationException>(() => jobs.Submit("job", many, 1));
        Assert.Contains($"more than the {JobLines.MaxQueuedPerJob} a job may queue", error.Message);
        Assert.Empty(lines.Started);
        Assert.Throws<ArgumentException>(() => jobs.Submit("job", [Line("a")], 0));
    }
}
