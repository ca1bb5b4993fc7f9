using FtpCluster.Client;
using FtpCluster.Client.Commands;
using FtpCluster.Compute.Models;

const string Usage = """
    usage: ftpcluster <command> [options]

      generate --model PATH [--tokenizer PATH] (--prompt TEXT | --ids JSON_ARRAY) [--max-tokens N]
               [--temperature T] [--top-k K] [--top-p P] [--seed S] [--device cpu|ilgpu-cpu|cuda]
               [--dtype f32|f16|bf16] [--threads N] [--json] [FTP] [CLUSTER]
      generate --model PATH --samples N --out FILE.jsonl [--prompt TEXT | --ids JSON_ARRAY] [--max-tokens N]
               [--temperature T (default 1)] [--top-k K] [--top-p P] [--seed S]
      score    --model PATH (--ids JSON_ARRAY | --text TEXT) [--tokenizer PATH] [--logits] [--json] [FTP] [CLUSTER]
        FTP:     --router ROUTER.json [--routing one-pass|block (one process only)] [--stage-aware (cluster only)]
                 [--prune-newest]
        CLUSTER: --stages N (an embedded cluster of N silo processes for this command)
                 | --cluster HOST:PORT[,HOST:PORT] [--cluster-id ID] [--stages N] (a running cluster's gateways)
                 with [--wire f32|f16|bf16|int8|int8-row]
      calibrate --model PATH --data FILE --sparsity S [--routing one-pass|block] [--seed N] --out ROUTER.json
               [--population N] [--generations N] [--tune-generations N] [--guide-iterations N] [--iterations N]
               [--batch N] [--learning-rate X] [--max-sequences N] [--max-len N] [--tokenizer PATH]
      eval     --model PATH --data FILE [--tokenizer PATH] [--calibration FILE] [--sparsity S[,S...] | --router R[,R...]]
               [--methods M[,M...]] [--routing block,one-pass] [--seed N] [--max-sequences N] [--max-len N] [--min-len N]
               [--json] [--plot FILE.png]
               methods: METHODS (dense, the reference, is always reported); sparsity default 0.2,0.3,0.4;
               with --router the targets are the routers' mean sparsities and learned is among the defaults;
               with --router and CLUSTER: wire_bytes_ratio and each stage's compute against the plan;
               --stage-aware also: each routed method's one-pass plan per stage segment of the deployed stages
      cluster up --silos N [--base-port P] [--cluster-id ID] [--device D] [--threads N]
                 [--model PATH [--stages N] [--wire W] [--dtype D] [FTP]]
      bench kernels [--quick] [--json]
      bench model --model PATH [--prompt-tokens N] [--gen-tokens N] [--reps N] [--dtype D] [--json]
      bench model --model PATH --router ROUTER.json [--routing one-pass|block] [--prompt-tokens N (default 512)]
                  [--reps N] [--dtype D] [--json]      (dense against pruned prefill, alternating)
      bench wire [--hidden N] [--seconds S] [--json]
      bench pipeline --model PATH (--stages N | --cluster HOST:PORT) [--prompt-tokens N] [--reps N] [--sequences N]
                     [--gen-tokens N] [--wire W] [--json]
      bench transport [--stages N | --cluster HOST:PORT [--stages N]] [--sizes 1MiB,8MiB] [--in-flight 1,4]
                      [--seconds S] [--json]
      models synth (--preset NAME | --layers N --dim N --heads N --kv-heads N --hidden N --vocab N)
                   [--arch llama|mistral|qwen2] [--dtype f32|f16|bf16] [--seed S] --out DIR
      models info PATH [--json]
      router static --model PATH --sparsity S --out ROUTER.json   (static router, block 0 dense, mean sparsity S)
    """;

try
{
    return args switch
    {
        ["generate", .. var rest] => GenerateCommand.Run(rest),
        ["score", .. var rest] => ScoreCommand.Run(rest),
        ["eval", .. var rest] => EvalCommand.Run(rest),
        ["calibrate", .. var rest] => CalibrateCommand.Run(rest),
        ["cluster", "up", .. var rest] => ClusterCommand.Up(rest),
        ["bench", "kernels", .. var rest] => BenchCommand.Kernels(rest),
        ["bench", "model", .. var rest] => BenchCommand.Model(rest),
        ["bench", "wire", .. var rest] => BenchCommand.Wire(rest),
        ["bench", "pipeline", .. var rest] => await BenchCommand.Pipeline(rest),
        ["bench", "transport", .. var rest] => await BenchCommand.Transport(rest),
        ["models", "synth", .. var rest] => ModelsCommand.Synth(rest),
        ["models", "info", .. var rest] => ModelsCommand.Info(rest),
        ["router", "static", .. var rest] => RouterCommand.Static(rest),
        ["--help" or "-h" or "help"] => PrintUsage(Console.Out, 0),
        _ => PrintUsage(Console.Error, 2),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 2;
}
catch (ModelFormatException e)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 1;
}
catch (OperationCanceledException)
{
    // Ctrl+C or SIGTERM: whatever the command started has been stopped on the way out.
    Console.Error.WriteLine("ftpcluster: interrupted");
    return 130;
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or TimeoutException or Orleans.Runtime.OrleansException)
{
    Console.Error.WriteLine($"ftpcluster: {e.Message}");
    return 1;
}

int PrintUsage(TextWriter writer, int code)
{
    writer.WriteLine(Usage.Replace("METHODS", string.Join(", ", FtpCluster.Compute.Evaluation.EvalMethods.Names), StringComparison.Ordinal));
    return code;
}
