namespace FtpCluster.Compute.Models;

/// <summary>Opens whatever model format a path holds.</summary>
public static class Checkpoint
{
    /// <summary>
    /// A directory with <c>config.json</c> is a Hugging Face checkpoint; a file that starts with the GGUF
    /// magic is a GGUF file, whatever its name; any other file is a llama2.c checkpoint.
    /// </summary>
    public static ICheckpoint Open(string path)
    {
        if (Directory.Exists(path))
            return HuggingFaceCheckpoint.Open(path);
        if (File.Exists(path))
            return GgufFile.HasMagic(path) ? GgufCheckpoint.Open(path) : Llama2cCheckpoint.Open(path);
        throw new ModelFormatException(path, null, "no such file or directory");
    }
}
