using System.Diagnostics;
using Xunit;

namespace FtpCluster.Compute.Tests.Fuzz;

/// <summary>What a fuzz target does with one mutant: load it and use it a little, or fail with an allowed exception.</summary>
/// <param name="Name">The format, as messages and the replay file name it.</param>
/// <param name="Valid">The valid input every mutant starts from.</param>
/// <param name="Mutate">Makes a mutant of <see cref="Valid"/> from the random source given.</param>
/// <param name="LoadAndUse">Loads the mutant and exercises what loaded.</param>
/// <param name="Allowed">The exception types that mean "refused, with a reason"; anything else fails the test.</param>
/// <param name="MaxAllocatedBytes">
/// The most one mutant may make the loading thread allocate, plus <see cref="FuzzRunner.AllocatedBytesPerInputByte"/>
/// for each byte of the mutant (a reader may hold its input a few times over while parsing it).
/// </param>
internal sealed record FuzzTarget(
    string Name,
    byte[] Valid,
    Func<byte[], Random, byte[]> Mutate,
    Action<byte[]> LoadAndUse,
    Type[] Allowed,
    long MaxAllocatedBytes);

/// <summary>
/// Runs mutants of a target for a time budget. Mutant k of a run is made from seed S + k alone, so a run
/// is deterministic per seed and any mutant replays by starting there:
/// FTPCLUSTER_FUZZ_SEED=S+k. FTPCLUSTER_FUZZ_SECONDS lengthens the budget (default 2 s per format).
/// A mutant that throws anything but an allowed type, runs past <see cref="PerInputTimeout"/> or allocates
/// past the target's bound fails the test with its seed, and its bytes are kept in a file the message names.
/// </summary>
internal static class FuzzRunner
{
    public const int DefaultSeed = 20240601;
    public static readonly TimeSpan DefaultBudget = TimeSpan.FromSeconds(2);

    /// <summary>The longest one mutant may take before it counts as a hang (real loads take milliseconds).</summary>
    public static readonly TimeSpan PerInputTimeout = TimeSpan.FromSeconds(5);

    /// <summary>What a mutant may allocate per byte of itself, beyond its target's fixed bound.</summary>
    public const long AllocatedBytesPerInputByte = 64;

    public static int StartSeed =>
        int.TryParse(Environment.GetEnvironmentVariable("FTPCLUSTER_FUZZ_SEED"), out int seed) ? seed : DefaultSeed;

    public static TimeSpan Budget =>
        double.TryParse(Environment.GetEnvironmentVariable("FTPCLUSTER_FUZZ_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : DefaultBudget;

    /// <summary>Runs the target; returns how many mutants ran (at least the valid input and one mutant).</summary>
    public static int Run(FuzzTarget target)
    {
        // The valid input must load, or the mutants test nothing.
        target.LoadAndUse(target.Valid);

        var state = new RunState();
        var worker = new Thread(() => Work(target, state), 16 << 20) { IsBackground = true, Name = $"fuzz {target.Name}" };
        worker.Start();
        while (!worker.Join(50))
        {
            var (seed, startedAt) = state.Current;
            if (startedAt != 0 && Stopwatch.GetElapsedTime(startedAt) > PerInputTimeout)
            {
                state.Stop = true;
                Assert.Fail($"{target.Name}: mutant of seed {seed} ran longer than {PerInputTimeout.TotalSeconds} s (a hang); " +
                    $"its bytes: {Keep(target, seed)}; replay: FTPCLUSTER_FUZZ_SEED={seed}");
            }
        }
        if (state.Failure is { } failure)
            Assert.Fail(failure);
        Assert.True(state.Mutants > 0, $"{target.Name}: no mutant ran within {Budget.TotalSeconds} s");
        return state.Mutants;
    }

    private static void Work(FuzzTarget target, RunState state)
    {
        var clock = Stopwatch.StartNew();
        var budget = Budget;
        for (int seed = StartSeed; !state.Stop && (state.Mutants == 0 || clock.Elapsed < budget); seed++)
        {
            byte[] mutant = target.Mutate(target.Valid, new Random(seed));
            state.Current = (seed, Stopwatch.GetTimestamp());
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            Exception? thrown = null;
            try
            {
                target.LoadAndUse(mutant);
            }
            catch (Exception e)
            {
                thrown = e;
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            state.Current = (seed, 0);
            state.Mutants++;
            string? problem = thrown is not null && !target.Allowed.Contains(thrown.GetType())
                ? $"threw {thrown.GetType().Name}, not one of {string.Join(", ", target.Allowed.Select(t => t.Name))}: {thrown}"
                : allocated > target.MaxAllocatedBytes + AllocatedBytesPerInputByte * mutant.Length
                    ? $"allocated {allocated} bytes, past the bound of {target.MaxAllocatedBytes} + {AllocatedBytesPerInputByte} × {mutant.Length} input bytes"
                    : null;
            if (problem is not null)
            {
                state.Failure = $"{target.Name}: mutant of seed {seed} {problem}\nits bytes: {Keep(target, seed)}; replay: FTPCLUSTER_FUZZ_SEED={seed}";
                return;
            }
        }
    }

    /// <summary>Writes the failing mutant where a developer can pick it up for a regression test.</summary>
    private static string Keep(FuzzTarget target, int seed)
    {
        string path = Path.Combine(Path.GetTempPath(), $"ftpcluster-fuzz-{target.Name}-{seed}.bin");
        File.WriteAllBytes(path, target.Mutate(target.Valid, new Random(seed)));
        return path;
    }

    private sealed class RunState
    {
        private (int Seed, long StartedAt) _current;
        private readonly Lock _lock = new();

        /// <summary>The mutant running and when it started (0 between mutants).</summary>
        public (int Seed, long StartedAt) Current
        {
            get { lock (_lock) return _current; }
            set { lock (_lock) _current = value; }
        }

        public volatile bool Stop;
        public volatile string? Failure;
        public int Mutants;
    }
}
