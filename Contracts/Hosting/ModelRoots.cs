using FtpCluster.Compute.Hub;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The folders a silo may load models, tokenizers and router artifacts from (<see cref="FtpClusterSiloOptions.ModelRoots"/>,
/// else the Hugging Face cache). A path a deployment names is resolved as the system would open it, every symbolic link
/// and '..' followed, without opening the file; one that ends outside every root is refused before anything reads it.
/// </summary>
public sealed class ModelRoots
{
    /// <summary>Symbolic links one path may pass through before it counts as a loop (Linux' own limit).</summary>
    private const int MaxLinkHops = 40;

    private static readonly StringComparison PathComparison =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <param name="folders">The roots as configured; each is resolved like the paths checked against it.</param>
    /// <exception cref="ArgumentException">No folder, or an empty one.</exception>
    public ModelRoots(IEnumerable<string> folders)
    {
        Folders = [.. folders.Select(f => string.IsNullOrWhiteSpace(f)
            ? throw new ArgumentException("a model root (--model-root) must not be empty")
            : Resolve(f))];
        if (Folders.Count == 0) throw new ArgumentException("a silo needs at least one model root (--model-root)");
    }

    /// <summary>The roots, resolved (full paths, links followed).</summary>
    public IReadOnlyList<string> Folders { get; }

    /// <summary>
    /// The roots a silo with <paramref name="options"/> loads from: its configured ones, else the Hugging Face cache and the
    /// folders of the local files it was started to serve (<see cref="FtpClusterSiloOptions.Serve"/>, its tokenizer and routers).
    /// </summary>
    public static ModelRoots For(FtpClusterSiloOptions options)
    {
        if (options.ModelRoots.Count > 0) return new(options.ModelRoots);
        IEnumerable<string?> served = [.. options.ServedModels().Select(s => s.Model), options.ServeTokenizer, .. options.ServeRouters];
        // A served repo id is no local path: it resolves into the cache, which is a root already.
        var folders = served.OfType<string>().Where(p => File.Exists(p) || Directory.Exists(p))
            .Select(p => Directory.Exists(p) ? Path.GetFullPath(p) : Path.GetDirectoryName(Path.GetFullPath(p))!);
        return new([HubSettings.FromEnvironment().CacheRoot, .. folders]);
    }

    /// <summary>Whether <paramref name="path"/>, resolved, lies inside one of the roots.</summary>
    public bool Contains(string path) => IsInside(Resolve(path));

    /// <summary>Refuses <paramref name="path"/> unless it resolves to somewhere inside one of the roots.</summary>
    /// <param name="what">What the path is, for the message: "model", "tokenizer", "router artifact".</param>
    /// <exception cref="PathOutsideModelRootsException">It does not; the message names the path and the roots.</exception>
    public void Check(string path, string what)
    {
        string resolved = Resolve(path);
        if (IsInside(resolved)) return;
        string resolvedNote = string.Equals(resolved, Path.GetFullPath(path), PathComparison) ? "" : $" (it resolves to '{resolved}')";
        throw new PathOutsideModelRootsException(
            $"{what} '{path}'{resolvedNote} is outside the model roots ({string.Join(", ", Folders)}): " +
            "a silo loads files only from under its --model-root folders");
    }

    private bool IsInside(string resolved) => Folders.Any(root =>
        string.Equals(resolved, root, PathComparison)
        || resolved.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, PathComparison));

    /// <summary>
    /// The full path <paramref name="path"/> names once every symbolic link on the way is followed, component by
    /// component, with '..' taken after the link before it (as the system resolves it, not as text). Reads links only:
    /// no file is opened. Components that do not exist are kept as they are.
    /// </summary>
    /// <exception cref="IOException">The links loop.</exception>
    public static string Resolve(string path)
    {
        string full = Path.IsPathFullyQualified(path) ? path : Path.Combine(Directory.GetCurrentDirectory(), path);
        string root = Path.GetPathRoot(full)!;
        var pending = new Stack<string>(Components(full[root.Length..]).Reverse());
        string current = root;
        int hops = 0;
        while (pending.TryPop(out string? part))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? root;
                continue;
            }
            string next = Path.Combine(current, part);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                current = next;
                continue;
            }
            if (++hops > MaxLinkHops)
                throw new IOException($"'{path}' passes through more than {MaxLinkHops} symbolic links (a loop?)");
            // The link's target replaces it: an absolute one starts over from its root, a relative one from the link's folder.
            if (Path.IsPathRooted(target))
            {
                root = Path.GetPathRoot(target)!;
                current = root;
                target = target[root.Length..];
            }
            foreach (string component in Components(target).Reverse()) pending.Push(component);
        }
        return current;
    }

    private static IEnumerable<string> Components(string relative) =>
        relative.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>A deployment named a file outside the silo's model roots (<see cref="ModelRoots"/>); nothing was opened.</summary>
[GenerateSerializer]
[Alias("FtpCluster.PathOutsideModelRootsException")]
public sealed class PathOutsideModelRootsException : Exception
{
    public PathOutsideModelRootsException()
    {
    }

    public PathOutsideModelRootsException(string message)
        : base(message)
    {
    }

    public PathOutsideModelRootsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
