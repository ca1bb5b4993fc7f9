#!/usr/bin/env bash
# The GPU check of issue 14, in two steps, because a lent GPU machine has neither the .NET SDK nor a network:
#
#   scripts/gpu-check.sh pack            here, with the .NET SDK: builds everything the check runs into one archive,
#                                        .gpu-check/bundle.tar.xz (ignored by git; under the 64 MiB a device call carries):
#                                        the compute tests' build (which holds the ftpcluster client), xUnit's console
#                                        runner, the .NET runtime and the shared models.
#   scripts/gpu-check.sh [out.json]      on the machine with an NVIDIA GPU: runs from the bundle alone. It runs every ILGPU
#                                        test on CUDA (FTPCLUSTER_ILGPU_TESTS=cuda: kernels and whole device-resident
#                                        stages against the CPU backend), then `ftpcluster bench model --device cuda` on
#                                        the smollm2-135m and tinyllama-1.1b presets (synthetic weights) stored in f16,
#                                        a 512-token prefill and 64 decoded tokens (one sequence, then 8 at once), and
#                                        writes a JSON summary: tokens/s, against the 2-core CPU's; for decode the GB/s of
#                                        weights read per token against the GPU's bandwidth, and the device time of a
#                                        decode step by kind of operation beside its wall time (one sequence, and the 8
#                                        at once); whether issue 14's goals are met; and `ftpcluster devices --measure`:
#                                        each device's memory budget and measured capacity, as a silo would publish them.
#
# Settings of the run step (the defaults are the check's):
#   GPU_CHECK_DEVICE=cuda          ilgpu-cpu rehearses the whole run on a machine without a GPU (ILGPU's CPU accelerator)
#   GPU_CHECK_PRESETS="smollm2-135m tinyllama-1.1b"
#   GPU_CHECK_PROMPT_TOKENS=512  GPU_CHECK_GEN_TOKENS=64  GPU_CHECK_REPS=3 (the median is reported)
#   GPU_CHECK_PROFILE_TOKENS=16    decode steps then run again with each device operation timed (bench model --profile),
#                                  of one sequence and of the GPU_CHECK_SEQUENCES at once
#   GPU_CHECK_SEQUENCES=8          decode also timed for this many sequences at once (bench model --sequences)
#   GPU_CHECK_TESTS_SECONDS=240  GPU_CHECK_BENCH_SECONDS=120 (per model): time limits, so a hang leaves the rest's results
#   GPU_BANDWIDTH_GBS=3350         the GPU's memory bandwidth in GB/s when its name is not in the table below
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=.gpu-check/bundle.tar.xz

pack() {
  command -v dotnet >/dev/null || { echo "gpu-check pack: needs the .NET SDK (dotnet)" >&2; exit 1; }
  stage=$(mktemp -d /tmp/ftp-gpu-pack-XXXXXX)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/app" .gpu-check
  dotnet build -c Release tests/FtpCluster.Compute.Tests >"$stage/build.log" || { tail -20 "$stage/build.log"; exit 1; }
  # The compute tests' build as CI makes it; it holds the client too (ftpcluster.dll and all it loads). The other
  # platforms' native libraries are left out: they would double the size.
  cp -r tests/FtpCluster.Compute.Tests/bin/Release/net10.0 "$stage/app/tests"
  find "$stage/app/tests/runtimes" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
  local dotnet_root runner version
  runner="${NUGET_PACKAGES:-$HOME/.nuget/packages}/xunit.runner.console/2.4.1/tools/netcoreapp2.0"
  [ -f "$runner/xunit.console.dll" ] || { echo "gpu-check pack: xUnit's console runner is not at $runner (the compute tests' restore downloads it)" >&2; exit 1; }
  cp -r "$runner" "$stage/app/xunit"
  # The runtime the two need: the dotnet host and the two shared frameworks of this SDK's runtime version.
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  version=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" { v = $2 } END { print v }')
  mkdir -p "$stage/app/dotnet/shared"
  cp "$dotnet_root/dotnet" "$stage/app/dotnet/"
  cp -r "$dotnet_root/host" "$stage/app/dotnet/"
  for framework in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
    mkdir -p "$stage/app/dotnet/shared/$framework"
    cp -r "$dotnet_root/shared/$framework/$version" "$stage/app/dotnet/shared/$framework/"
  done
  if [ -d ../shared/models ]; then
    cp -r ../shared/models "$stage/app/models"
  else
    echo "gpu-check pack: ../shared/models is absent: the tests that need the shared models will be skipped" >&2
  fi
  git describe --always --dirty >"$stage/app/commit" 2>/dev/null || echo unknown >"$stage/app/commit"
  XZ_OPT=-9 tar -C "$stage" -cJf "$bundle" app
  # A device call carries the working tree and the bundle, 64 MiB in all.
  if [ "$(du -m "$bundle" | cut -f1)" -gt 56 ]; then
    echo "gpu-check pack: $bundle is $(du -m "$bundle" | cut -f1) MiB: over the 56 MiB that leaves room for the working tree in a device call" >&2
    exit 1
  fi
  echo "gpu-check pack: $bundle, $(du -m "$bundle" | cut -f1) MiB, commit $(cat "$stage/app/commit"), runtime $version"
}

if [ "${1:-}" = pack ]; then
  pack
  exit 0
fi

out=${1:-gpu-check.json}
device=${GPU_CHECK_DEVICE:-cuda}
presets=${GPU_CHECK_PRESETS:-smollm2-135m tinyllama-1.1b}
prompt_tokens=${GPU_CHECK_PROMPT_TOKENS:-512}
gen_tokens=${GPU_CHECK_GEN_TOKENS:-64}
reps=${GPU_CHECK_REPS:-3}
profile_tokens=${GPU_CHECK_PROFILE_TOKENS:-16}
sequences=${GPU_CHECK_SEQUENCES:-8}
tests_seconds=${GPU_CHECK_TESTS_SECONDS:-240}
bench_seconds=${GPU_CHECK_BENCH_SECONDS:-120}
case "$device" in
  cuda) ilgpu_tests=cuda ;;
  ilgpu-cpu) ilgpu_tests=cpu ;;
  *) echo "gpu-check: GPU_CHECK_DEVICE=$device: expected cuda or ilgpu-cpu" >&2; exit 1 ;;
esac
[ -f "$bundle" ] || { echo "gpu-check: no $bundle: make it first with 'scripts/gpu-check.sh pack' on a machine with the .NET SDK" >&2; exit 1; }

if [ "$device" = cuda ]; then
  command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: this needs a machine with an NVIDIA GPU and its driver" >&2; exit 1; }
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
else
  gpu="none (rehearsal on ILGPU's CPU accelerator)"
fi
echo "gpu-check: $gpu"

work=$(mktemp -d /tmp/ftp-gpu-check-XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xJf "$bundle"
app=$work/app
echo "gpu-check: bundle of commit $(cat "$app/commit")"
export DOTNET_ROOT=$app/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export FTPCLUSTER_SHARED_MODELS=$app/models
dotnet=$app/dotnet/dotnet
# ILGPU opens the driver as libcuda.so; some driver installs have only libcuda.so.1.
if [ "$device" = cuda ] && ! ldconfig -p | grep -q 'libcuda\.so '; then
  driver=$(ldconfig -p | awk '/libcuda\.so\.1 / { print $NF; exit }')
  for folder in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -z "$driver" ] && [ -e "$folder/libcuda.so.1" ] && driver=$folder/libcuda.so.1
  done
  [ -n "$driver" ] || { echo "gpu-check: no libcuda.so.1 found: is the NVIDIA driver installed?" >&2; exit 1; }
  mkdir -p "$work/lib" && ln -s "$driver" "$work/lib/libcuda.so"
  export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

# The numerics: every ILGPU test (kernels, whole stages against the CPU backend, transfer counts), on the device.
# The runner targets netcoreapp2.0, hence the roll forward onto the bundled runtime. Each step has a time limit, so that
# a hang in one still leaves the others' results (a device lease is short); the tests' log is kept beside the summary.
tests_rc=0
DOTNET_ROLL_FORWARD=Major FTPCLUSTER_ILGPU_TESTS=$ilgpu_tests timeout "$tests_seconds" "$dotnet" "$app/xunit/xunit.console.dll" \
  "$app/tests/FtpCluster.Compute.Tests.dll" -method '*Ilgpu*' -parallel none -noshadow -nocolor -xml "$work/tests.xml" \
  >"$work/tests.log" 2>&1 || tests_rc=$?
cp "$work/tests.log" "${out%.json}.tests.log"
[ "$tests_rc" = 124 ] && echo "gpu-check: the tests ran past ${tests_seconds}s and were stopped" >&2
grep -E "\[FAIL\]|Total:" "$work/tests.log" | tail -20 || true

# What a silo on each device would publish: its memory budget and measured capacity (the planner's layer shares).
timeout 120 "$dotnet" "$app/tests/ftpcluster.dll" devices --measure --json >"$work/devices.json" 2>"$work/devices.err" \
  || { echo "gpu-check: ftpcluster devices failed (exit $?)" >>"$work/devices.err"; cat "$work/devices.err" >&2; }

for preset in $presets; do
  "$dotnet" "$app/tests/ftpcluster.dll" models synth --preset "$preset" --dtype f16 --seed 1 --out "$work/$preset" >/dev/null
  timeout "$bench_seconds" "$dotnet" "$app/tests/ftpcluster.dll" bench model --model "$work/$preset" --device "$device" --dtype f16 \
    --prompt-tokens "$prompt_tokens" --gen-tokens "$gen_tokens" --reps "$reps" --sequences "$sequences" --profile "$profile_tokens" \
    --json >"$work/$preset.json" 2>"$work/$preset.err" \
    || { echo "gpu-check: bench model on $preset failed (exit $?; 124 is past ${bench_seconds}s)" >>"$work/$preset.err"; cat "$work/$preset.err" >&2; }
done

python3 - "$work" "$out" "$gpu" "$tests_rc" "$presets" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET
work, out, gpu, tests_rc, presets = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()

# Peak memory bandwidth in GB/s, from the vendors' data sheets.
bandwidths = {"H100 80GB HBM3": 3350, "H100 SXM": 3350, "H100 NVL": 3900, "H100 PCIe": 2000, "H200": 4800,
              "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555,
              "L40S": 864, "L4": 300, "A10": 600, "RTX 4090": 1008}
bandwidth = float(os.environ["GPU_BANDWIDTH_GBS"]) if os.environ.get("GPU_BANDWIDTH_GBS") else next(
    (v for k, v in sorted(bandwidths.items(), key=lambda kv: -len(kv[0])) if k in gpu), None)

# The 2-core CPU the goals compare with (issue 14: a 512-token prefill at least 10x its speed): medians of three runs of
# `bench model --device cpu --dtype f16 --prompt-tokens 512` on the development machine (2 cores of an AMD EPYC, AVX-512),
# recorded in docs/benchmarks.md. Tokens per second.
cpu_2core = {"smollm2-135m": {"prefill": 759.0, "decode": 67.0},
             "tinyllama-1.1b": {"prefill": 126.2, "decode": 8.2, "decode_together": 32.6}}  # 8 sequences at once

def decode_bytes_per_token(config):
    """f16 bytes of the matrices one decoded token reads: every block's projections and the LM head."""
    dim, hidden, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim", dim // heads)
    block = dim * heads * head_dim * 2 + dim * kv_heads * head_dim * 2 + 3 * dim * hidden
    return 2 * (layers * block + config["vocab_size"] * dim)

tests = {"exit_code": tests_rc, "timed_out": tests_rc == 124}
if os.path.exists(f"{work}/tests.xml"):
    assembly = ET.parse(f"{work}/tests.xml").getroot().find("assembly")
    tests.update({key: int(assembly.get(key)) for key in ("total", "passed", "failed", "skipped")})
    tests["failures"] = [t.get("name") for t in assembly.iter("test") if t.get("result") == "Fail"]
summary = {"gpu": gpu, "bandwidth_gb_per_s": bandwidth, "commit": open(f"{work}/app/commit").read().strip(),
           "numerics_tests": tests, "models": []}
try:
    summary["devices"] = json.load(open(f"{work}/devices.json"))["devices"]
except (OSError, ValueError, KeyError):
    summary["devices"] = {"error": open(f"{work}/devices.err").read().strip().splitlines()[-20:]}
for preset in presets:
    try:
        bench = json.load(open(f"{work}/{preset}.json"))
    except (OSError, ValueError):
        error = open(f"{work}/{preset}.err").read().strip().splitlines()[-20:] if os.path.exists(f"{work}/{preset}.err") else []
        summary["models"].append({"preset": preset, "dtype": "f16", "error": error})
        continue
    config = json.load(open(f"{work}/{preset}/config.json"))
    per_token = decode_bytes_per_token(config)
    read_gbs = bench["decode_tokens_per_second"] * per_token / 1e9
    summary["models"].append({
        "preset": preset, "dtype": "f16", "device": bench["device"],
        "prefill_tokens": bench["prompt_tokens"], "prefill_tokens_per_s": bench["prefill_tokens_per_second"],
        "decode_tokens": bench["gen_tokens"], "decode_tokens_per_s": bench["decode_tokens_per_second"],
        "decode_weight_bytes_per_token": per_token, "decode_weight_read_gb_per_s": read_gbs,
        "decode_fraction_of_bandwidth": read_gbs / bandwidth if bandwidth else None,
        "prefill_vs_2core_cpu": bench["prefill_tokens_per_second"] / cpu_2core[preset]["prefill"] if preset in cpu_2core else None,
        "decode_vs_2core_cpu": bench["decode_tokens_per_second"] / cpu_2core[preset]["decode"] if preset in cpu_2core else None,
        "decode_together_sequences": bench["sequences"],
        "decode_together_tokens_per_s": bench.get("decode_together_tokens_per_second"),
        "decode_together_vs_2core_cpu": bench["decode_together_tokens_per_second"] / cpu_2core[preset]["decode_together"]
            if bench.get("decode_together_tokens_per_second") and bench["sequences"] == 8 and "decode_together" in cpu_2core.get(preset, {}) else None,
        "decode_profile": bench.get("decode_profile"),
        "decode_together_profile": bench.get("decode_together_profile"),
    })
# Issue 14's goals, on tinyllama-1.1b f16: decode reads weights at 60% of the bandwidth or more, prefill is 10x the CPU's.
goal = next((m for m in summary["models"] if m["preset"] == "tinyllama-1.1b"), None)
if goal is not None and "error" not in goal:
    fraction, speedup = goal["decode_fraction_of_bandwidth"], goal["prefill_vs_2core_cpu"]
    summary["goals"] = {"decode_at_60_percent_of_bandwidth": fraction >= 0.6 if fraction is not None else None,
                        "prefill_10x_the_2core_cpu": speedup >= 10 if speedup is not None else None}
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
echo "gpu-check: summary in $out"
exit "$tests_rc"
