namespace FtpCluster.Compute.Devices;

/// <summary>
/// Memory one <see cref="IComputeDevice"/> allocated (<see cref="IComputeDevice.Allocate{T}"/>): host
/// memory for the CPU backend, device memory for ILGPU. Only its device reads or writes it; the host
/// sees its contents through <see cref="IComputeDevice.Upload{T}"/> and <see cref="IComputeDevice.Download{T}"/>.
/// </summary>
public abstract class DeviceBuffer<T> : IDisposable
    where T : unmanaged
{
    protected DeviceBuffer(IComputeDevice owner, long length)
    {
        Owner = owner;
        Length = length;
    }

    /// <summary>The device that allocated it, and the only one that may use it.</summary>
    public IComputeDevice Owner { get; }

    /// <summary>Elements of <typeparamref name="T"/>.</summary>
    public long Length { get; }

    public long Bytes => Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <summary>Every element; the buffer must hold at most int.MaxValue of them.</summary>
    public DeviceSpan<T> All => new(this, 0, checked((int)Length));

    /// <summary>The first <paramref name="length"/> elements.</summary>
    public DeviceSpan<T> Span(int length) => new(this, 0, length);

    /// <summary>The same memory read as <typeparamref name="TOther"/>; the view owns nothing and must not outlive this buffer.</summary>
    public abstract DeviceBuffer<TOther> Reinterpret<TOther>()
        where TOther : unmanaged;

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the memory; a view made by <see cref="Reinterpret{TOther}"/> frees nothing.</summary>
    protected abstract void Release();
}

/// <summary>
/// A range of a <see cref="DeviceBuffer{T}"/>: what the operations of <see cref="IComputeDevice"/> take, the
/// way the CPU's operations take spans. Slicing is checked; it copies nothing.
/// </summary>
public readonly struct DeviceSpan<T> : IEquatable<DeviceSpan<T>>
    where T : unmanaged
{
    public DeviceSpan(DeviceBuffer<T> buffer, long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"[{offset}, {offset + length}) is not inside a device buffer of {buffer.Length} elements");
        Buffer = buffer;
        Offset = offset;
        Length = length;
    }

    public DeviceBuffer<T> Buffer { get; }
    public long Offset { get; }
    public int Length { get; }
    public bool IsEmpty => Length == 0;

    public DeviceSpan<T> Slice(int start, int length)
    {
        if (start < 0 || length < 0 || (long)start + length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"[{start}, {(long)start + length}) is not inside a device span of {Length} elements");
        return new DeviceSpan<T>(Buffer, Offset + start, length);
    }

    public DeviceSpan<T> Slice(int start) => Slice(start, Length - start);

    /// <summary>The same bytes as <typeparamref name="TOther"/> elements; the range must start and end on whole elements of both types.</summary>
    public DeviceSpan<TOther> Cast<TOther>()
        where TOther : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), otherSize = System.Runtime.CompilerServices.Unsafe.SizeOf<TOther>();
        long startByte = Offset * size, bytes = (long)Length * size;
        if (startByte % otherSize != 0 || bytes % otherSize != 0)
            throw new ArgumentException($"{bytes} bytes at byte {startByte} are not whole {typeof(TOther).Name} elements");
        return new DeviceSpan<TOther>(Buffer.Reinterpret<TOther>(), startByte / otherSize, (int)(bytes / otherSize));
    }

    public bool Equals(DeviceSpan<T> other) => ReferenceEquals(Buffer, other.Buffer) && Offset == other.Offset && Length == other.Length;

    public override bool Equals(object? obj) => obj is DeviceSpan<T> other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Buffer, Offset, Length);

    public static bool operator ==(DeviceSpan<T> left, DeviceSpan<T> right) => left.Equals(right);

    public static bool operator !=(DeviceSpan<T> left, DeviceSpan<T> right) => !left.Equals(right);
}

/// <summary>Copies between host and device memory a device has made through <see cref="IComputeDevice.Upload{T}"/> and <see cref="IComputeDevice.Download{T}"/>.</summary>
public readonly record struct DeviceTransfers(long Uploads, long Downloads, long UploadedBytes, long DownloadedBytes)
{
    public static DeviceTransfers operator -(DeviceTransfers after, DeviceTransfers before) => new(
        after.Uploads - before.Uploads, after.Downloads - before.Downloads,
        after.UploadedBytes - before.UploadedBytes, after.DownloadedBytes - before.DownloadedBytes);

    public DeviceTransfers Subtract(DeviceTransfers before) => this - before;
}

/// <summary>Thread-safe counters behind <see cref="IComputeDevice.Transfers"/>.</summary>
internal sealed class TransferCounter
{
    private long _uploads, _downloads, _uploadedBytes, _downloadedBytes;

    public DeviceTransfers Current => new(
        Interlocked.Read(ref _uploads), Interlocked.Read(ref _downloads),
        Interlocked.Read(ref _uploadedBytes), Interlocked.Read(ref _downloadedBytes));

    public void Upload(long bytes)
    {
        Interlocked.Increment(ref _uploads);
        Interlocked.Add(ref _uploadedBytes, bytes);
    }

    public void Download(long bytes)
    {
        Interlocked.Increment(ref _downloads);
        Interlocked.Add(ref _downloadedBytes, bytes);
    }
}
