using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Jobs;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster run</c>: a file of requests in the OpenAI Batch API format through a pipeline of stages, results
/// appended to the output as each line finishes, resumed where it stopped when run again.
/// </summary>
internal static class RunCommand
{
    private static readonly Option<string> Input = CliOption.Text("--input", "FILE.jsonl",
        "Requests, one per line: {\"custom_id\", \"method\": \"POST\", \"url\": \"/v1/completions\" | \"/v1/chat/completions\", \"body\"}");

    private static readonly Option<string> Output = CliOption.Text("--output", "FILE.jsonl",
        "Results, one line per custom_id as each finishes (OpenAI's batch output format); lines already there are not run again");

    private static readonly Option<string> Errors = CliOption.Text("--errors", "FILE.jsonl",
        "Failed lines go here (as OpenAI's error file) instead of into --output");

    private static readonly Option<int> MaxConcurrent = CliOption.Int("--max-concurrent", "N", "The job's sequences generating at once", 64);

    private static readonly Option<bool> Detach = CliOption.Flag("--detach",
        "With --cluster: leave once the job is submitted and print its id; ftpcluster jobs status|results|cancel ID follow it");

    private static readonly Option<bool> Json = CliOption.Flag("--json",
        "Prints the summary as one JSON object on stdout: lines, succeeded, failed, prompt_tokens, generated_tokens, seconds, " +
        "generated_tokens_per_second, sparsity_achieved, wire_bytes");

    public static Command Create()
    {
        var command = new Command("run", """
            Runs a batch job: a file of OpenAI batch requests through a pipeline of stages (an embedded cluster of --stages
            silo processes, default 1, or a running cluster with --cluster). The job lives in the cluster; the command
            follows its results into the output as lines finish. Killed and started again with the same arguments, it
            resumes: lines already in the output are not run again and a torn last line is repaired. Without --model it runs
            HuggingFaceTB/SmolLM2-135M-Instruct, downloaded once into the Hugging Face cache.
              run --input FILE.jsonl --output FILE.jsonl [--errors FILE.jsonl] [--model PATH|ORG/NAME] [--tokenizer PATH] [--serve-name NAME] [--router R[,R...]] [CLUSTER]
                  [--max-concurrent N] [--detach] [--json]
            Request bodies honour model, prompt (text or token ids) or messages (rendered with the model's chat template),
            max_tokens (or max_completion_tokens), temperature, top_p, seed, stop, n (1 only), logprobs/top_logprobs and
            ftp {"sparsity": S} (picks the --router artifact of that mean sparsity; a line without it gets the first); other
            fields are ignored.
            """);
        foreach (var option in new Option[] { Input, Output, Errors }) command.Add(option);
        ModelOptionGroup.AddTo(command);
        command.Add(ModelOptionGroup.ServeName);
        PruningOptionGroup.AddTo(command);
        ClusterOptionGroup.AddTo(command);
        foreach (var option in new Option[] { MaxConcurrent, Detach, Json }) command.Add(option);
        command.SetAction(RunAsync);
        return command;
    }

    private static Task<int> RunAsync(ParseResult parse, CancellationToken cancellation)
    {
        var pruning = PruningOptionGroup.Bind(parse, severalRouters: true);
        // A job always runs through stages: one embedded silo unless told otherwise.
        var cluster = ClusterOptionGroup.Bind(parse) ?? new ClusterTarget(1, null, ClusterTarget.DefaultClusterId, WireEncoding.F32);
        var options = new RunOptions(parse.Required(Input), parse.Required(Output), parse.GetValue(Errors), parse.GetValue(MaxConcurrent), parse.GetValue(Json), parse.GetValue(Detach),
            parse.GetValue(ModelOptionGroup.ServeName));
        if (options.MaxConcurrent < 1) throw new UsageException($"--max-concurrent must be at least 1, got {options.MaxConcurrent}");
        if (options.ErrorsPath is { } errors && Path.GetFullPath(errors) == Path.GetFullPath(options.OutputPath))
            throw new UsageException("--errors must be another file than --output");
        if (Path.GetFullPath(options.InputPath) == Path.GetFullPath(options.OutputPath))
            throw new UsageException("--output must be another file than --input");
        pruning?.CheckUsableWith(cluster);
        // Bound last: the default model is downloaded on first use, which a mistake in the other arguments should not wait for.
        var model = ModelOptionGroup.Bind(parse, ModelArgument.DefaultRunModel);
        model.CheckUsableWith(cluster);
        return BatchRun.ExecuteAsync(options, cluster, model, pruning, cancellation);
    }
}
