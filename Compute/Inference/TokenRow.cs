namespace FtpCluster.Compute.Inference;

/// <summary>One row of a batch: a token of some sequence (its KV cache) at its original position.</summary>
public readonly record struct TokenRow(KvCache Cache, int Position);
