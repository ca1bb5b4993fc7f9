#!/usr/bin/env python3
"""Checks a `ftpcluster run --json` summary is the whole job (every line succeeded, each generated all its tokens)
and prints its generated tokens/s; exits non-zero naming what differs otherwise.
Usage: check-run-summary.py SUMMARY.json NAME LINES GEN_TOKENS"""
import json, sys

path, name, lines, gen_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = json.load(open(path))
want = {"lines": lines, "succeeded": lines, "failed": 0, "generated_tokens": lines * gen_tokens}
wrong = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
if wrong:
    sys.exit(f"{name}: summary {path} is not the whole job (got, expected): {wrong}")
print(f"  {name:16} {s['generated_tokens_per_second']:8.1f} generated tok/s ({s['generated_tokens']} tokens in {s['seconds']:.1f} s)")
