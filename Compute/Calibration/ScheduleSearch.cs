using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Numerics;

namespace FtpCluster.Compute.Calibration;

/// <summary>The genetic search's sizes. Each generation scores at most <see cref="Population"/> new schedules.</summary>
public sealed record SearchOptions
{
    public int Population { get; init; } = 16;
    public int Generations { get; init; } = 10;

    /// <summary>The best schedules carried unchanged into the next generation.</summary>
    public int Elites { get; init; } = 2;

    public ulong Seed { get; init; }

    public void Validate()
    {
        if (Population < 2) throw new ArgumentException($"a population needs at least 2 schedules, got {Population}");
        if (Generations < 0) throw new ArgumentException($"generations must be >= 0, got {Generations}");
        if (Elites < 1 || Elites >= Population) throw new ArgumentException($"elites must be in [1, population), got {Elites}");
    }
}

/// <summary>The best schedule found, its score, and how many distinct schedules were scored.</summary>
public sealed record SearchResult(SparsitySchedule Schedule, double Score, int Scored);

/// <summary>
/// A genetic search over per-block sparsities whose mean is fixed: FTP's sparsity scheduler. A schedule
/// is held as whole units of 1/<see cref="UnitsPerBlock"/> per block, and every schedule the search makes
/// has the same total, round(target · L · units), so its mean is the target exactly up to that rounding.
/// Under one-pass routing block 0 stays dense (the plan is made after it; see
/// <see cref="SparsitySchedule.Uniform(double, int, RoutingMode)"/>) and the other blocks share the target.
/// A block skips at most <see cref="MaxBlockSparsity"/>.
/// <para>
/// Each generation keeps the elites and fills the rest with children: two parents, each the better of two
/// drawn at random, are crossed block by block, the child is repaired to the total, then mutated by moving
/// sparsity from one block to another. Lower scores are better; ties go to the earlier schedule.
/// </para>
/// </summary>
public static class ScheduleSearch
{
    public const int UnitsPerBlock = 200;
    public const double MaxBlockSparsity = 0.9;

    private const int MaxUnits = (int)(MaxBlockSparsity * UnitsPerBlock);

    /// <summary>A mutation moves up to this many units (0.1 of sparsity) at a time.</summary>
    private const int MaxMove = UnitsPerBlock / 10;

    /// <param name="score">Lower is better; called once per distinct schedule.</param>
    /// <param name="starts">Schedules the first generation starts from (their mean is repaired to the target); the rest are their mutants.</param>
    /// <param name="progress">Called after each generation with its number and the best so far.</param>
    public static SearchResult Search(int layers, double target, RoutingMode routing, Func<SparsitySchedule, double> score,
        IReadOnlyList<SparsitySchedule> starts, SearchOptions options, Action<int, SearchResult>? progress = null)
    {
        options.Validate();
        if (starts.Count == 0) throw new ArgumentException("the search needs at least one schedule to start from", nameof(starts));
        var space = new Space(layers, target, routing);
        var random = new Xoshiro256StarStar(options.Seed);
        var scores = new Dictionary<string, double>(StringComparer.Ordinal);
        double Score(int[] units)
        {
            string key = string.Join(',', units);
            if (!scores.TryGetValue(key, out double value)) scores[key] = value = score(space.Schedule(units));
            return value;
        }

        var population = new List<int[]>();
        foreach (var start in starts)
            if (population.Count < options.Population) population.Add(space.Repair(space.Units(start), ref random));
        for (int i = 0; population.Count < options.Population; i++)
        {
            var mutant = (int[])population[i % starts.Count].Clone();
            for (int moves = 1 + (int)(random.NextUInt64() % 3); moves > 0; moves--) space.Mutate(mutant, ref random);
            population.Add(mutant);
        }

        var ranked = Rank(population, Score);
        for (int generation = 1; generation <= options.Generations; generation++)
        {
            var next = ranked.Take(options.Elites).ToList();
            while (next.Count < options.Population)
            {
                var child = space.Cross(Pick(ranked, ref random), Pick(ranked, ref random), ref random);
                space.Mutate(child, ref random);
                next.Add(child);
            }
            ranked = Rank(next, Score);
            progress?.Invoke(generation, new SearchResult(space.Schedule(ranked[0]), Score(ranked[0]), scores.Count));
        }
        return new SearchResult(space.Schedule(ranked[0]), Score(ranked[0]), scores.Count);
    }

    /// <summary>Best first; a stable sort, so equal scores keep their order.</summary>
    private static List<int[]> Rank(List<int[]> population, Func<int[], double> score) =>
        [.. population.Select(units => (units, score: score(units))).OrderBy(p => p.score).Select(p => p.units)];

    /// <summary>A binary tournament: the better (earlier in rank) of two drawn at random.</summary>
    private static int[] Pick(List<int[]> ranked, ref Xoshiro256StarStar random)
    {
        int a = (int)(random.NextUInt64() % (ulong)ranked.Count), b = (int)(random.NextUInt64() % (ulong)ranked.Count);
        return ranked[Math.Min(a, b)];
    }

    /// <summary>Which blocks are free, the bounds, and the fixed total of units.</summary>
    private sealed class Space
    {
        private readonly int _layers;
        private readonly int[] _free;
        private readonly int _total;

        public Space(int layers, double target, RoutingMode routing)
        {
            if (!(target >= 0 && target < 1)) throw new ArgumentException($"the target sparsity must be in [0, 1), got {target}");
            _layers = layers;
            _free = [.. Enumerable.Range(routing == RoutingMode.OnePass ? 1 : 0, routing == RoutingMode.OnePass ? layers - 1 : layers)];
            _total = (int)Math.Round(target * layers * UnitsPerBlock, MidpointRounding.AwayFromZero);
            if (_total > _free.Length * MaxUnits)
                throw new ArgumentException($"a mean sparsity of {target} over {layers} blocks needs more than {MaxBlockSparsity} at some block"
                    + (routing == RoutingMode.OnePass ? " (under one-pass routing block 0 is dense)" : ""));
        }

        public SparsitySchedule Schedule(int[] units) => new(units.Select(u => (double)u / UnitsPerBlock));

        /// <summary>A schedule's s_b rounded to units and clamped to the bounds; fixed blocks 0. Not yet at the total.</summary>
        public int[] Units(SparsitySchedule schedule)
        {
            schedule.RequireBlocks(_layers);
            var units = new int[_layers];
            foreach (int b in _free) units[b] = Math.Clamp((int)Math.Round(schedule[b] * UnitsPerBlock, MidpointRounding.AwayFromZero), 0, MaxUnits);
            return units;
        }

        /// <summary>Adds or removes single units at random free blocks that have room until the total is met.</summary>
        public int[] Repair(int[] units, ref Xoshiro256StarStar random)
        {
            int sum = units.Sum();
            while (sum != _total)
            {
                int b = _free[random.NextUInt64() % (ulong)_free.Length];
                if (sum < _total && units[b] < MaxUnits) { units[b]++; sum++; }
                else if (sum > _total && units[b] > 0) { units[b]--; sum--; }
            }
            return units;
        }

        /// <summary>Each free block from either parent, then repaired to the total.</summary>
        public int[] Cross(int[] a, int[] b, ref Xoshiro256StarStar random)
        {
            var child = (int[])a.Clone();
            foreach (int block in _free)
                if ((random.NextUInt64() & 1) == 1) child[block] = b[block];
            return Repair(child, ref random);
        }

        /// <summary>Moves between 1 and <see cref="MaxMove"/> units from one free block to another, within the bounds: the total is unchanged.</summary>
        public void Mutate(int[] units, ref Xoshiro256StarStar random)
        {
            if (_free.Length < 2) return;
            int i = (int)(random.NextUInt64() % (ulong)_free.Length), j = (int)(random.NextUInt64() % (ulong)(_free.Length - 1));
            if (j >= i) j++;
            int from = _free[i], to = _free[j];
            int move = Math.Min(1 + (int)(random.NextUInt64() % MaxMove), Math.Min(units[from], MaxUnits - units[to]));
            units[from] -= move;
            units[to] += move;
        }
    }
}
