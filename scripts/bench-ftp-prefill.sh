#!/usr/bin/env bash
# Dense against FTP-pruned prefill on the smollm2-135m synthetic preset (f32): writes the model and a
# static-router artifact per sparsity, then runs `bench model --router` (dense and pruned alternating,
# medians of 5 reps) for each prompt length and sparsity, several rounds, and prints the medians.
# Usage: scripts/bench-ftp-prefill.sh [rounds=3] [prompt tokens="512 1024"] [sparsities="0.2 0.3 0.4"]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
prompts=${2:-"512 1024"}
sparsities=${3:-"0.2 0.3 0.4"}

work=$(mktemp -d /tmp/ftp-prefill-XXXXXX)
trap 'rm -rf "$work"' EXIT
dotnet build -c Release Client/FtpCluster.Client.csproj >/dev/null
ours="dotnet Client/bin/Release/net10.0/ftpcluster.dll"
$ours models synth --preset smollm2-135m --seed 1 --out "$work/model" >/dev/null
for s in $sparsities; do
  $ours router static --model "$work/model" --sparsity "$s" --out "$work/router-$s.json" >/dev/null
done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for n in $prompts; do
    for s in $sparsities; do
      $ours bench model --model "$work/model" --router "$work/router-$s.json" --prompt-tokens "$n" --reps 5 --json \
        2>/dev/null > "$work/result-$n-$s-$round.json"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$work" "$rounds" "$prompts" "$sparsities" <<'PY'
import json, statistics, sys
work, rounds, prompts, sparsities = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
median = statistics.median
print(f"\nsmollm2-135m f32, static router, one-pass routing; median over {rounds} rounds of each round's median of 5 reps")
print(f"{'prompt':>6} {'target':>6} {'achieved':>8} {'dense tok/s':>11} {'pruned tok/s':>12} {'speed-up':>8} {'FLOPs ratio':>11}")
for n in prompts:
    for s in sparsities:
        rs = [json.load(open(f"{work}/result-{n}-{s}-{r}.json")) for r in range(1, rounds + 1)]
        print(f"{n:>6} {float(s):6.0%} {rs[0]['sparsity_achieved']:8.1%} {median(r['dense_prefill_tokens_per_second'] for r in rs):11.1f}"
              f" {median(r['pruned_prefill_tokens_per_second'] for r in rs):12.1f} {median(r['speed_up'] for r in rs):7.2f}x"
              f" {rs[0]['flops_ratio']:11.1%}")
PY
