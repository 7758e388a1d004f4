#!/usr/bin/env python3
"""A SentencePiece-score tokenizer in a GGUF file, as llama.cpp stores Llama 2's and Mistral's
(tokenizer.ggml.model = "llama": tokens, scores, token types; no merges), with the ids the
`sentencepiece` library itself gives (Tests/AttribTests/HFTokenizerTests.swift).

Trains a sentencepiece BPE model on make_tokenizer_fixtures.TRAIN with Llama 2's options
(identity normalization, no whitespace collapsing, a dummy prefix, digits split, byte fallback,
<unk> <s> </s> at ids 0-2) and a character coverage below 1, so rare characters take the byte
fallback. Writes, in spm/:
  tokenizer.gguf   the GGUF (no tensors): tokenizer.ggml.{model, tokens, scores, token_type,
                   bos/eos/unknown_token_id, add_bos_token, add_space_prefix}
  expected.json    per line of corpus.json (lines and random_lines): sentencepiece's
                   encode(line) and decode(ids)

Lines that spell a control token (<s>, </s>, <unk>) are left out: sentencepiece reads them as
text, while llama.cpp and transformers match them as special tokens.

    python3 Tests/Fixtures/hf-tokenizer/make_spm_gguf_fixture.py
"""
import io, json, os, sys

import gguf
import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_tokenizer_fixtures import TRAIN  # noqa: E402

out_dir = os.path.join(HERE, "spm")
os.makedirs(out_dir, exist_ok=True)
model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(TRAIN), model_writer=model, model_type="bpe", vocab_size=500,
    character_coverage=0.98, byte_fallback=True, normalization_rule_name="identity",
    remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
    allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    user_defined_symbols=["<tool>"], minloglevel=2)
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

tokens, scores, types = [], [], []
for i in range(sp.get_piece_size()):
    tokens.append(sp.id_to_piece(i))
    scores.append(sp.get_score(i))
    # llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    t = 1
    if sp.is_unknown(i): t = 2
    elif sp.is_control(i): t = 3
    elif sp.is_unused(i): t = 5
    elif sp.is_byte(i): t = 6
    elif tokens[-1] == "<tool>": t = 4
    types.append(t)

w = gguf.GGUFWriter(os.path.join(out_dir, "tokenizer.gguf"), "llama")
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_unk_token_id(0)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_add_bos_token(True)
w.add_add_space_prefix(True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

corpus = json.load(open(os.path.join(HERE, "corpus.json"), encoding="utf-8"))
lines = [l for l in corpus["lines"] + corpus["random_lines"] if not any(s in l for s in ("<s>", "</s>", "<unk>", "<tool>"))]
ids = [sp.encode(l) for l in lines]
expected = {"sentencepiece": spm.__version__, "lines": lines, "ids": ids, "decoded": [sp.decode(x) for x in ids],
            "bos": 1, "eos": 2, "tool": tokens.index("<tool>")}
with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
fallback = sum(1 for x in ids for i in x if types[i] == 6)
print(f"{len(tokens)} tokens, {len(lines)} lines, {sum(map(len, ids))} ids, {fallback} byte-fallback ids")
