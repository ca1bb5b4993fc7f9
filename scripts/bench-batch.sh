#!/usr/bin/env bash
# A batch job (`ftpcluster run`) of 64 sequences x 128 generated tokens on the smollm2-135m preset in f32, through
# 1 and 2 stages, against llama.cpp's single-sequence decode on bit-identical weights (../shared/tools/LlamaCppPeer)
# and against the same job run one sequence at a time. The four configurations alternate, back to back, for several
# rounds (the machine's speed drifts); prints each one's median generated tokens/s and the ratios.
# Usage: scripts/bench-batch.sh [rounds=3] [summary.json] [one-at-a-time lines=8]
set -euo pipefail
rounds=${1:-3}
summary_path=${2:-}
serial_lines=${3:-8}
# Relative to where the script was started, before it moves to the repository.
if [ -n "$summary_path" ]; then summary_path=$(realpath -m "$summary_path"); fi
cd "$(dirname "$0")/.."
preset=smollm2-135m
lines=64
gen_tokens=128
peer_src=../shared/tools/LlamaCppPeer
[ -d "$peer_src" ] || { echo "needs $peer_src (the shared folder beside the repository)"; exit 1; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "rounds must be a positive integer, got '$rounds'"; exit 1; }
[[ "$serial_lines" =~ ^[1-9][0-9]*$ ]] && [ "$serial_lines" -le "$lines" ] \
  || { echo "one-at-a-time lines must be 1..$lines, got '$serial_lines'"; exit 1; }

work=$(mktemp -d /tmp/ftp-bench-batch-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$peer_src" "$work/peer" && chmod -R u+w "$work/peer"
dotnet build -c Release "$work/peer/LlamaCppPeer.csproj" >/dev/null
dotnet build -c Release Client/FtpCluster.Client.csproj >/dev/null
peer="dotnet $work/peer/bin/Release/net10.0/LlamaCppPeer.dll"
ours="dotnet Client/bin/Release/net10.0/ftpcluster.dll"

dir="$work/$preset-f32"
$peer synth --preset "$preset" --seed 1 --out "$dir" >/dev/null
# Same weights, same ids: the logits must agree before the speeds mean anything.
$peer logits --gguf "$dir/model.gguf" --ids 1,5,9,17,100 > "$work/llama-logits.json" 2>/dev/null
$ours score --model "$dir/hf" --ids "[1,5,9,17,100]" --logits --json > "$work/ours-logits.json" 2>/dev/null
python3 "$peer_src/compare_logits.py" "$work/llama-logits.json" "$work/ours-logits.json" --tol 1e-3 | tail -1

# The job: token-id prompts of 16 to 32 ids, different per line, from a fixed seed. The served model's name is its
# folder's name. Random weights have no EOS without a tokenizer, so every line generates all its tokens.
python3 scripts/bench-requests.py "$work/input.jsonl" "$lines" "$gen_tokens" "$dir/hf/config.json"
head -n "$serial_lines" "$work/input.jsonl" > "$work/input-serial.jsonl"

# One configuration of ours: a fresh output file each time (a run resumes from an existing output), and the summary
# checked: every line succeeded and generated all its tokens, or the figure would not be the job's.
run_ours() {
  local name=$1 input=$2 expected_lines=$3; shift 3
  local out="$work/out-$name-$round.jsonl" summary="$work/$name-$round.json"
  rm -f "$out"
  $ours run --input "$input" --output "$out" --model "$dir/hf" "$@" --json 2>"$work/$name-$round.log" > "$summary" \
    || { echo "$name round $round: ftpcluster run failed:"; tail -20 "$work/$name-$round.log"; exit 1; }
  python3 scripts/check-run-summary.py "$summary" "$name" "$expected_lines" "$gen_tokens"
}

cut -d' ' -f1-3 /proc/loadavg > "$work/load-start"
echo "load average at start: $(cat "$work/load-start")"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg > "$work/load-$round"
  $peer bench --gguf "$dir/model.gguf" --threads 2 --prompt-tokens 24 --gen-tokens "$gen_tokens" --reps 3 \
    2>/dev/null > "$work/llama-$round.json"
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("  %-16s %8.1f decode tok/s" % ("llama.cpp", r["decode_tokens_per_s"]))' "$work/llama-$round.json"
  run_ours stages1 "$work/input.jsonl" "$lines" --stages 1 --max-concurrent "$lines" --threads 2
  run_ours stages2 "$work/input.jsonl" "$lines" --stages 2 --max-concurrent "$lines" --threads 1
  run_ours serial "$work/input-serial.jsonl" "$serial_lines" --stages 1 --max-concurrent 1 --threads 2
done
cut -d' ' -f1-3 /proc/loadavg > "$work/load-end"
echo "load average at end: $(cat "$work/load-end")"

python3 - "$work" "$rounds" "$lines" "$gen_tokens" "$serial_lines" "$preset" "$summary_path" <<'PY'
import json, statistics, sys
work, rounds, lines, gen_tokens, serial_lines, preset, summary_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
median = statistics.median
load = lambda name: open(f"{work}/load-{name}").read().split()
llama = [json.load(open(f"{work}/llama-{r}.json")) for r in range(1, rounds + 1)]
ours = {name: [json.load(open(f"{work}/{name}-{r}.json")) for r in range(1, rounds + 1)] for name in ("stages1", "stages2", "serial")}
rate = {"llama": [x["decode_tokens_per_s"] for x in llama]}
rate.update({name: [x["generated_tokens_per_second"] for x in runs] for name, runs in ours.items()})
# llama.cpp's decode tok/s is its whole decode's: on a loaded machine a step now and then stalls for seconds (its
# spinning threads lose their cores), so the rate its median step time gives is the figure without the stalls.
rate["llama_steps"] = [1000 / median(x["decode_step_ms_median_reps"]) for x in llama]
med = {name: median(values) for name, values in rate.items()}
rows = [
    ("llama", "llama.cpp, 1 sequence decode", "2 threads, 24-token prompt, median of 3 reps"),
    ("llama_steps", "llama.cpp, from its step time", "1000 / the median decode step's ms"),
    ("stages1", "ours, 1 stage", f"{lines} at once, 2 threads"),
    ("stages2", "ours, 2 stages", f"{lines} at once, 1 thread each"),
    ("serial", "ours, one at a time", f"1 stage, 2 threads, {serial_lines} of the {lines} lines"),
]
baselines = (("llama", 6), ("llama_steps", 6), ("serial", 5))
print(f"\n{preset} f32, {lines} sequences x {gen_tokens} generated tokens; median over {rounds} rounds")
print(f"load average: start {' '.join(load('start'))}, end {' '.join(load('end'))}")
print(f"{'configuration':30} {'tok/s':>7} {'x llama.cpp':>11} {'x llama steps':>13} {'x one at a time':>15}   rounds")
for key, label, _ in rows:
    print(f"{label:30} {med[key]:7.1f} " + " ".join(f"{med[key] / med[b]:{w - 1}.2f}x" for (b, _), w in zip(baselines, (11, 13, 15)))
          + "   " + ", ".join(f"{v:.1f}" for v in rate[key]))
# Each round's runs were back to back: their ratios see less of the drift than ratios of medians over rounds do.
round_ratio = {(key, b): median(v / w for v, w in zip(rate[key], rate[b])) for key, _, _ in rows[2:] for b, _ in baselines}
print("median of the per-round ratios:")
for key, label, _ in rows[2:]:
    print(f"{label:30} {'':7} " + " ".join(f"{round_ratio[key, b]:{w - 1}.2f}x" for (b, _), w in zip(baselines, (11, 13, 15))))
for baseline, target in baselines:
    goal = next(label for key, label, _ in rows if key == baseline)
    for key, label, _ in rows[2:4]:
        r = med[key] / med[baseline]
        print(f"goal >= {target}x '{goal}', {label}: {r:.2f}x, " + ("met" if r >= target else f"NOT met ({r / target:.0%} of the goal)"))

if summary_path:
    summary = {
        "preset": preset, "dtype": "f32", "lines": lines, "gen_tokens": gen_tokens, "rounds": rounds,
        "one_at_a_time_lines": serial_lines,
        "load_average": {"start": load("start"), "end": load("end"), "per_round": [load(r) for r in range(1, rounds + 1)]},
        "configurations": {key: {"description": f"{label}, {detail}", "tokens_per_second_rounds": rate[key],
                                 "median_tokens_per_second": med[key],
                                 "vs_llamacpp": med[key] / med["llama"], "vs_llamacpp_steps": med[key] / med["llama_steps"],
                                 "vs_one_at_a_time": med[key] / med["serial"]}
                           for key, label, detail in rows},
        "median_per_round_ratios": {key: {b: round_ratio[key, b] for b, _ in baselines} for key, _, _ in rows[2:]},
        "llamacpp_decode_step_ms_max_reps": [x["decode_step_ms_max_reps"] for x in llama],
        "ours_runs": {name: runs for name, runs in ours.items()},
    }
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"summary: {summary_path}")
PY
