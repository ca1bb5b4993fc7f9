#!/usr/bin/env bash
# Reproduces every number in docs/ftp-results.md: for aidreams260K and stories260K, a calibration set and
# an evaluation set that do not overlap (generate --samples with seeds 1 and 2), a router calibrated at
# mean sparsity 20%, 30% and 40% for each routing (one-pass and block by block), and eval of each routing's
# three routers against dense, ShortGPT and the static, random and uniform baselines.
# Usage: scripts/ftp-results.sh [OUT_DIR]   (from the repository root; default OUT_DIR ftp-results)
set -euo pipefail
out=${1:-ftp-results}
ftp=Client/bin/Release/net10.0/ftpcluster
mkdir -p "$out"
dotnet build FtpCluster.sln -c Release -v quiet -nologo
for model in aidreams260K stories260K; do
  bin=../shared/models/$model/$model.bin
  $ftp generate --model "$bin" --samples 200 --seed 1 --max-tokens 127 --out "$out/$model-calibration.jsonl"
  $ftp generate --model "$bin" --samples 200 --seed 2 --max-tokens 127 --out "$out/$model-eval.jsonl"
  for routing in one-pass block; do
    routers=""
    for sparsity in 0.2 0.3 0.4; do
      router="$out/$model-$routing-$sparsity.json"
      $ftp calibrate --model "$bin" --data "$out/$model-calibration.jsonl" --sparsity $sparsity --routing $routing --seed 0 \
        --out "$router" 2> "$out/$model-$routing-$sparsity.log"
      routers="${routers:+$routers,}$router"
    done
    $ftp eval --model "$bin" --data "$out/$model-eval.jsonl" --calibration "$out/$model-calibration.jsonl" \
      --router "$routers" --routing $routing --json --plot "$out/$model-$routing.png" > "$out/$model-$routing.json"
  done
done
