#!/usr/bin/env python3
"""Renders the test chat templates with Python's jinja2 exactly as Hugging Face transformers does, and writes
the expected renderings that the C# chat-template tests compare against.

Inputs (tests/FtpCluster.Compute.Tests/Chat/Templates/):
  *.jinja             templates written for the tests, in the shapes published models use
  conversations.json  {"special_tokens": {"default" | <template stem>: {...}}, "conversations": {name: messages}}
  snippets.json       [{"name", "template", "variables"}]: small templates for single engine features
Outputs (tests/FtpCluster.Compute.Tests/Chat/Renderings/):
  <template stem>.json  every conversation, with add_generation_prompt true and false
  snippets.json         every snippet
Each case holds "output", or "error" (the exception's message) and "raised_by_template" (true when the template
called raise_exception, whose message the C# engine must reproduce exactly).

Run from anywhere: python3 scripts/render-chat-templates.py (needs jinja2 3.x; Debian's python3-jinja2).
"""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2 import nodes
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
CHAT = ROOT / "tests" / "FtpCluster.Compute.Tests" / "Chat"
TEMPLATES = CHAT / "Templates"
RENDERINGS = CHAT / "Renderings"


class RaisedByTemplate(TemplateError):
    """What raise_exception raises; transformers raises TemplateError with the same message."""


def raise_exception(message):
    raise RaisedByTemplate(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' override: json.dumps without Jinja's HTML escaping, with its options exposed.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


class GenerationTag(Extension):
    """transformers' {% generation %} block (AssistantTracker): renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, variables):
    try:
        return {"output": env.from_string(source).render(**variables)}
    except Exception as error:  # the expected rendering of a failing case is its failure
        return {"error": str(error), "raised_by_template": isinstance(error, RaisedByTemplate)}


def write(path, value):
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main():
    if not jinja2.__version__.startswith("3."):
        sys.exit(f"jinja2 3.x expected, found {jinja2.__version__}")
    env = environment()
    RENDERINGS.mkdir(exist_ok=True)
    inputs = json.loads((TEMPLATES / "conversations.json").read_text(encoding="utf-8"))
    for template in sorted(TEMPLATES.glob("*.jinja")):
        source = template.read_text(encoding="utf-8")
        tokens = inputs["special_tokens"].get(template.stem, inputs["special_tokens"]["default"])
        cases = []
        for name, messages in inputs["conversations"].items():
            for add_generation_prompt in (True, False):
                case = {"conversation": name, "add_generation_prompt": add_generation_prompt}
                case.update(render(env, source, {"messages": messages, "add_generation_prompt": add_generation_prompt, **tokens}))
                cases.append(case)
        write(RENDERINGS / f"{template.stem}.json", {"template": template.name, "special_tokens": tokens, "cases": cases})
        print(f"{template.name}: {len(cases)} cases")

    snippets = json.loads((TEMPLATES / "snippets.json").read_text(encoding="utf-8"))
    results = []
    for snippet in snippets:
        variables = {"messages": [], "add_generation_prompt": True, **snippet["variables"]}
        results.append({"name": snippet["name"], **render(env, snippet["template"], variables)})
    write(RENDERINGS / "snippets.json", results)
    print(f"snippets.json: {len(results)} snippets")


if __name__ == "__main__":
    main()
