#!/usr/bin/env python3
"""The benchmarks' batch input: LINES /v1/completions requests to model `hf` whose prompts are 16 to 32 random token
ids of the model's vocabulary (a fixed seed, so every run and every script sends the same), max_tokens GEN_TOKENS,
temperature 0. Usage: bench-requests.py OUT.jsonl LINES GEN_TOKENS CONFIG.json"""
import json, random, sys

path, lines, gen_tokens, config = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vocab = json.load(open(config))["vocab_size"]
rng = random.Random(20261205)
with open(path, "w") as f:
    for i in range(lines):
        prompt = [rng.randrange(vocab) for _ in range(rng.randint(16, 32))]
        body = {"model": "hf", "prompt": prompt, "max_tokens": gen_tokens, "temperature": 0}
        f.write(json.dumps({"custom_id": f"seq-{i:02d}", "method": "POST", "url": "/v1/completions", "body": body}) + "\n")
