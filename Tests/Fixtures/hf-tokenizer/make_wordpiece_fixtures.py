#!/usr/bin/env python3
"""BERT-style WordPiece tokenizer.json fixtures (Tests/AttribTests/HFTokenizerTests.swift), the
tokenizers that BERT, DistilBERT and their kin ship, trained here with `tokenizers` on
make_tokenizer_fixtures.TRAIN (no hub downloads), and the library's ids for every corpus line.

Writes, in wordpiece/:
  uncased/tokenizer.json  BertNormalizer(lowercase, accents stripped through NFD, Chinese
                          characters spaced, control characters removed), BertPreTokenizer,
                          WordPiece ("##" continuation, [UNK]), TemplateProcessing [CLS] $A [SEP],
                          decoder WordPiece (cleanup)
  cased/tokenizer.json    the same without lowercasing or accent stripping, the older
                          BertProcessing post-processor, max_input_chars_per_word 12
  expected.json           per tokenizer and line of corpus.json (lines, random_lines, and the
                          lines below with special tokens in text): ids with and without special
                          tokens, and decode(ids, skip_special_tokens=False) of each
  vocab/vocab.txt         the uncased vocabulary as BERT's vocab.txt (one token per line, by id),
                          with expected.json's "vocab_txt": the ids transformers'
                          BertTokenizerFast.from_pretrained(the directory, do_lower_case=True) gives, what a model
                          directory with vocab.txt and no tokenizer.json is tokenized as

    python3 Tests/Fixtures/hf-tokenizer/make_wordpiece_fixtures.py
"""
import json, os, sys

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_tokenizer_fixtures import TRAIN  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EXTRA = ["[CLS] hello [SEP] world [MASK]", "a[MASK]b [unk] [UNK]", "ÀÉÎ ĲǅẞİŞ ﬁ Å Ω", "中文的字 and 日本 한국"]


def make(lowercase, bert_processing, max_chars):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=max_chars))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=SPECIALS, limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(TRAIN, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if bert_processing:
        tok.post_processor = processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls))
    else:
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                           special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


corpus = json.load(open(os.path.join(HERE, "corpus.json"), encoding="utf-8"))
lines = corpus["lines"] + EXTRA + corpus["random_lines"]
expected = {"tokenizers_version": tokenizers.__version__, "lines": lines, "tokenizers": {}}
for name, lowercase, bert_processing, max_chars in [("uncased", True, False, 100), ("cased", False, True, 12)]:
    tok = make(lowercase, bert_processing, max_chars)
    d = os.path.join(HERE, "wordpiece", name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    tok.save(path, pretty=True)
    again = Tokenizer.from_file(path)
    out = {"ids": [], "ids_plain": [], "decoded": [], "decoded_plain": []}
    for text in lines:
        ids, plain = again.encode(text).ids, again.encode(text, add_special_tokens=False).ids
        assert ids == tok.encode(text).ids
        out["ids"].append(ids); out["ids_plain"].append(plain)
        out["decoded"].append(again.decode(ids, skip_special_tokens=False))
        out["decoded_plain"].append(again.decode(plain, skip_special_tokens=False))
    expected["tokenizers"][name] = out
    unk = tok.token_to_id("[UNK]")
    print(f"{name}: {tok.get_vocab_size()} tokens, {sum(map(len, out['ids']))} ids, {sum(i == unk for x in out['ids'] for i in x)} [UNK]")
    if name == "uncased":
        from transformers import BertTokenizerFast
        vd = os.path.join(HERE, "wordpiece", "vocab")
        os.makedirs(vd, exist_ok=True)
        by_id = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        assert [i for _, i in by_id] == list(range(len(by_id)))
        with open(os.path.join(vd, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t, _ in by_id))
        bert = BertTokenizerFast.from_pretrained(vd, do_lower_case=True)   # reads vd/vocab.txt
        expected["vocab_txt"] = [bert(text)["input_ids"] for text in lines]
with open(os.path.join(HERE, "wordpiece", "expected.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
