namespace FtpCluster.Compute.Models;

/// <summary>A model or tokenizer file that cannot be used, with the file (and tensor) at fault.</summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string file, string? tensor, string problem, Exception? inner = null)
        : base(Format(file, tensor, problem), inner)
    {
        File = file;
        Tensor = tensor;
        Problem = problem;
    }

    public string File { get; }
    public string? Tensor { get; }
    public string Problem { get; }

    private static string Format(string file, string? tensor, string problem) =>
        tensor is null ? $"{file}: {problem}" : $"{file}: tensor '{tensor}': {problem}";
}
