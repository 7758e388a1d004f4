#!/usr/bin/env python3
"""Make the GPT-2 tokenizer fixtures (Tests/AttribTests/TokenizerTests.swift).

Writes, next to this script:
  vocab.json, merges.txt   a small byte-level BPE vocabulary (GPT-2's format:
                           GPT-2's byte-to-unicode table, merges ranked by line),
                           trained with `tokenizers`' ByteLevelBPETokenizer on
                           CORPUS below (The Zen of Python plus a few sentences
                           with contractions, digits and non-ASCII words);
                           id 0 is the special token <|endoftext|>
  cases.json               {"versions": {...}, "vocab_size": N,
                            "cases": [{"text": str, "ids": [int], "tokens": [str],
                                       "decoded": str, "pieces": [str]}, ...],
                            "whitespace": [int]}
                           ids/tokens/decoded from transformers' GPT2Tokenizer
                           loaded from vocab.json + merges.txt; pieces from the
                           pre-tokenizer alone (tokenizers' ByteLevel, the whole
                           text, <|endoftext|> not treated specially);
                           whitespace: the code points that pre-tokenizer takes
                           for \\s (found by probing every code point)

The expected ids are also checked here against an independent Python port of
OpenAI's original encoder (the `regex` pre-tokenizer and the merge loop of
GPT-2's encoder.py), so the fixture does not rest on one implementation.

    python3 -m venv /tmp/tokwork/venv && /tmp/tokwork/venv/bin/pip install transformers tokenizers
    /tmp/tokwork/venv/bin/python Tests/Fixtures/tokenizer/make_fixtures.py
"""

from __future__ import annotations

import codecs
import json
import os
import sys
import tempfile

import regex
import tokenizers
import transformers
from tokenizers import ByteLevelBPETokenizer, pre_tokenizers
from transformers import GPT2Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_SIZE = 500

# The Zen of Python, decoded from the rot13 text of the `this` module without
# importing it (importing prints it).
import importlib.util  # noqa: E402
_spec = importlib.util.find_spec("this")
with open(_spec.origin, encoding="utf-8") as _f:
    _src = _f.read()
ZEN = codecs.decode(_src.split('"""', 2)[1], "rot13")

CORPUS = [ZEN] + [
    "It's the model's job, isn't it? We'll see; they'd said they're sure and I'm not.",
    "You've got 3 apples, 12 pears and 2048 plums: 3 + 12 = 15, 2048 * 2 = 4096.",
    "The café's naïve façade — déjà vu! Ελληνικά κείμενα, русский текст, 日本語のテキスト.",
    "Emoji: 🙂 🚀🚀 👍🏽 and symbols © ® ™ € £ ¥ ½ ¾ ² ³ ° ± × ÷.",
    "Tabs\tand  double  spaces,\nnew lines\n\nand   trailing spaces   \n",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(7))\n",
    "https://example.com/path?query=1&other=two#frag <tag attr=\"v\"/> {json: [1, 2]}",
    "UPPER lower MiXeD CamelCase snake_case kebab-case 3.14159 1,000,000 0x1F -42",
] * 3

CASES = [
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello   world",
    "   leading spaces",
    "trailing spaces   ",
    "",
    " ",
    "  ",
    "\n",
    "a\nb",
    "a \nb",
    "a\n\nb",
    "a \n b",
    "line one\n\n\nline two\n",
    "\ttab\tseparated\tvalues",
    "mixed \t\n whitespace",
    "It's the model's job, isn't it?",
    "We'll see; they'd said they're sure and I'm not. You've got it.",
    "'s 't 're 've 'm 'll 'd",
    "don'T SHOUT'S 'S",
    "quote 'single' \"double\" `back`",
    "!!'s ...'re",
    "3 apples, 12 pears and 2048 plums",
    "3.14159 1,000,000 -42 +7 1e-5",
    "x1y2z3 abc123def 123abc",
    "Ⅻ ½ ²³ ٣٤٥ ۱۲",
    "Hello, world! How are you?",
    "a.b,c;d:e!f?g",
    "(parentheses) [brackets] {braces} <angles>",
    "email@example.com https://example.com/a?b=1&c=2#d",
    "def f(x):\n    return x ** 2  # square\n",
    "The café's naïve façade — déjà vu!",
    "Ελληνικά κείμενα",
    "русский текст",
    "日本語のテキスト",
    "中文 한국어 עברית العربية",
    "🙂",
    "Emoji: 🙂 🚀🚀 👍🏽!",
    "family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵",
    "combining: e\u0301 a\u0308 n\u0303",
    "zero\u200bwidth\u200djoiner",
    "nbsp\u00a0here and\u3000ideographic space",
    "controls \x00\x01\x7f end",
    "separators \x1c\x1d\x1e\x1f end",
    "next line \x85 and line sep \u2028 para \u2029 end",
    "vertical\x0btab form\x0cfeed carriage\rreturn\r\n",
    "UPPER lower MiXeD CamelCase snake_case kebab-case",
    "The Zen of Python, by Tim Peters",
    "Beautiful is better than ugly. Explicit is better than implicit.",
    "Although never is often better than *right* now.",
    "<|endoftext|>",
    "Hello<|endoftext|>world",
    "first document. <|endoftext|> second document",
    "a" * 40,
    " ".join(["word"] * 20),
    "™€£¥©®°±×÷",
    "\U0001F600\U0001F601\U0001F602 \U00010348 \U0001D11E",
]


# ---- an independent reference: OpenAI's GPT-2 encoder.py, ported -------------

def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def reference_encode(text: str, vocab: dict[str, int], merges: list[tuple[str, str]]) -> list[int]:
    ranks = {m: i for i, m in enumerate(merges)}
    benc = bytes_to_unicode()
    ids: list[int] = []
    parts = regex.split(r"(<\|endoftext\|>)", text)
    for part in parts:
        if part == "<|endoftext|>":
            ids.append(vocab[part])
            continue
        for piece in PAT.findall(part):
            word = [benc[b] for b in piece.encode("utf-8")]
            while len(word) > 1:
                pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
                best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
                if best not in ranks:
                    break
                out, i = [], 0
                while i < len(word):
                    if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                        out.append(word[i] + word[i + 1])
                        i += 2
                    else:
                        out.append(word[i])
                        i += 1
                word = out
            ids.extend(vocab[w] for w in word)
    return ids


PRE = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def whitespace_code_points() -> list[int]:
    """The code points the pre-tokenizer's \\s matches: "x" + c + c + "!" splits as
    x, c, c, ! only for a whitespace c (\\s+(?!\\S) takes the first c, \\s+ the
    second); a letter joins x, a number or a symbol makes one piece cc or cc!.
    The space is the exception (" !" is one piece): it is checked on its own."""
    benc = bytes_to_unicode()
    assert [p for p, _ in PRE.pre_tokenize_str("x  \n!")] == ["x", "ĠĠ", "Ċ", "!"]
    out = [0x20]
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or cp == 0x20:
            continue
        c = "".join(benc[b] for b in chr(cp).encode("utf-8"))
        if [p for p, _ in PRE.pre_tokenize_str("x" + chr(cp) * 2 + "!")] == ["x", c, c, "!"]:
            out.append(cp)
    return sorted(out)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = os.path.join(tmp, "corpus.txt")
        with open(corpus_file, "w", encoding="utf-8") as f:
            f.write("\n".join(CORPUS))
        bpe = ByteLevelBPETokenizer()
        bpe.train([corpus_file], vocab_size=VOCAB_SIZE, min_frequency=2,
                  special_tokens=["<|endoftext|>"], show_progress=False)
        bpe.save_model(HERE)  # vocab.json, merges.txt

    with open(os.path.join(HERE, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(HERE, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
    print(f"vocabulary: {len(vocab)} tokens, {len(merges)} merges")

    tok = GPT2Tokenizer.from_pretrained(HERE)
    assert not tok.add_bos_token if hasattr(tok, "add_bos_token") else True
    cases = []
    mismatches = 0
    for text in CASES:
        ids = tok.encode(text, add_special_tokens=False)
        ref = reference_encode(text, vocab, merges)
        if ids != ref:
            mismatches += 1
            print(f"mismatch for {text!r}:\n  transformers {ids}\n  reference    {ref}", file=sys.stderr)
        decoded = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if decoded != text:
            print(f"note: {text!r} decodes to {decoded!r}", file=sys.stderr)
        pieces = [text[a:b] for _, (a, b) in PRE.pre_tokenize_str(text)]
        assert "".join(pieces) == text, (text, pieces)
        cases.append({"text": text, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids), "decoded": decoded,
                      "pieces": pieces})
    if mismatches:
        print(f"error: {mismatches} cases differ between transformers and the reference encoder", file=sys.stderr)
        return 1

    out = {
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "vocab_size": len(vocab),
        "cases": cases,
        "whitespace": whitespace_code_points(),
    }
    with open(os.path.join(HERE, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
