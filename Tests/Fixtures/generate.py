#!/usr/bin/env python3
"""Writes the project's own golden fixtures under Tests/Fixtures/ with the real Python libraries.

    python3 -m venv /tmp/fixtures-venv && /tmp/fixtures-venv/bin/pip install -r Tests/Fixtures/requirements.txt
    /tmp/fixtures-venv/bin/python Tests/Fixtures/generate.py

Run it by hand (outside the repo's venv-free test suite: tests read the committed files and
never run Python). Output is deterministic: re-running it rewrites identical bytes.

chat_templates/: every template in chat_templates/templates/ x every case below x
add_generation_prompt, rendered by transformers' own `render_jinja_template` (the function behind
`tokenizer.apply_chat_template(..., tokenize=False)`), with `strftime_now` frozen at
2024-07-26 12:00:00. Each line of renders.jsonl has the exact string or the error the template
raised, and for each assistant turn the span a trainer supervises.
"""
import datetime as _dt
import hashlib
import json
import os
import sys

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

HERE = os.path.dirname(os.path.abspath(__file__))
CHAT = os.path.join(HERE, "chat_templates")
FROZEN = _dt.datetime(2024, 7, 26, 12, 0, 0)


class _FrozenDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN


ctu.datetime = _FrozenDatetime  # what strftime_now() calls

TOKENS = {  # bos/eos each template is used with (None: not passed, undefined in the template)
    "smollm2-135m-instruct": ("<|im_start|>", "<|im_end|>"),
    "qwen2.5-0.5b-instruct": (None, "<|im_end|>"),
    "qwen3-0.6b": (None, "<|im_end|>"),
    "llama-3.2-1b-instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral-nemo-instruct-2407": ("<s>", "</s>"),
    "phi-3-mini-4k-instruct": ("<s>", "<|endoftext|>"),
    "tinyllama-1.1b-chat-v1.0": ("<s>", "</s>"),
    "gemma-style": ("<bos>", "<eos>"),
    "llama2-style": ("<s>", "</s>"),
}
DEFAULT_TOKENS = ("<s>", "</s>")

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Lyon"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}

CASES = [
    {"id": "one_exchange", "messages": [
        {"role": "user", "content": "Hello there!"},
        {"role": "assistant", "content": "Hello! What can I do for you?"}]},
    {"id": "system_two_exchanges", "messages": [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Air scatters blue light more than red."},
        {"role": "user", "content": "And sunsets?"},
        {"role": "assistant", "content": "Light crosses more air, so the blue is scattered away."}]},
    {"id": "ends_with_user", "messages": [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "Another one, please."}]},
    {"id": "system_and_user", "messages": [
        {"role": "system", "content": "Reply in German."},
        {"role": "user", "content": "Good evening"}]},
    {"id": "empty_assistant_turn", "messages": [
        {"role": "user", "content": "Stay silent."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Now talk."},
        {"role": "assistant", "content": "Talking."}]},
    {"id": "padded_whitespace", "messages": [
        {"role": "system", "content": "\n  Be kind.\t\n"},
        {"role": "user", "content": "   two  spaces\n\nand lines  "},
        {"role": "assistant", "content": "\nleading newline, trailing spaces   "}]},
    {"id": "jinja_lookalikes", "messages": [
        {"role": "user", "content": "Keep {{ this }} and {% that %} and {# those #}; quotes ' \" and \\ backslash."},
        {"role": "assistant", "content": "{\"json\": [1, 2], \"html\": \"<b>&amp;</b>\"}"}]},
    {"id": "unicode_text", "messages": [
        {"role": "user", "content": "Ça va? Grüße — 中文字符 — 👩🏾‍💻 🇯🇵 — a\u0301"},
        {"role": "assistant", "content": "Très bien. Ω ≈ ∑ — ελληνικά"}]},
    {"id": "thinking_in_content", "messages": [
        {"role": "user", "content": "What is 6*7?"},
        {"role": "assistant", "content": "<think>\nSix sevens.\n</think>\n\n42"},
        {"role": "user", "content": "Half of it?"},
        {"role": "assistant", "content": "<think>\n42 / 2\n</think>\n\n21"}]},
    {"id": "thinking_field", "messages": [
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome.", "thinking": "It is Rome."}]},
    {"id": "thinking_disabled", "messages": [
        {"role": "user", "content": "Ping"},
        {"role": "assistant", "content": "Pong"},
        {"role": "user", "content": "Again"}], "extra_kwargs": {"enable_thinking": False}},
    {"id": "two_users_in_a_row", "messages": [
        {"role": "user", "content": "Part one."},
        {"role": "user", "content": "Part two."},
        {"role": "assistant", "content": "Both parts read."}]},
    {"id": "system_first_only", "messages": [
        {"role": "system", "content": "Be terse."}]},
    {"id": "tool_roundtrip", "messages": [
        {"role": "user", "content": "Weather in Lyon?"},
        {"role": "assistant", "tool_calls": [{"id": "abc123XYZ", "type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Lyon", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "name": "get_weather", "content": "{\"temp\": 18}"},
        {"role": "assistant", "content": "It is 18 degrees in Lyon."}], "tools": [WEATHER_TOOL]},
    {"id": "tools_offered", "messages": [
        {"role": "system", "content": "You can check the weather."},
        {"role": "user", "content": "Is it raining in Oslo?"}], "tools": [WEATHER_TOOL]},
    {"id": "extra_fields", "messages": [
        {"role": "user", "content": "Hi", "extra": {"note": 1}, "name": "ann"},
        {"role": "assistant", "content": "Hello, Ann."}]},
]


def render(template, messages, agp, bos, eos, tools, extra):
    kwargs = dict(extra)
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    out, _ = ctu.render_jinja_template(conversations=[messages], tools=tools, chat_template=template,
                                       add_generation_prompt=agp, **kwargs)
    return out[0]


def spans(template, messages, bos, eos, tools, extra, full):
    result = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        try:
            prefix = render(template, messages[:i], True, bos, eos, tools, extra) if i else None
            upto = render(template, messages[:i + 1], False, bos, eos, tools, extra)
        except Exception as e:  # a template that refuses a partial conversation
            result.append({"message_index": i, "error": str(e)})
            continue
        start = len(prefix) if prefix is not None else None
        result.append({"message_index": i, "prefix_len": start, "upto_len": len(upto),
                       "prefix_is_prefix_of_upto": prefix is not None and upto.startswith(prefix),
                       "upto_is_prefix_of_full": full.startswith(upto),
                       "text": upto[start:] if prefix is not None and upto.startswith(prefix) else None})
    return result


def main():
    names = sorted(f[:-6] for f in os.listdir(os.path.join(CHAT, "templates")) if f.endswith(".jinja"))
    with open(os.path.join(CHAT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": {"generator": "Tests/Fixtures/generate.py", "transformers_version": transformers.__version__,
                            "jinja2_version": jinja2.__version__, "frozen_strftime_now": FROZEN.isoformat()},
                   "cases": CASES}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    lines = []
    for name in names:
        with open(os.path.join(CHAT, "templates", name + ".jinja"), encoding="utf-8") as f:
            template = f.read()
        bos, eos = TOKENS.get(name, DEFAULT_TOKENS)
        for case in CASES:
            tools = case.get("tools")
            extra = case.get("extra_kwargs", {})
            for agp in (False, True):
                record = {"template": name, "case": case["id"], "add_generation_prompt": agp, "bos_token": bos,
                          "eos_token": eos, "extra_kwargs": extra, "tools_passed": tools is not None}
                try:
                    text = render(template, case["messages"], agp, bos, eos, tools, extra)
                    record.update(rendered=text, error=None,
                                  rendered_sha256=hashlib.sha256(text.encode()).hexdigest(),
                                  assistant_spans=spans(template, case["messages"], bos, eos, tools, extra, text))
                except Exception as e:
                    record.update(rendered=None, error={"type": type(e).__name__, "message": str(e)})
                lines.append(json.dumps(record, ensure_ascii=False))
    with open(os.path.join(CHAT, "renders.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} renderings of {len(names)} templates x {len(CASES)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
