using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// The options of every command that runs a model, which make its <see cref="ModelOptions"/>: --model,
/// --tokenizer, --device, --threads, --dtype. Defined once; <c>cluster up</c> takes some of them one by one.
/// </summary>
internal static class ModelOptionGroup
{
    public static readonly Option<string> Model = CliOption.Text("--model", "PATH|ORG/NAME",
        "The model: a llama2.c checkpoint (.bin), a Hugging Face directory (config.json, safetensors), a GGUF file, or a Hugging Face repo id "
        + "ORG/NAME[@REVISION], downloaded once into the Hugging Face cache (HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT)");

    public static readonly Option<string> Tokenizer = CliOption.Text("--tokenizer", "PATH",
        "The tokenizer (tokenizer.json, tokenizer.model, a llama2.c tok*.bin); default: the one beside the model");

    /// <summary>Not refused at parse time: a device that cannot be had is a runtime error (exit 1), as when it is named right.</summary>
    public static readonly Option<string> Device = CliOption.Text("--device", "cpu|ilgpu-cpu|cuda|cuda:N",
        "The backend (default cpu); cuda is the first CUDA device, cuda:N the one numbered N; a CUDA device that is not there is an error, "
        + "never a fallback. Local silos asked for cuda take one GPU each (cuda:0, cuda:1, ...)").Completing(ComputeDevices.Names);

    public static readonly Option<int> Threads = CliOption.Int("--threads", "N", "CPU threads of the cpu device; 0 uses every core", 0);

    public static readonly Option<TensorDType?> DType = CliOption.Parsed<TensorDType?>("--dtype", string.Join("|", TensorDTypeExtensions.Names),
        "Converts the weights to this storage type at load (default: as stored in the file); a quantized type (q8_0, q4_0, q4_k, q6_k …) "
        + "quantizes the matrices in llama.cpp's blocks, with llama.cpp's fall-back for rows that are not whole blocks (q4_k → q5_0, q6_k → q8_0, else f16)",
        word => TensorDTypeExtensions.Parse(word), [.. TensorDTypeExtensions.Names]);

    /// <summary>Not among <see cref="AddTo"/>'s options: only the commands that serve requests take it.</summary>
    public static readonly Option<string> ServeName = CliOption.Text("--serve-name", "NAME",
        "The name requests give as their model (default: the model's file or folder name, or its repo id ORG/NAME)");

    public static void AddTo(Command command)
    {
        foreach (var option in new Option[] { Model, Tokenizer, Device, Threads, DType }) command.Add(option);
    }

    /// <summary>
    /// The model options of a command that took <see cref="AddTo"/>, --model resolved to a local path (a repo id
    /// downloaded when the cache lacks it); --model is required unless the command has a <paramref name="defaultModel"/>.
    /// </summary>
    public static ModelOptions Bind(ParseResult parse, string? defaultModel = null) =>
        new(ModelPath(parse, defaultModel), parse.GetValue(Tokenizer), parse.GetValue(Device), parse.GetValue(Threads), parse.GetValue(DType));

    /// <summary>--model (or <paramref name="defaultModel"/>) as a local path; --model is required without a default.</summary>
    public static string ModelPath(ParseResult parse, string? defaultModel = null) =>
        ModelArgument.Resolve(parse.GetValue(Model) ?? defaultModel ?? parse.Required(Model));
}
