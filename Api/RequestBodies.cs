using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace FtpCluster.Api;

/// <summary>Request bodies read whole, within a bound: past it, a 413 before more is read.</summary>
internal static class RequestBodies
{
    public static async Task<byte[]> ReadJson(HttpContext http, long maxBytes)
    {
        if (http.Request.ContentLength > maxBytes)
            throw ApiException.TooLarge(null, $"the request body has {http.Request.ContentLength} bytes, more than the {maxBytes} this endpoint takes");
        // Kestrel refuses (413) a body without a length that runs past the bound while it is read.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = maxBytes;
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, http.RequestAborted);
        if (buffer.Length == 0) throw ApiException.BadRequest(null, null, "the request has no body: expected a JSON object");
        return buffer.ToArray();
    }
}
