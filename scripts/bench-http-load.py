#!/usr/bin/env python3
"""Load generator for scripts/bench-http.sh: streaming completions against an OpenAI-compatible server.

C clients, each on its own keep-alive connection, send their share of a batch file's request bodies one after
another (client k takes lines k, k + C, k + 2C, ...) as `stream: true` with `stream_options.include_usage`, and
parse the server-sent events. Per request: time to first token (the first chunk whose text is not empty), the
completion tokens of the usage chunk, the finish reason, the text, and whether the stream ended with `data: [DONE]`.
The whole load's generated tokens/s is the usage tokens over the wall time from the first request sent to the last
stream ended. Exits 1, after writing the result, unless every stream is whole: status 200, [DONE] at its end, text
before it, and exactly --expect-tokens completion tokens with finish reason "length".

Usage: bench-http-load.py --url http://127.0.0.1:PORT --input FILE.jsonl --clients C --lines N
                          --expect-tokens T --out RESULT.json
Standard library only.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def read_bodies(path, lines):
    bodies = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if len(bodies) == lines:
                break
            request = json.loads(line)
            if request.get("url") != "/v1/completions":
                sys.exit(f"{path}:{number}: url is {request.get('url')!r}; this load generator sends /v1/completions only")
            body = dict(request["body"], stream=True, stream_options={"include_usage": True})
            bodies.append((request["custom_id"], body))
    if len(bodies) < lines:
        sys.exit(f"{path} holds {len(bodies)} requests, fewer than the {lines} asked for")
    return bodies


def stream_one(connection, custom_id, body):
    """Sends one streaming completion on an open connection and reads its events to the end."""
    result = {"custom_id": custom_id, "status": None, "ttft_seconds": None, "seconds": None, "completion_tokens": None,
              "finish_reason": None, "done": False, "chunks": 0, "text": "", "error": None}
    started = time.perf_counter()
    connection.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    result["status"] = response.status
    if response.status != 200:
        result["error"] = response.read().decode(errors="replace")[:500]
        result["seconds"] = time.perf_counter() - started
        return result
    pieces = []
    while True:
        line = response.readline()
        if not line:
            break
        line = line.rstrip(b"\r\n")
        if not line.startswith(b"data: "):
            continue
        payload = line[len(b"data: "):]
        if payload == b"[DONE]":
            result["done"] = True
            continue
        if result["done"]:
            result["error"] = "an event after data: [DONE]"
            continue
        chunk = json.loads(payload)
        result["chunks"] += 1
        if "error" in chunk:
            result["error"] = chunk["error"].get("message")
            continue
        for choice in chunk.get("choices", []):
            if choice.get("text"):
                if result["ttft_seconds"] is None:
                    result["ttft_seconds"] = time.perf_counter() - started
                pieces.append(choice["text"])
            if choice.get("finish_reason"):
                result["finish_reason"] = choice["finish_reason"]
        if chunk.get("usage"):
            result["completion_tokens"] = chunk["usage"]["completion_tokens"]
    result["seconds"] = time.perf_counter() - started
    result["text"] = "".join(pieces)
    return result


def run_client(url, requests, results, start, timeout):
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        start.wait()
        for custom_id, body in requests:
            try:
                results.append(stream_one(connection, custom_id, body))
            except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
                results.append({"custom_id": custom_id, "status": None, "done": False, "error": f"{type(e).__name__}: {e}"})
                connection.close()
    finally:
        connection.close()


def problems_of(result, expect_tokens):
    problems = []
    if result.get("error"):
        problems.append(f"error: {result['error']}")
    if result.get("status") != 200:
        problems.append(f"status {result.get('status')}")
    if not result.get("done"):
        problems.append("no data: [DONE] at its end")
    if result.get("completion_tokens") != expect_tokens:
        problems.append(f"{result.get('completion_tokens')} completion tokens, expected {expect_tokens}")
    if result.get("finish_reason") != "length":
        problems.append(f"finish_reason {result.get('finish_reason')!r}, expected 'length'")
    if result.get("ttft_seconds") is None:
        problems.append("no chunk with text")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server, http://HOST:PORT")
    parser.add_argument("--input", required=True, help="a batch file of /v1/completions requests")
    parser.add_argument("--clients", type=int, required=True, help="concurrent clients")
    parser.add_argument("--lines", type=int, required=True, help="how many of the file's requests to send, from its start")
    parser.add_argument("--expect-tokens", type=int, required=True, help="completion tokens every request must generate")
    parser.add_argument("--out", required=True, help="where the result goes, as JSON")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a socket read may wait (default 600)")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or not url.hostname or not url.port:
        sys.exit(f"--url must be http://HOST:PORT, got {args.url!r}")
    if not 1 <= args.clients <= args.lines:
        sys.exit(f"--clients must be 1 to --lines ({args.lines}), got {args.clients}")

    bodies = read_bodies(args.input, args.lines)
    results = []  # list.append is atomic: the clients share it
    start = threading.Barrier(args.clients + 1)
    clients = [threading.Thread(target=run_client, args=(url, bodies[k::args.clients], results, start, args.timeout))
               for k in range(args.clients)]
    for client in clients:
        client.start()
    start.wait()
    began = time.perf_counter()
    for client in clients:
        client.join()
    wall = time.perf_counter() - began

    generated = sum(r.get("completion_tokens") or 0 for r in results)
    summary = {
        "clients": args.clients, "requests": len(bodies), "seconds": wall, "generated_tokens": generated,
        "generated_tokens_per_second": generated / wall,
        "results": sorted(results, key=lambda r: r["custom_id"]),
    }
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    broken = {r["custom_id"]: p for r in results if (p := problems_of(r, args.expect_tokens))}
    missing = len(bodies) - len(results)
    if broken or missing:
        for custom_id, problems in sorted(broken.items())[:10]:
            print(f"{custom_id}: {'; '.join(problems)}", file=sys.stderr)
        sys.exit(f"{len(broken)} of {len(bodies)} streams not whole ({missing} never answered); see {args.out}")


if __name__ == "__main__":
    main()
