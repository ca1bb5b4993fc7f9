using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace FtpCluster.Compute.Hub;

/// <summary>
/// A model named the way the Hugging Face Hub names it: <c>owner/name</c>, optionally <c>@revision</c> (a branch, a tag
/// or a 40-hex commit; default <c>main</c>) and <c>:file</c> (one file of the repository, as a GGUF repository's model
/// is one of its files). A <c>--model</c> argument is one of these when it is shaped like one and is no local path.
/// </summary>
public sealed partial record HubModelId(string Owner, string Name, string Revision, string? File)
{
    public const string DefaultRevision = "main";

    /// <summary><c>owner/name</c>, as the Hub's URLs and huggingface_hub name the repository.</summary>
    public string RepoId => $"{Owner}/{Name}";

    /// <summary>Whether <see cref="Revision"/> is a full commit hash, which needs no ref to be looked up.</summary>
    public bool RevisionIsCommit => IsCommitHash(Revision);

    public static bool IsCommitHash(string text) => CommitPattern().IsMatch(text);

    /// <summary>
    /// The repo id a <c>--model</c> argument names, or false when it is a local path: a file or folder that exists,
    /// anything starting with '.', '/' or '~', and anything not shaped <c>owner/name[@revision][:file]</c> by the Hub's
    /// rules (letters, digits, '-', '_', '.'; no "--" or ".."; neither part starting or ending with '-' or '.').
    /// </summary>
    public static bool TryParse(string argument, [NotNullWhen(true)] out HubModelId? id)
    {
        id = null;
        if (argument.Length == 0 || argument[0] is '.' or '/' or '~' || System.IO.File.Exists(argument) || Directory.Exists(argument))
            return false;
        var match = IdPattern().Match(argument);
        if (!match.Success)
            return false;
        string owner = match.Groups["owner"].Value, name = match.Groups["name"].Value;
        string revision = match.Groups["revision"].Success ? match.Groups["revision"].Value : DefaultRevision;
        string? file = match.Groups["file"].Success ? match.Groups["file"].Value : null;
        if (!IsRepoPart(owner) || !IsRepoPart(name) || !IsRevision(revision) || file is not null && !IsRepoFile(file))
            return false;
        id = new HubModelId(owner, name, revision, file);
        return true;
    }

    public override string ToString() =>
        RepoId + (Revision == DefaultRevision ? "" : "@" + Revision) + (File is null ? "" : ":" + File);

    private static bool IsRepoPart(string part) =>
        part.Length <= 96 && !part.Contains("--", StringComparison.Ordinal) && !part.Contains("..", StringComparison.Ordinal)
        && part[0] is not ('-' or '.') && part[^1] is not ('-' or '.');

    // Git's ref rules, as far as a cache path and a URL need them: no "..", no empty component, no ".lock" ending.
    private static bool IsRevision(string revision) =>
        !revision.Contains("..", StringComparison.Ordinal) && !revision.Split('/').Contains("")
        && !revision.EndsWith(".lock", StringComparison.Ordinal);

    // A path inside the repository that stays inside the snapshot folder.
    private static bool IsRepoFile(string file) =>
        file.Split('/').All(segment => segment.Length > 0 && segment != "." && segment != "..");

    [GeneratedRegex("^(?<owner>[A-Za-z0-9._-]+)/(?<name>[A-Za-z0-9._-]+)(@(?<revision>[A-Za-z0-9._/-]+))?(:(?<file>[A-Za-z0-9._/ -]+))?$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
