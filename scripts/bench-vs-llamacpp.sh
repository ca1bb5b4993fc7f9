#!/usr/bin/env bash
# Runs ftpcluster and llama.cpp (../shared/tools/LlamaCppPeer) on bit-identical weights, back to back,
# several rounds, and prints each engine's median prefill/decode tokens/s and the ratios.
# f32 and f16 run the peer's safetensors twin of its GGUF; a quantized type (q8_0, q4_0, q4_k_m, q6_k, ... as the
# peer's quantize takes them) runs llama.cpp's own quantized GGUF in both engines.
# Usage: scripts/bench-vs-llamacpp.sh [preset=smollm2-135m] [rounds=3] [dtypes="f32 f16"]
#   e.g. scripts/bench-vs-llamacpp.sh tinyllama-1.1b 5 "q8_0 q4_k_m"
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
  case $dtype in
    f32|f16)
      dir="$work/$preset-$dtype"
      $peer synth --preset "$preset" --seed 1 --dtype "$dtype" --out "$dir" >/dev/null
      gguf="$dir/model.gguf"; model="$dir/hf"; tol=1e-3 ;;
    *)
      # llama.cpp quantizes from the f32 file, as llama-quantize does from a converted model.
      [ -d "$work/$preset-f32" ] || $peer synth --preset "$preset" --seed 1 --dtype f32 --out "$work/$preset-f32" >/dev/null
      gguf="$work/$preset-$dtype.gguf"; model="$gguf"
      $peer quantize --gguf "$work/$preset-f32/model.gguf" --type "$dtype" --out "$gguf" >/dev/null
      # Both engines quantize activations to 8 bits, each its own way: close, not equal (see GgufLlamaCppTests).
      tol=1e-1 ;;
  esac
  # Same weights, same ids: the logits must agree before the speeds mean anything.
  $peer logits --gguf "$gguf" --ids 1,5,9,17,100 > "$work/llama.json" 2>/dev/null
  $ours score --model "$model" --ids "[1,5,9,17,100]" --logits --json > "$work/ours.json" 2>/dev/null
  python3 "$peer_src/compare_logits.py" "$work/llama.json" "$work/ours.json" --tol "$tol" | tail -1
  for round in $(seq "$rounds"); do
    $peer bench --gguf "$gguf" --threads 2 --prompt-tokens 128 --gen-tokens 64 --reps 5 2>/dev/null > "$work/llama-$dtype-$round.json"
    $ours bench model --model "$model" --prompt-tokens 128 --gen-tokens 64 --reps 5 --json 2>/dev/null > "$work/ours-$dtype-$round.json"
  done
done

python3 - "$work" "$preset" "$rounds" $dtypes <<'PY'
import json, statistics, sys
work, preset, rounds, dtypes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
print(f"\n{preset}, 128-token prompt, 64 decoded, 2 threads, median over {rounds} rounds of 5 reps")
print(f"{'dtype':7} {'engine':10} {'prefill tok/s':>14} {'decode tok/s':>13}")
for d in dtypes:
    ll = [json.load(open(f"{work}/llama-{d}-{r}.json")) for r in range(1, rounds + 1)]
    us = [json.load(open(f"{work}/ours-{d}-{r}.json")) for r in range(1, rounds + 1)]
    lp, ld = statistics.median(x["prefill_tokens_per_s"] for x in ll), statistics.median(x["decode_tokens_per_s"] for x in ll)
    up, ud = statistics.median(x["prefill_tokens_per_second"] for x in us), statistics.median(x["decode_tokens_per_second"] for x in us)
    print(f"{d:7} {'llama.cpp':10} {lp:14.1f} {ld:13.1f}")
    print(f"{d:7} {'ftpcluster':10} {up:14.1f} {ud:13.1f}")
    print(f"{d:7} {'ratio':10} {up / lp:13.2f}x {ud / ld:12.2f}x")
    # Every round's ratio too: a goal on the median says nothing of the spread.
    print(f"{d:7} {'per round':10} " + " ".join(f"{u['prefill_tokens_per_second'] / l['prefill_tokens_per_s']:.2f}/{u['decode_tokens_per_second'] / l['decode_tokens_per_s']:.2f}" for u, l in zip(us, ll)))
PY
