using System.CommandLine;
using System.Globalization;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Jobs;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Jobs;
using Spectre.Console;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster jobs list | status ID | results ID --output FILE | cancel ID</c>: the batch jobs a running cluster
/// holds, whether their client stayed (<c>run --cluster</c>) or left (<c>run --cluster --detach</c>).
/// </summary>
internal static class JobsCommand
{
    private static readonly Argument<string> JobId = new("ID") { Description = "The job's id, as run printed it" };

    private static readonly Option<string> Output = CliOption.Text("--output", "FILE.jsonl",
        "Where the results go, one line per custom_id (lines already there are not written again)");

    private static readonly Option<string> Errors = CliOption.Text("--errors", "FILE.jsonl", "Failed lines go here instead of into --output");

    private static readonly Option<bool> Json = CliOption.Flag("--json", "One JSON object on stdout instead of a table");

    public static Command Create()
    {
        var list = WithCluster(new Command("list", "The cluster's jobs, oldest first: id, status, lines done and failed."));
        list.SetAction(List);
        var status = WithCluster(new Command("status", "Where one job stands.") { JobId });
        status.SetAction(Status);
        var results = WithCluster(new Command("results", "Writes a job's results to --output as they come, until the job ends.") { JobId, Output, Errors });
        results.SetAction(Results);
        var cancel = WithCluster(new Command("cancel", "Stops a job within a step of its running lines; the results it had are kept.") { JobId });
        cancel.SetAction(Cancel);
        return new Command("jobs", "The batch jobs of a running cluster (--cluster HOST:PORT).") { list, status, results, cancel };
    }

    private static Command WithCluster(Command command)
    {
        ClusterOptionGroup.AddRunningTo(command);
        command.Add(Json);
        return command;
    }

    private static async Task<int> List(ParseResult parse, CancellationToken cancellation)
    {
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var ids = await cluster.Client.GetGrain<IJobListGrain>(0).Ids().WaitAsync(cancellation);
        var jobs = await Task.WhenAll(ids.Select(id => cluster.Client.GetGrain<IJobGrain>(id).Info().WaitAsync(cancellation)));
        if (parse.GetValue(Json))
        {
            CommandSupport.WriteJson(jobs.Select(Describe));
            return 0;
        }
        var table = new Table().AddColumns("job", "status", "lines", "done", "failed", "created", "deployment", "silo");
        foreach (var job in jobs)
            table.AddRow(job.Id, job.Status, $"{job.Lines}", $"{job.Done}", $"{job.Failed}",
                job.CreatedAt.ToString("u", CultureInfo.InvariantCulture), job.Spec.DeploymentId, job.Host);
        AnsiConsole.Write(table);
        return 0;
    }

    private static async Task<int> Status(ParseResult parse, CancellationToken cancellation)
    {
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var job = await cluster.Client.GetGrain<IJobGrain>(parse.GetRequiredValue(JobId)).Info().WaitAsync(cancellation);
        if (parse.GetValue(Json)) CommandSupport.WriteJson(Describe(job));
        else JobSummary.Print(job, local: null, json: false, traffic: null);
        return 0;
    }

    private static async Task<int> Results(ParseResult parse, CancellationToken cancellation)
    {
        string output = parse.Required(Output);
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var job = cluster.Client.GetGrain<IJobGrain>(parse.GetRequiredValue(JobId));
        var info = await job.Info().WaitAsync(cancellation);
        using var files = BatchOutputFiles.Open(output, parse.GetValue(Errors));
        foreach (var repair in files.Repairs) Console.Error.WriteLine(repair);
        info = await JobFollower.FollowAsync(job, files, info.Spec.InputName, new JobProgress(local: null), cancellation);
        JobSummary.Print(info, local: null, parse.GetValue(Json), traffic: null);
        return 0;
    }

    private static async Task<int> Cancel(ParseResult parse, CancellationToken cancellation)
    {
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var job = await cluster.Client.GetGrain<IJobGrain>(parse.GetRequiredValue(JobId)).Cancel().WaitAsync(cancellation);
        if (parse.GetValue(Json)) CommandSupport.WriteJson(Describe(job));
        else Console.WriteLine($"job {job.Id}: {job.Status}, {job.Completed} completed and {job.Failed} failed of {job.Lines} lines");
        return 0;
    }

    private static object Describe(JobInfo job) => new
    {
        job.Id, job.Status, job.Spec.DeploymentId, Input = job.Spec.InputName, job.Lines, job.Completed, job.Failed,
        job.CreatedAt, job.FinishedAt, Silo = job.Host, job.PromptTokens, job.GeneratedTokens, Seconds = Math.Round(job.Seconds, 3),
        SparsityAchieved = Math.Round(JobSummary.Sparsity(job), 4), job.WireBytes, job.Error,
    };
}
