"""Reference logits for decoders whose weight matrices are stored at 16 bits.

For the tiny llama (grouped KV, tied embeddings) and gpt_neox (fused qkv, biases) fixtures
made by make_llm_fixtures.py: every 2-D parameter (the linear weights and the embeddings, as
Attrib's --dtype stores them) is rounded to bfloat16 or float16 by PyTorch (round to
nearest even) and widened back, the 1-D ones (norms, biases) are left in float32, and
transformers computes the logits of the clean prompts in float32. Writes
<family>/half.safetensors: logits_bf16, logits_f16 (float64 copies of the float32 logits).

    python3 Tests/Fixtures/llm/make_half_fixtures.py
"""
import os
import torch
import transformers
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))

for family in ["llama", "gpt_neox"]:
    d = os.path.join(HERE, family)
    ids = load_file(os.path.join(d, "reference.safetensors"))["tokens_clean"].long()
    out = {}
    with torch.no_grad():
        full = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        base = full(ids).logits
        for name, dt in [("bf16", torch.bfloat16), ("f16", torch.float16)]:
            m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
            for p in m.parameters():
                if p.ndim == 2:
                    p.copy_(p.to(dt).to(torch.float32))
            logits = m(ids).logits
            out["logits_" + name] = logits.double().contiguous()
            rel = ((logits - base).norm() / base.norm()).item()
            print(f"{family} {name}: logits differ from the float32 weights' by {rel:.2e} (normwise)")
    save_file(out, os.path.join(d, "half.safetensors"))
    print("wrote", os.path.join(d, "half.safetensors"))
