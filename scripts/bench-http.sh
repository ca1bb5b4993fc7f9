#!/usr/bin/env bash
# The HTTP API's streaming completions against `ftpcluster run` on the same running cluster and deployment: the
# smollm2-135m preset in f32 through 2 stages, 64 requests x 128 generated tokens, sent by 1, 8 and 64 concurrent
# streaming clients (scripts/bench-http-load.py), each level against a batch job of the same lines at the same
# --max-concurrent. The six configurations alternate, back to back, for several rounds (the machine's speed
# drifts); prints each one's median generated tokens/s, the per-round ratios and the time to first token.
# Usage: scripts/bench-http.sh [rounds=3] [summary.json]
set -euo pipefail
rounds=${1:-3}
summary_path=${2:-}
# Relative to where the script was started, before it moves to the repository.
if [ -n "$summary_path" ]; then summary_path=$(realpath -m "$summary_path"); fi
cd "$(dirname "$0")/.."
preset=smollm2-135m
lines=64
gen_tokens=128
serial_lines=8
levels="1 8 64"
peer_src=../shared/tools/LlamaCppPeer
[ -d "$peer_src" ] || { echo "needs $peer_src (the shared folder beside the repository)"; exit 1; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "rounds must be a positive integer, got '$rounds'"; exit 1; }

work=$(mktemp -d /tmp/ftp-bench-http-XXXXXX)
cluster_pid=
# The cluster stops its silos on SIGTERM; one that does not stop in time is killed.
stop_cluster() {
  [ -n "$cluster_pid" ] || return 0
  kill -TERM "$cluster_pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 1; done
  kill -KILL "$cluster_pid" 2>/dev/null || true
  wait "$cluster_pid" 2>/dev/null || true
  cluster_pid=
}
trap 'stop_cluster; rm -rf "$work"' EXIT
cp -r "$peer_src" "$work/peer" && chmod -R u+w "$work/peer"
dotnet build -c Release "$work/peer/LlamaCppPeer.csproj" >/dev/null
dotnet build -c Release Client/FtpCluster.Client.csproj >/dev/null
peer="dotnet $work/peer/bin/Release/net10.0/LlamaCppPeer.dll"
ours="dotnet Client/bin/Release/net10.0/ftpcluster.dll"

dir="$work/$preset-f32"
$peer synth --preset "$preset" --seed 1 --out "$dir" >/dev/null

# A stream sends text, and a synthesized model has none without a tokenizer: a llama2.c tokenizer of the model's
# vocabulary (control tokens 0-2, byte tokens 3-258, then " w<id>"), so that every other token is text of its own and
# the first token's arrival can be seen. Its EOS is id 2; the checks below fail if any request draws it.
python3 - "$work/tokenizer.bin" "$dir/hf/config.json" <<'PY'
import json, struct, sys
path, config = sys.argv[1], sys.argv[2]
vocab = json.load(open(config))["vocab_size"]
pieces = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{b:02X}>".encode() for b in range(256)]
pieces += [f" w{i}".encode() for i in range(len(pieces), vocab)]
with open(path, "wb") as f:
    f.write(struct.pack("<i", max(map(len, pieces))))
    for piece in pieces:
        f.write(struct.pack("<fi", 0.0, len(piece)) + piece)
PY

# The requests, as bench-batch.sh writes them: token-id prompts of 16 to 32 ids, different per line, from a fixed
# seed; the served model's name is its folder's name.
python3 scripts/bench-requests.py "$work/input.jsonl" "$lines" "$gen_tokens" "$dir/hf/config.json"
head -n "$serial_lines" "$work/input.jsonl" > "$work/input-1.jsonl"
cp "$work/input.jsonl" "$work/input-8.jsonl"
cp "$work/input.jsonl" "$work/input-64.jsonl"
head -n 1 "$work/input.jsonl" > "$work/input-warmup.jsonl"
level_lines() { if [ "$1" = 1 ]; then echo "$serial_lines"; else echo "$lines"; fi; }

http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$ours cluster up --silos 2 --threads 1 --model "$dir/hf" --tokenizer "$work/tokenizer.bin" --http-port "$http_port" \
  > "$work/cluster.out" 2> "$work/cluster.err" &
cluster_pid=$!
cluster_failed() {
  echo "$1; the cluster's output:"; tail -20 "$work/cluster.out"; tail -20 "$work/cluster.err"; exit 1
}
for _ in $(seq 300); do
  grep -q '^up; Ctrl+C stops it' "$work/cluster.out" && break
  kill -0 "$cluster_pid" 2>/dev/null || cluster_failed "cluster up exited before it was ready"
  sleep 1
done
grep -q '^up; Ctrl+C stops it' "$work/cluster.out" || cluster_failed "cluster up was not ready within 300 s"
gateways=$(awk '$1 == "gateways" { print $2 }' "$work/cluster.out")
echo "cluster up: gateways $gateways, http://127.0.0.1:$http_port, $(grep '^deployment' "$work/cluster.out")"

# Streaming clients: the load generator checks every stream (status 200, [DONE], text, all tokens, finish 'length').
run_http() {
  local clients=$1 name=$2 input_lines=$3
  local result="$work/$name-$round.json"
  python3 scripts/bench-http-load.py --url "http://127.0.0.1:$http_port" --input "$work/input.jsonl" --clients "$clients" \
    --lines "$input_lines" --expect-tokens "$gen_tokens" --out "$result" 2> "$work/$name-$round.log" \
    || { kill -0 "$cluster_pid" 2>/dev/null || cluster_failed "$name round $round: the cluster is gone"; \
         echo "$name round $round: the load failed:"; tail -20 "$work/$name-$round.log"; exit 1; }
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print("  %-16s %8.1f generated tok/s (%d tokens in %.1f s)" % (sys.argv[2], s["generated_tokens_per_second"], s["generated_tokens"], s["seconds"]))' "$result" "$name"
}

# The batch job on the same deployment: a fresh output file each time (a run resumes from an existing output), and
# the summary checked: every line succeeded and generated all its tokens.
run_batch() {
  local concurrent=$1 name=$2 input_lines=$3
  local out="$work/out-$name-$round.jsonl" summary="$work/$name-$round.json"
  rm -f "$out"
  $ours run --cluster "$gateways" --stages 2 --model "$dir/hf" --input "$work/input-$concurrent.jsonl" --output "$out" \
    --max-concurrent "$concurrent" --json 2> "$work/$name-$round.log" > "$summary" \
    || { echo "$name round $round: ftpcluster run failed:"; tail -20 "$work/$name-$round.log"; exit 1; }
  python3 scripts/check-run-summary.py "$summary" "$name" "$input_lines" "$gen_tokens"
}

# Neither side pays its first calls' JIT in round 1: one streamed request and a one-line job, not measured.
round=warmup
python3 scripts/bench-http-load.py --url "http://127.0.0.1:$http_port" --input "$work/input.jsonl" --clients 1 --lines 1 \
  --expect-tokens "$gen_tokens" --out "$work/warmup-http.json" 2> "$work/warmup-http.log" \
  || { echo "warm-up stream failed:"; tail -20 "$work/warmup-http.log"; exit 1; }
$ours run --cluster "$gateways" --stages 2 --model "$dir/hf" --input "$work/input-warmup.jsonl" --output "$work/out-warmup.jsonl" \
  --max-concurrent 1 --json > /dev/null 2> "$work/warmup-run.log" \
  || { echo "warm-up run failed:"; tail -20 "$work/warmup-run.log"; exit 1; }

cut -d' ' -f1-3 /proc/loadavg > "$work/load-start"
echo "load average at start: $(cat "$work/load-start")"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg > "$work/load-$round"
  for c in $levels; do
    run_http "$c" "http$c" "$(level_lines "$c")"
    run_batch "$c" "run$c" "$(level_lines "$c")"
  done
done
cut -d' ' -f1-3 /proc/loadavg > "$work/load-end"
echo "load average at end: $(cat "$work/load-end")"

python3 - "$work" "$rounds" "$lines" "$gen_tokens" "$serial_lines" "$preset" "$summary_path" $levels <<'PY'
import json, statistics, sys
work, rounds, lines, gen_tokens, serial_lines, preset, summary_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
levels = [int(c) for c in sys.argv[8:]]
median = statistics.median
rounds_of = range(1, rounds + 1)
load = lambda name: open(f"{work}/load-{name}").read().split()
def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
http = {c: [json.load(open(f"{work}/http{c}-{r}.json")) for r in rounds_of] for c in levels}
runs = {c: [json.load(open(f"{work}/run{c}-{r}.json")) for r in rounds_of] for c in levels}
rate = {("http", c): [x["generated_tokens_per_second"] for x in http[c]] for c in levels}
rate.update({("run", c): [x["generated_tokens_per_second"] for x in runs[c]] for c in levels})
med = {key: median(values) for key, values in rate.items()}
# Each round's two runs were back to back: their ratio sees less of the drift than a ratio of medians does.
ratios = {c: [h / b for h, b in zip(rate["http", c], rate["run", c])] for c in levels}
ttft = {c: [r["ttft_seconds"] for x in http[c] for r in x["results"]] for c in levels}
# Temperature 0 and batch-invariant kernels: each stream's text is the job's text for the same line in the same round.
def job_texts(c, r):
    texts = {}
    for line in open(f"{work}/out-run{c}-{r}.jsonl"):
        result = json.loads(line)
        texts[result["custom_id"]] = result["response"]["body"]["choices"][0]["text"]
    return texts
same_text = {c: sum(res["text"] == job_texts(c, r).get(res["custom_id"]) for r, x in zip(rounds_of, http[c]) for res in x["results"])
             for c in levels}
requests = {c: serial_lines if c == 1 else lines for c in levels}

print(f"\n{preset} f32, 2 stages (1 thread each), {gen_tokens} generated tokens a request; median over {rounds} rounds")
print(f"load average: start {' '.join(load('start'))}, end {' '.join(load('end'))}")
print(f"{'clients':>7} {'requests':>8} {'http tok/s':>10} {'run tok/s':>9} {'http/run':>8} {'per-round http/run':>22} "
      f"{'TTFT median':>11} {'TTFT p90':>8} {'same text':>9}")
for c in levels:
    print(f"{c:7} {requests[c]:8} {med['http', c]:10.1f} {med['run', c]:9.1f} {median(ratios[c]):7.2f}x "
          f"{', '.join(f'{x:.2f}' for x in ratios[c]):>22} {median(ttft[c]):10.2f}s {p90(ttft[c]):7.2f}s "
          f"{same_text[c]:4}/{len(ttft[c])}")
print("tokens/s per round:")
for c in levels:
    print(f"  {c:2} clients: http {', '.join(f'{v:.1f}' for v in rate['http', c])}; run {', '.join(f'{v:.1f}' for v in rate['run', c])}")
at64 = median(ratios[64]) if 64 in levels else None
if at64 is not None:
    print(f"goal: at 64 clients, tokens/s within 10% of run: {at64:.2f}x, " + ("met" if at64 >= 0.9 else f"NOT met ({1 - at64:.0%} below run)"))
if any(same_text[c] != len(ttft[c]) for c in levels):
    print("note: some streamed texts differ from the job's text for the same line (see 'same text')")

if summary_path:
    summary = {
        "preset": preset, "dtype": "f32", "stages": 2, "threads_per_silo": 1, "lines": lines, "gen_tokens": gen_tokens,
        "rounds": rounds, "one_client_lines": serial_lines,
        "load_average": {"start": load("start"), "end": load("end"), "per_round": [load(r) for r in rounds_of]},
        "levels": {str(c): {
            "requests": requests[c],
            "http_tokens_per_second_rounds": rate["http", c], "run_tokens_per_second_rounds": rate["run", c],
            "median_http_tokens_per_second": med["http", c], "median_run_tokens_per_second": med["run", c],
            "http_over_run_rounds": ratios[c], "median_http_over_run": median(ratios[c]),
            "ttft_seconds_median": median(ttft[c]), "ttft_seconds_p90": p90(ttft[c]),
            "ttft_seconds_median_rounds": [median(r["ttft_seconds"] for r in x["results"]) for x in http[c]],
            "streams_with_the_jobs_text": same_text[c], "streams": len(ttft[c]),
        } for c in levels},
        "run_summaries": {str(c): runs[c] for c in levels},
    }
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"summary: {summary_path}")
PY
