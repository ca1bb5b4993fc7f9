#!/usr/bin/env bash
# A screenshot of the Aspire dashboard showing FtpCluster's metrics after a small batch, as the README shows it:
# starts the app host (three silos serving the aidreams260K test model under the name samples/requests.jsonl gives),
# runs samples/requests.jsonl through the
# cluster, waits for the metrics to reach the dashboard, and photographs its metrics page with headless Chromium
# (Debian's `chromium` package) driven by scripts/screenshot.mjs (Node's DevTools-protocol client: the dashboard renders
# over a WebSocket after its page loads, which `chromium --screenshot` does not wait for).
# Usage: scripts/dashboard-screenshot.sh [out.png=docs/dashboard.png] [instrument=ftpcluster.block.tokens.computed]
set -euo pipefail
out=$(realpath -m "${1:-docs/dashboard.png}")
instrument=${2:-ftpcluster.block.tokens.computed}
cd "$(dirname "$0")/.."
model=$(realpath ../shared/models/aidreams260K/aidreams260K.bin)
served=HuggingFaceTB/SmolLM2-135M-Instruct
command -v chromium >/dev/null || { echo "needs chromium (apt-get install chromium)"; exit 1; }
command -v node >/dev/null || { echo "needs node (20 or later)"; exit 1; }
dotnet build -c Release AppHost/FtpCluster.AppHost.csproj >/dev/null
dotnet build -c Release Client/FtpCluster.Client.csproj >/dev/null

work=$(mktemp -d /tmp/ftp-dashboard-XXXXXX)
# The dashboard without its login token, for the browser below (loopback only, as the app host binds it).
export ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS=true
dotnet run -c Release --no-build --project AppHost -- --Model "$model=$served" > "$work/apphost.log" 2>&1 &
apphost=$!
trap 'kill $apphost 2>/dev/null; wait $apphost 2>/dev/null; rm -rf "$work"' EXIT

for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:8080/health/ready >/dev/null 2>&1 && break
  kill -0 $apphost 2>/dev/null || { echo "the app host exited:"; tail -20 "$work/apphost.log"; exit 1; }
  sleep 1
done
curl -sf http://127.0.0.1:8080/health/ready >/dev/null || { echo "silo a not ready after 120 s"; tail -20 "$work/apphost.log"; exit 1; }

# The small batch, through the served deployment (the same model and stage count give the same deployment).
dotnet Client/bin/Release/net10.0/ftpcluster.dll run --cluster 127.0.0.1:30000,127.0.0.1:30001,127.0.0.1:30002 --stages 3 \
  --model "$model" --input samples/requests.jsonl --output "$work/results.jsonl" > /dev/null
# And a few streamed chat completions over HTTP, for time to first token.
for i in 1 2 3 4; do
  curl -sN http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d "{\"model\": \"$served\", \"messages\": [{\"role\": \"user\", \"content\": \"Dream $i\"}], \"max_tokens\": 40, \"stream\": true}" > /dev/null
done
# Metrics reach the dashboard on the exporter's interval.
sleep 15
url="http://localhost:15888/metrics/resource/silo-a?meter=FtpCluster&instrument=$instrument&duration=5&view=Graph"
node --experimental-websocket --no-warnings scripts/screenshot.mjs "$url" "$out" 12
echo "($url)"
