namespace FtpCluster.Compute.Tests.Cli;

/// <summary>The FTP switches of generate, score and eval refuse what cannot work, each with one line saying why.</summary>
public sealed class PruningOptionsCliTests
{
    [Theory]
    [InlineData("--routing", "one-pass")]
    [InlineData("--stage-aware")]
    [InlineData("--prune-newest")]
    public void Pruning_switches_without_a_router_are_refused(params string[] extra)
    {
        var (code, _, stderr) = CliTests.Run(["generate", "--model", "m.bin", "--prompt", "x", .. extra]);
        Assert.Equal(2, code);
        Assert.Contains("need --router ROUTER.json", stderr);
    }

    [Fact]
    public void An_unknown_routing_is_refused() =>
        AssertRefused(["score", "--model", "m.bin", "--ids", "[1,2]", "--router", "r.json", "--routing", "sideways"],
            "--routing expects one-pass or block, got 'sideways'");

    [Fact]
    public void Stage_aware_routing_in_one_process_is_refused() =>
        AssertRefused(["generate", "--model", "m.bin", "--prompt", "x", "--router", "r.json", "--stage-aware"],
            "--stage-aware needs --stages N or --cluster HOST:PORT");

    [Fact]
    public void Eval_through_stages_without_a_router_is_refused() =>
        AssertRefused(["eval", "--model", "m.bin", "--data", "d.jsonl", "--stages", "2"],
            "--stages and --cluster measure a router's traffic through the stages: pass --router ROUTER.json");

    [Fact]
    public void Eval_stage_aware_without_one_pass_routing_is_refused() =>
        AssertRefused(["eval", "--model", "m.bin", "--data", "d.jsonl", "--router", "r.json", "--stages", "2", "--stage-aware", "--routing", "block"],
            "--stage-aware plans in one pass: --routing must include one-pass");

    [Fact]
    public void Eval_stage_aware_without_stages_is_refused() =>
        AssertRefused(["eval", "--model", "m.bin", "--data", "d.jsonl", "--router", "r.json", "--stage-aware"],
            "--stage-aware needs --stages N or --cluster HOST:PORT");

    private static void AssertRefused(string[] args, string message)
    {
        var (code, _, stderr) = CliTests.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
    }
}
