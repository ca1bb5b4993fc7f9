namespace FtpCluster.Grains.Wire;

/// <summary>
/// Message size limits of an FtpCluster, in one place. Orleans answers a message whose body is over its
/// <c>MaxMessageBodySize</c> by closing the connection, failing every call in flight on it; so stages check
/// their packets (and the last stage its logits) against a deployment's own, smaller limit before they
/// send, and that limit must leave room under Orleans' for the rest of the message.
/// </summary>
public static class MessageLimits
{
    /// <summary>
    /// Orleans' <c>MaxMessageBodySize</c>, set on every silo and client: Orleans 10's default (100 MiB), stated
    /// here so that the deployment limits below are checked against the number the cluster really uses.
    /// </summary>
    public const int OrleansMaxMessageBodyBytes = 100 << 20;

    /// <summary>
    /// Room a step's message needs beside its packet: the step's fields and one sample request (a few
    /// dozen bytes) per row that draws a token.
    /// </summary>
    public const int EnvelopeBytes = 4 << 20;

    /// <summary>The largest packet limit a deployment may ask for: what still fits Orleans' limit with its envelope.</summary>
    public const int MaxPacketBytes = OrleansMaxMessageBodyBytes - EnvelopeBytes;

    /// <summary>
    /// A deployment's packet limit unless it asks for another: 32 MiB, four times the 8 MiB packets the
    /// transport benchmark measures; a packet that large already takes tens of milliseconds on a boundary.
    /// </summary>
    public const int DefaultPacketBytes = 32 << 20;
}
