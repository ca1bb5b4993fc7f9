using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Files;

namespace FtpCluster.Grains.Batches;

/// <summary>
/// The output and error files a batch writes when it ends, one JSON line each: the error file goes on after the lines
/// refused before running, and a file that an earlier try committed already is counted, not written again. Each is
/// committed (purpose <c>batch_output</c>) only when it has lines, as OpenAI leaves the id of an empty one null.
/// </summary>
internal sealed class BatchFiles
{
    private readonly string _batchId;
    private readonly StoredFileWriter _output;
    private readonly StoredFileWriter _errors;
    private readonly bool _outputCommitted;
    private readonly bool _errorsCommitted;

    private BatchFiles(string batchId, StoredFileWriter output, StoredFileWriter errors, bool outputCommitted, bool errorsCommitted)
    {
        _batchId = batchId;
        (_output, _errors) = (output, errors);
        (_outputCommitted, _errorsCommitted) = (outputCommitted, errorsCommitted);
    }

    /// <summary>Answers written to the output file.</summary>
    public int Successes { get; private set; }

    /// <summary>Failures written to the error file after those refused before running.</summary>
    public int Failures { get; private set; }

    public static async Task<BatchFiles> Open(IGrainFactory grains, string batchId, BatchRecord record)
    {
        bool outputCommitted = await grains.GetGrain<IFileGrain>(record.OutputFileId).Info() is not null;
        bool errorsCommitted = await grains.GetGrain<IFileGrain>(record.ErrorFileId).Info() is not null;
        return new BatchFiles(batchId, new StoredFileWriter(grains, record.OutputFileId), new StoredFileWriter(grains, record.ErrorFileId, record.ErrorsBeforeRunning),
            outputCommitted, errorsCommitted);
    }

    public async Task Success(BatchOutputLine line)
    {
        Successes++;
        if (!_outputCommitted) await _output.WriteLine(line.Json);
    }

    public async Task Failure(BatchOutputLine line)
    {
        Failures++;
        if (!_errorsCommitted) await _errors.WriteLine(line.Json);
    }

    /// <summary>Commits the files that have lines; whether each exists.</summary>
    public async Task<(bool Output, bool Errors)> Commit() =>
        (await Commit(_output, _outputCommitted, "output"), await Commit(_errors, _errorsCommitted, "error"));

    private async Task<bool> Commit(StoredFileWriter file, bool committed, string kind)
    {
        if (committed) return true;
        if (file.Bytes == 0) return false;
        await file.Commit($"{_batchId}_{kind}.jsonl", FileLimits.BatchOutputPurpose);
        return true;
    }
}
