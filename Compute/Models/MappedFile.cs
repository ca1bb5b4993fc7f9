using System.IO.MemoryMappedFiles;

namespace FtpCluster.Compute.Models;

/// <summary>
/// A read-only memory map of a whole file. Tensors point into it, so pages are read from disk
/// only when a tensor is touched: a stage that loads layers [a, b) never pages in the others.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _pointer = pointer;
        Length = length;
    }

    public string Path { get; }
    public long Length { get; }

    public static MappedFile Open(string path)
    {
        if (!System.IO.File.Exists(path))
            throw new ModelFormatException(path, null, "file not found");
        // Measured through an open stream: FileInfo.Length of a symbolic link is the link's own size, and the Hugging
        // Face cache links every snapshot file to its blob.
        long length;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            length = stream.Length;
        if (length == 0)
            return new MappedFile(path, null, null, null, 0);
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return new MappedFile(path, map, view, p + view.PointerOffset, length);
    }

    /// <summary>A pointer to <paramref name="offset"/>; the caller has checked the range against <see cref="Length"/>.</summary>
    public byte* At(long offset)
    {
        ObjectDisposedException.ThrowIf(_pointer == null && Length > 0, this);
        return _pointer + offset;
    }

    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset + length}) outside {Path} ({Length} bytes)");
        return new ReadOnlySpan<byte>(At(offset), length);
    }

    public void Dispose()
    {
        if (_view is not null && _pointer != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _pointer = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
