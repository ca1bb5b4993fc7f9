#!/usr/bin/env bash
# The quality cost of stage-aware one-pass plans (docs/ftp-results.md): for each model, the one-pass routers
# that scripts/ftp-results.sh calibrated, evaluated through an embedded cluster of 2 and 3 stages (and 4 for
# stories260K's 5 blocks) with --stage-aware, so each routed method's per-block one-pass plan and its
# stage-aware plan on the deployed stages are scored on the same data, with int8 on the wire.
# Usage: scripts/ftp-stage-aware.sh RESULTS_DIR   (from the repository root, after scripts/ftp-results.sh RESULTS_DIR)
set -euo pipefail
out=${1:?usage: scripts/ftp-stage-aware.sh RESULTS_DIR (the output folder of scripts/ftp-results.sh)}
ftp=Client/bin/Release/net10.0/ftpcluster
dotnet build FtpCluster.sln -c Release -v quiet -nologo
for model in aidreams260K stories260K; do
  bin=../shared/models/$model/$model.bin
  routers="$out/$model-one-pass-0.2.json,$out/$model-one-pass-0.3.json,$out/$model-one-pass-0.4.json"
  stage_counts="2 3"
  [ "$model" = stories260K ] && stage_counts="2 3 4"
  for stages in $stage_counts; do
    $ftp eval --model "$bin" --data "$out/$model-eval.jsonl" --calibration "$out/$model-calibration.jsonl" \
      --router "$routers" --routing one-pass --methods learned,static,random,uniform \
      --stages $stages --stage-aware --wire int8 --json > "$out/$model-stage-aware-$stages.json" 2> "$out/$model-stage-aware-$stages.log"
  done
done
