namespace FtpCluster.Compute.Tests.Cli;

/// <summary>
/// The command line itself, before any command runs: --help on every command, suggestions for typos, and
/// a usage error as one line on stderr with exit code 2.
/// </summary>
public sealed class CommandLineTests
{
    private const string ModelOptions = "--model --tokenizer --device --threads --dtype";
    private const string FtpOptions = "--router --routing --stage-aware --prune-newest";
    private const string ClusterOptions = "--stages --cluster --cluster-id --wire";

    /// <summary>Every command with every option it takes: its help must list each one, described.</summary>
    public static TheoryData<string, string> Commands => new()
    {
        { "generate", $"{ModelOptions} --prompt --ids --max-tokens --temperature --top-k --top-p --seed --samples --out --json {FtpOptions} {ClusterOptions}" },
        { "score", $"{ModelOptions} --ids --text --logits --json {FtpOptions} {ClusterOptions}" },
        { "calibrate", $"{ModelOptions} --data --sparsity --routing --seed --out --population --generations --tune-generations --guide-iterations " +
            "--iterations --batch --learning-rate --max-sequences --max-len" },
        { "eval", $"{ModelOptions} --data --calibration --sparsity --router --methods --routing --seed --max-sequences --max-len --min-len --json --plot " +
            $"{ClusterOptions} --stage-aware" },
        { "cluster up", $"--silos --base-port --cluster-id --device --threads --model-root --model --stages --wire --dtype {FtpOptions}" },
        { "bench kernels", "--quick --json" },
        { "bench model", $"{ModelOptions} --router --routing --prompt-tokens --gen-tokens --reps --seed --sequences --profile --json" },
        { "bench wire", "--hidden --seconds --json" },
        { "bench pipeline", $"{ModelOptions} --prompt-tokens --reps --sequences --gen-tokens --json {ClusterOptions}" },
        { "bench transport", $"{ClusterOptions} --sizes --in-flight --seconds --json" },
        { "bench detokenize", "--tokenizer --tokens --reps --json" },
        { "models synth", "--preset --arch --layers --dim --heads --kv-heads --hidden --vocab --head-dim --rope-theta --max-positions --dtype --seed " +
            "--tied --untied --shard-mb --out" },
        { "models info", "--json" },
        { "router static", "--model --sparsity --out" },
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Help_documents_every_option_of_every_command(string command, string options)
    {
        foreach (string help in new[] { "--help", "-h", "-?" })
        {
            var (code, stdout, stderr) = CliTests.Run([.. command.Split(' '), help]);
            Assert.True(code == 0, $"{command} {help}: exit {code}: {stderr}");
            Assert.Contains($"ftpcluster {command}", stdout);
            var documented = DescribedOptions(stdout);
            foreach (string option in options.Split(' '))
                Assert.True(documented.Contains(option), $"{command} {help} does not describe {option}:\n{stdout}");
        }
    }

    [Fact]
    public void Models_info_help_describes_its_path_argument()
    {
        var (code, stdout, _) = CliTests.Run("models", "info", "--help");
        Assert.Equal(0, code);
        Assert.Contains("<PATH>  A checkpoint", stdout);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("help")]
    public void Help_of_the_root_lists_the_commands(string help)
    {
        var (code, stdout, _) = CliTests.Run(help);
        Assert.Equal(0, code);
        foreach (string command in new[] { "generate", "score", "calibrate", "eval", "cluster", "bench", "models", "router" })
            Assert.Matches($@"(?m)^  {command} +\S", stdout);
    }

    [Theory]
    [InlineData("bench", "kernels model wire pipeline transport")]
    [InlineData("models", "synth info")]
    [InlineData("cluster", "up")]
    [InlineData("router", "static")]
    public void Help_of_a_group_lists_its_commands(string group, string commands)
    {
        var (code, stdout, _) = CliTests.Run(group, "--help");
        Assert.Equal(0, code);
        foreach (string command in commands.Split(' '))
            Assert.Matches($@"(?m)^  {command} +\S", stdout);
    }

    [Theory]
    [InlineData("generate --model m --ids [1] --max-tokenz 5", "unknown option: --max-tokenz (did you mean --max-tokens?)")]
    [InlineData("eval --model m --data d --methds dense", "unknown option: --methds (did you mean --methods?)")]
    [InlineData("bench wire --hiden 64", "unknown option: --hiden (did you mean --hidden?)")]
    [InlineData("score --model m --ids [1] --zzzzzzzz", "unknown option: --zzzzzzzz")]
    [InlineData("generat --model m", "unknown command 'generat' (did you mean generate?)")]
    [InlineData("bench modle --model m", "unknown command 'bench modle' (did you mean bench model?)")]
    [InlineData("bench", "bench expects a command: kernels, model, wire, pipeline, transport, detokenize (ftpcluster bench --help describes them)")]
    [InlineData("", "expected a command: generate, score, calibrate, eval, cluster, bench, models, router, run, jobs, devices (ftpcluster --help describes them)")]
    [InlineData("generate --model a --model b", "--model is given twice")]
    [InlineData("generate --json --model a --json", "--json is given twice")]
    [InlineData("generate --prompt x --model", "--model needs a value")]
    [InlineData("generate --model m --prompt x stray", "unexpected argument 'stray' (options look like --name value)")]
    [InlineData("generate --model m --ids [1] --top-k 2.5", "--top-k expects an integer, got '2.5'")]
    [InlineData("generate --model m --ids [1] --dtype f8", "unknown dtype 'f8' (expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k)")]
    [InlineData("models info", "models info needs PATH (ftpcluster models info --help describes it)")]
    [InlineData("models info --jsn model.bin", "unknown option: --jsn (did you mean --json?)")]
    [InlineData("bench model --model m --routing block", "--routing needs --router ROUTER.json")]
    [InlineData("bench model --model m --router r.json --gen-tokens 8", "--gen-tokens does not apply with --router: the pruned benchmark times prefill only")]
    [InlineData("bench model --model m --router r.json --sequences 8", "--sequences does not apply with --router: the pruned benchmark times prefill only")]
    [InlineData("cluster up", "--silos N is required")]
    [InlineData("cluster up --silos 1 --api-key-file keys.txt", "--api-key-file needs --http-port")]
    [InlineData("cluster up --silos 1 --http-port 70000", "--http-port must be 1-65535, got 70000")]
    [InlineData("cluster up --silos 1 --serve-name x", "--stages, --wire, --dtype, --router, --tokenizer and --serve-name describe a deployment: give --model PATH too")]
    [InlineData("models quantize --model m --type q3_k --out x.gguf", "--type: unknown quantization type 'q3_k'; this build writes q8_0, q4_0, q4_k, q6_k, q4_k_s, q4_k_m, q5_k_m")]
    [InlineData("cluster deployments", "--cluster HOST:PORT is required: it names a running cluster's gateways")]
    [InlineData("jobs status job_x", "--cluster HOST:PORT is required: it names a running cluster's gateways")]
    [InlineData("run --input a.jsonl --output o.jsonl --model m --max-concurrent 0", "--max-concurrent must be at least 1, got 0")]
    [InlineData("run --input a.jsonl --output a.jsonl --model m", "--output must be another file than --input")]
    [InlineData("run --input no-such-input.jsonl --output o.jsonl --model m", "--input: no such file: no-such-input.jsonl")]
    public void A_usage_error_is_one_line_on_stderr_and_exit_code_2(string commandLine, string message)
    {
        var (code, stdout, stderr) = CliTests.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"ftpcluster: {message}", stderr.TrimEnd('\n'));
    }

    [Fact]
    public void Name_equals_value_reaches_the_command()
    {
        // Refused by the command's own check on the value, so the value arrived through --max-tokens=-1.
        var (code, _, stderr) = CliTests.Run("generate", "--model=m", "--prompt=x", "--max-tokens=-1");
        Assert.Equal(2, code);
        Assert.Equal("ftpcluster: --max-tokens must be >= 0, got -1", stderr.TrimEnd('\n'));
    }

    [Fact]
    public void The_suggest_directive_completes_options_and_commands()
    {
        var (code, stdout, stderr) = CliTests.Run("[suggest:13]", "generate --ro");
        Assert.True(code == 0, stderr);
        Assert.Equal(["--router", "--routing"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        (code, stdout, stderr) = CliTests.Run("[suggest:16]", "bench transport ");
        Assert.True(code == 0, stderr);
        Assert.Contains("--in-flight", stdout.Split('\n', StringSplitOptions.TrimEntries));

        (code, stdout, _) = CliTests.Run("[suggest:20]", "generate --routing b");
        Assert.Equal(0, code);
        Assert.Equal(["block"], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    /// <summary>The options a help text lists in its Options section with a description beside them.</summary>
    private static HashSet<string> DescribedOptions(string help)
    {
        var options = new HashSet<string>(StringComparer.Ordinal);
        bool inOptions = false;
        foreach (string line in help.Split('\n'))
        {
            if (line.StartsWith("Options:", StringComparison.Ordinal))
            {
                inOptions = true;
                continue;
            }
            if (!inOptions || !line.StartsWith("  -", StringComparison.Ordinal)) continue;
            // "  --name <VALUE>   description": the names, then at least two spaces, then the description.
            var columns = line.Trim().Split("  ", 2, StringSplitOptions.None);
            if (columns.Length < 2 || columns[1].Trim().Length == 0) continue;
            foreach (string name in columns[0].Split(", ")) options.Add(name.Split(' ')[0]);
        }
        return options;
    }
}
