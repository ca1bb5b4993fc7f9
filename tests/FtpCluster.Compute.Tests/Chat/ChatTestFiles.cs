using System.Text.Json;

namespace FtpCluster.Compute.Tests.Chat;

/// <summary>
/// The chat-template test inputs and expected renderings, read from the source tree (Chat/Templates and
/// Chat/Renderings beside this file, found by walking up to the folder holding FtpCluster.sln). The renderings
/// are written by scripts/render-chat-templates.py with Python's jinja2, as transformers renders templates.
/// </summary>
internal static class ChatTestFiles
{
    public static string Folder { get; } = Locate();

    public static string TemplatesFolder => Path.Combine(Folder, "Templates");

    public static string RenderingsFolder => Path.Combine(Folder, "Renderings");

    public static JsonElement ReadJson(params string[] parts)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine([Folder, .. parts])));
        return document.RootElement.Clone();
    }

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, SharedModels.SolutionFile)))
                return Path.Combine(dir.FullName, "tests", "FtpCluster.Compute.Tests", "Chat");
        }
        throw new InvalidOperationException($"no {SharedModels.SolutionFile} above {AppContext.BaseDirectory}: the chat test files are read from the source tree");
    }
}
