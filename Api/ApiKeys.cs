using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace FtpCluster.Api;

/// <summary>
/// The API keys in <see cref="HttpApiOptions.ApiKeyFile"/>, one a line (blank lines and '#' comments ignored), read
/// again when the file changes (its time or length; looked at once a second at most), so keys are added and revoked
/// without a restart. A key is checked against every key by SHA-256 digest with a constant-time comparison, so the
/// time an answer takes tells nothing of how much of a key was right.
/// </summary>
public sealed class ApiKeys
{
    private static readonly TimeSpan LookAgainAfter = TimeSpan.FromSeconds(1);

    private readonly string? _path;
    private readonly Lock _reload = new();
    private byte[][] _digests = [];
    private (DateTime WriteTime, long Length) _version;
    private DateTime _lookedAt;

    /// <exception cref="InvalidOperationException">The file cannot be read, or has no key.</exception>
    public ApiKeys(string? path)
    {
        _path = path;
        if (path is null) return;
        Load();
        if (_digests.Length == 0) throw new InvalidOperationException($"the API key file {path} has no key (one key a line)");
    }

    /// <summary>Whether requests need a key.</summary>
    public bool Required => _path is not null;

    /// <summary>Whether <paramref name="key"/> is one of the keys (false for every key when none are required).</summary>
    public bool IsValid(string key)
    {
        byte[] digest = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        bool found = false;
        foreach (byte[] known in Current())
            found |= CryptographicOperations.FixedTimeEquals(digest, known);
        return found;
    }

    /// <summary>The bearer token of a request, or null when it has none.</summary>
    public static string? BearerToken(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        const string scheme = "Bearer ";
        return header is not null && header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
    }

    private byte[][] Current()
    {
        if (_path is null) return [];
        lock (_reload)
        {
            if (DateTime.UtcNow - _lookedAt >= LookAgainAfter)
            {
                try
                {
                    Load();
                }
                catch (InvalidOperationException)
                {
                    // A file being rewritten may be unreadable for a moment: the keys read last stay until it is back.
                }
            }
            return _digests;
        }
    }

    private void Load()
    {
        _lookedAt = DateTime.UtcNow;
        try
        {
            var info = new FileInfo(_path!);
            if (!info.Exists) throw new InvalidOperationException($"the API key file {_path} does not exist");
            var version = (info.LastWriteTimeUtc, info.Length);
            if (version == _version && _digests.Length > 0) return;
            _digests = [.. File.ReadAllLines(_path!)
                .Select(l => l.Trim())
                .Where(l => l.Length > 0 && !l.StartsWith('#'))
                .Select(l => SHA256.HashData(Encoding.UTF8.GetBytes(l)))];
            _version = version;
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"the API key file {_path} cannot be read: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new InvalidOperationException($"the API key file {_path} cannot be read: {e.Message}", e);
        }
    }
}
