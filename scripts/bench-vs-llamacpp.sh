#!/usr/bin/env bash
# Runs ftpcluster and llama.cpp (../shared/tools/LlamaCppPeer) on bit-identical weights, back to back,
# several rounds, and prints each engine's median prefill/decode tokens/s and the ratios.
# Usage: scripts/bench-vs-llamacpp.sh [preset=smollm2-135m] [rounds=3] [dtypes="f32 f16"]
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-smollm2-135m}
rounds=${2:-3}
dtypes=${3:-"f32 f16"}
peer_src=../shared/tools/LlamaCppPeer
[ -d "$peer_src" ] || { echo "needs $peer_src (the shared folder beside the repository)"; exit 1; }

work=$(mktemp -d /tmp/ftp-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$peer_src" "$work/peer" && chmod -R u+w "$work/peer"
dotnet build -c Release "$work/peer/LlamaCppPeer.csproj" >/dev/null
dotnet build -c Release Client/FtpCluster.Client.csproj >/dev/null
peer="dotnet $work/peer/bin/Release/net10.0/LlamaCppPeer.dll"
ours="dotnet Client/bin/Release/net10.0/ftpcluster.dll"

for dtype in $dtypes; do
  dir="$work/$preset-$dtype"
  $peer synth --preset "$preset" --seed 1 --dtype "$dtype" --out "$dir" >/dev/null
  # Same weights, same ids: the logits must agree before the speeds mean anything.
  $peer logits --gguf "$dir/model.gguf" --ids 1,5,9,17,100 > "$work/llama.json" 2>/dev/null
  $ours score --model "$dir/hf" --ids "[1,5,9,17,100]" --logits --json > "$work/ours.json" 2>/dev/null
  python3 "$peer_src/compare_logits.py" "$work/llama.json" "$work/ours.json" --tol 1e-3 | tail -1
  for round in $(seq "$rounds"); do
    $peer bench --gguf "$dir/model.gguf" --threads 2 --prompt-tokens 128 --gen-tokens 64 --reps 5 2>/dev/null > "$work/llama-$dtype-$round.json"
    $ours bench model --model "$dir/hf" --prompt-tokens 128 --gen-tokens 64 --reps 5 --json 2>/dev/null > "$work/ours-$dtype-$round.json"
  done
done

python3 - "$work" "$preset" "$rounds" $dtypes <<'PY'
import json, statistics, sys
work, preset, rounds, dtypes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
print(f"\n{preset}, 128-token prompt, 64 decoded, 2 threads, median over {rounds} rounds of 5 reps")
print(f"{'dtype':6} {'engine':10} {'prefill tok/s':>14} {'decode tok/s':>13}")
for d in dtypes:
    ll = [json.load(open(f"{work}/llama-{d}-{r}.json")) for r in range(1, rounds + 1)]
    us = [json.load(open(f"{work}/ours-{d}-{r}.json")) for r in range(1, rounds + 1)]
    lp, ld = statistics.median(x["prefill_tokens_per_s"] for x in ll), statistics.median(x["decode_tokens_per_s"] for x in ll)
    up, ud = statistics.median(x["prefill_tokens_per_second"] for x in us), statistics.median(x["decode_tokens_per_second"] for x in us)
    print(f"{d:6} {'llama.cpp':10} {lp:14.1f} {ld:13.1f}")
    print(f"{d:6} {'ftpcluster':10} {up:14.1f} {ud:13.1f}")
    print(f"{d:6} {'ratio':10} {up / lp:13.2f}x {ud / ld:12.2f}x")
PY
