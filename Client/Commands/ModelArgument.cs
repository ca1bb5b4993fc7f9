using FtpCluster.Compute.Hub;

namespace FtpCluster.Client.Commands;

/// <summary>
/// A <c>--model</c> argument made a local path, the one place the command line does it: a local path stays as it is; a
/// Hugging Face repo id (<c>ORG/NAME[@REVISION][:FILE]</c>) becomes its snapshot in the Hugging Face cache, downloading
/// what is missing with a progress line on stderr (<see cref="HubSettings"/> lists the environment it honours).
/// </summary>
internal static class ModelArgument
{
    /// <summary>The model <c>run</c> uses without <c>--model</c>: small (135M parameters), Apache-2.0, with a chat template.</summary>
    public const string DefaultRunModel = "HuggingFaceTB/SmolLM2-135M-Instruct";

    public static string Resolve(string argument)
    {
        if (!HubModelId.TryParse(argument, out var id))
            return argument;
        var resolver = new HubModelResolver(HubSettings.FromEnvironment());
        // The commands that take --model run synchronously; a download interrupted by Ctrl+C resumes next time.
        string path = resolver.ResolveAsync(id, new DownloadProgressLine()).GetAwaiter().GetResult();
        Console.Error.WriteLine($"model {id}: {path}");
        return path;
    }
}
