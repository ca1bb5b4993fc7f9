using System.Net;
using System.Text;

namespace FtpCluster.Cluster.Tests;

/// <summary>A span as an OTLP exporter sent it, with the service name of the resource that sent it.</summary>
/// <param name="Kind">OTLP's span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.</param>
/// <param name="ParentSpanId">Hex; empty for a root span.</param>
public sealed record ReceivedSpan(
    string Service, string TraceId, string SpanId, string ParentSpanId, string Name, int Kind, IReadOnlyDictionary<string, object?> Attributes)
{
    public const int ServerKind = 2;

    public override string ToString() =>
        $"{Service} {Name} kind={Kind} trace={TraceId} span={SpanId} parent={(ParentSpanId.Length == 0 ? "-" : ParentSpanId)}";
}

/// <summary>
/// An OTLP/HTTP receiver on a free loopback port: takes what exporters POST (protobuf), keeps the spans of
/// <c>/v1/traces</c>, and answers every export (metrics and logs too) with an empty success.
/// </summary>
public sealed class OtlpTraceReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<ReceivedSpan> _spans = [];
    private readonly Task _serving;

    public OtlpTraceReceiver()
    {
        int port = FreePort();
        Endpoint = new Uri($"http://127.0.0.1:{port}");
        _listener.Prefixes.Add($"{Endpoint}/");
        _listener.Start();
        _serving = ServeAsync();
    }

    private static int FreePort()
    {
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>What <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> names (the exporter appends <c>/v1/traces</c> and the others).</summary>
    public Uri Endpoint { get; }

    public IReadOnlyList<ReceivedSpan> Spans
    {
        get
        {
            lock (_spans) return [.. _spans];
        }
    }

    /// <summary>Polls the spans received until <paramref name="find"/> finds something in them, or fails at the deadline with what it had.</summary>
    public async Task<T> WaitForAsync<T>(Func<IReadOnlyList<ReceivedSpan>, T?> find, TimeSpan timeout, Func<IReadOnlyList<ReceivedSpan>, string> explain)
        where T : class
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var spans = Spans;
            if (find(spans) is { } found) return found;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"not found within {timeout.TotalSeconds} s in {spans.Count} spans received:{Environment.NewLine}{explain(spans)}");
            await Task.Delay(100);
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            try
            {
                var context = await _listener.GetContextAsync();
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                if (context.Request.Url?.AbsolutePath == "/v1/traces")
                {
                    var received = ReadTraces(body.ToArray());
                    lock (_spans) _spans.AddRange(received);
                }
                // An empty Export*ServiceResponse: everything accepted.
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException or IOException
                && !_listener.IsListening)
            {
                return; // stopped, between requests or in the middle of one (an exporter was still sending)
            }
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _serving.Wait(TimeSpan.FromSeconds(5));
    }

    // Field numbers of opentelemetry-proto: collector/trace/v1 ExportTraceServiceRequest, trace/v1, resource/v1, common/v1.

    /// <summary>ExportTraceServiceRequest: resource_spans = 1.</summary>
    private static List<ReceivedSpan> ReadTraces(byte[] request)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var resourceSpans in Protobuf.Read(request).Where(f => f.Number == 1))
        {
            // ResourceSpans: resource = 1 (Resource: attributes = 1), scope_spans = 2 (ScopeSpans: spans = 2).
            var fields = Protobuf.Read(resourceSpans.Bytes);
            var resource = fields.Where(f => f.Number == 1).SelectMany(r => Attributes(r.Bytes)).ToDictionary(a => a.Key, a => a.Value);
            string service = resource.GetValueOrDefault("service.name") as string ?? "";
            foreach (var scopeSpans in fields.Where(f => f.Number == 2))
                foreach (var span in Protobuf.Read(scopeSpans.Bytes).Where(f => f.Number == 2))
                    spans.Add(ReadSpan(service, span.Bytes));
        }
        return spans;
    }

    /// <summary>Span: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6, attributes = 9.</summary>
    private static ReceivedSpan ReadSpan(string service, ReadOnlyMemory<byte> span)
    {
        var fields = Protobuf.Read(span);
        string Hex(int number) => fields.FirstOrDefault(f => f.Number == number) is { } f ? Convert.ToHexStringLower(f.Bytes.Span) : "";
        return new ReceivedSpan(service, Hex(1), Hex(2), Hex(4),
            fields.FirstOrDefault(f => f.Number == 5) is { } name ? Encoding.UTF8.GetString(name.Bytes.Span) : "",
            (int)(fields.FirstOrDefault(f => f.Number == 6)?.Varint ?? 0),
            fields.Where(f => f.Number == 9).Select(f => Attribute(f.Bytes)).ToDictionary(a => a.Key, a => a.Value));
    }

    /// <summary>The attributes (field 1, KeyValue) of a Resource.</summary>
    private static IEnumerable<KeyValuePair<string, object?>> Attributes(ReadOnlyMemory<byte> resource) =>
        Protobuf.Read(resource).Where(f => f.Number == 1).Select(f => Attribute(f.Bytes));

    /// <summary>KeyValue: key = 1, value = 2 (AnyValue: string 1, bool 2, int 3, double 4; others are not read).</summary>
    private static KeyValuePair<string, object?> Attribute(ReadOnlyMemory<byte> keyValue)
    {
        var fields = Protobuf.Read(keyValue);
        string key = fields.FirstOrDefault(f => f.Number == 1) is { } k ? Encoding.UTF8.GetString(k.Bytes.Span) : "";
        object? value = null;
        if (fields.FirstOrDefault(f => f.Number == 2) is { } any && Protobuf.Read(any.Bytes).FirstOrDefault() is { } v)
            value = v.Number switch
            {
                1 => Encoding.UTF8.GetString(v.Bytes.Span),
                2 => v.Varint != 0,
                3 => (long)v.Varint,
                4 => BitConverter.UInt64BitsToDouble(v.Varint),
                _ => null,
            };
        return new(key, value);
    }
}

/// <summary>
/// The protobuf wire format, as far as reading OTLP takes: a message's fields in order, each a varint (or a fixed
/// 64/32-bit value, in <see cref="Field.Varint"/> too) or length-delimited bytes.
/// </summary>
internal static class Protobuf
{
    internal sealed record Field(int Number, ulong Varint, ReadOnlyMemory<byte> Bytes);

    public static List<Field> Read(ReadOnlyMemory<byte> message)
    {
        var fields = new List<Field>();
        var span = message.Span;
        int at = 0;
        while (at < span.Length)
        {
            ulong tag = ReadVarint(span, ref at);
            int number = (int)(tag >> 3), wireType = (int)(tag & 7);
            switch (wireType)
            {
                case 0:
                    fields.Add(new Field(number, ReadVarint(span, ref at), default));
                    break;
                case 1:
                    fields.Add(new Field(number, BitConverter.ToUInt64(span.Slice(at, 8)), default));
                    at += 8;
                    break;
                case 2:
                    int length = checked((int)ReadVarint(span, ref at));
                    fields.Add(new Field(number, 0, message.Slice(at, length)));
                    at += length;
                    break;
                case 5:
                    fields.Add(new Field(number, BitConverter.ToUInt32(span.Slice(at, 4)), default));
                    at += 4;
                    break;
                default:
                    throw new InvalidDataException($"protobuf field {number} at byte {at} has wire type {wireType}, which OTLP does not use");
            }
        }
        return fields;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> span, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = span[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException($"a varint ending at byte {at} is longer than 10 bytes");
    }
}
