#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver installed, no internet needed): builds with `dotnet build -c Release`,
# runs the ILGPU numerics tests on CUDA (FTPCLUSTER_ILGPU_TESTS=cuda), then `ftpcluster bench model --device cuda`
# on the smollm2-135m and tinyllama-1.1b presets (synthetic weights) stored in f16: a 512-token prefill and decode.
# Writes a JSON summary: tokens/s, and for decode the GB/s of weights read per token against the GPU's bandwidth.
# Usage: scripts/gpu-check.sh [out=gpu-check.json]
#   GPU_BANDWIDTH_GBS=3350   the GPU's memory bandwidth in GB/s when its name is not in the table below
#   GPU_CHECK_REPS=3         repetitions of each benchmark (the median is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check.json}
reps=${GPU_CHECK_REPS:-3}

command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: this needs a machine with an NVIDIA GPU and its driver" >&2; exit 1; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "gpu-check: $gpu"

work=$(mktemp -d /tmp/ftp-gpu-check-XXXXXX)
trap 'rm -rf "$work"' EXIT

dotnet build -c Release tests/FtpCluster.Compute.Tests >"$work/build-tests.log" || { tail -20 "$work/build-tests.log"; exit 1; }
dotnet build -c Release Client/FtpCluster.Client.csproj >"$work/build-client.log" || { tail -20 "$work/build-client.log"; exit 1; }
ftpcluster="dotnet Client/bin/Release/net10.0/ftpcluster.dll"

# The numerics: every ILGPU test (kernels, whole stages against the CPU backend, transfer counts), on the GPU.
tests_rc=0
FTPCLUSTER_ILGPU_TESTS=cuda dotnet test -c Release --no-build tests/FtpCluster.Compute.Tests --filter "FullyQualifiedName~Ilgpu" \
  >"$work/tests.log" 2>&1 || tests_rc=$?
grep -E "^(Passed|Failed)!|Total tests|error" "$work/tests.log" | tail -5 || true

for preset in smollm2-135m tinyllama-1.1b; do
  $ftpcluster models synth --preset "$preset" --dtype f16 --seed 1 --out "$work/$preset" >/dev/null
  $ftpcluster bench model --model "$work/$preset" --device cuda --dtype f16 \
    --prompt-tokens 512 --gen-tokens 64 --reps "$reps" --json >"$work/$preset.json" 2>"$work/$preset.err" \
    || { cat "$work/$preset.err" >&2; exit 1; }
done

python3 - "$work" "$out" "$gpu" "$tests_rc" "$work/tests.log" <<'PY'
import json, os, re, sys
work, out, gpu, tests_rc, tests_log = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]

# Peak memory bandwidth in GB/s, from the vendors' data sheets.
bandwidths = {"H100 80GB HBM3": 3350, "H100 SXM": 3350, "H100 NVL": 3900, "H100 PCIe": 2000, "H200": 4800,
              "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555,
              "L40S": 864, "L4": 300, "A10": 600, "RTX 4090": 1008}
bandwidth = float(os.environ["GPU_BANDWIDTH_GBS"]) if os.environ.get("GPU_BANDWIDTH_GBS") else next(
    (v for k, v in sorted(bandwidths.items(), key=lambda kv: -len(kv[0])) if k in gpu), None)

def decode_bytes_per_token(config):
    """f16 bytes of the matrices one decoded token reads: every block's projections and the LM head."""
    dim, hidden, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim", dim // heads)
    block = dim * heads * head_dim * 2 + dim * kv_heads * head_dim * 2 + 3 * dim * hidden
    return 2 * (layers * block + config["vocab_size"] * dim)

log = open(tests_log).read()
counts = re.search(r"Failed:\s+(\d+), Passed:\s+(\d+), Skipped:\s+(\d+), Total:\s+(\d+)", log)
summary = {
    "gpu": gpu,
    "bandwidth_gb_per_s": bandwidth,
    "numerics_tests": {"exit_code": tests_rc, **({"failed": int(counts[1]), "passed": int(counts[2]), "skipped": int(counts[3]),
                                                   "total": int(counts[4])} if counts else {})},
    "models": [],
}
for preset in ["smollm2-135m", "tinyllama-1.1b"]:
    bench = json.load(open(f"{work}/{preset}.json"))
    config = json.load(open(f"{work}/{preset}/config.json"))
    per_token = decode_bytes_per_token(config)
    read_gbs = bench["decode_tokens_per_second"] * per_token / 1e9
    summary["models"].append({
        "preset": preset, "dtype": "f16", "device": bench["device"],
        "prefill_tokens": bench["prompt_tokens"], "prefill_tokens_per_s": bench["prefill_tokens_per_second"],
        "decode_tokens": bench["gen_tokens"], "decode_tokens_per_s": bench["decode_tokens_per_second"],
        "decode_weight_bytes_per_token": per_token, "decode_weight_read_gb_per_s": read_gbs,
        "decode_fraction_of_bandwidth": read_gbs / bandwidth if bandwidth else None,
    })
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
echo "gpu-check: summary in $out"
exit "$tests_rc"
