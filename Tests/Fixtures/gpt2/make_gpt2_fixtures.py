"""Makes Tests/Fixtures/gpt2: a tiny GPT-2 with fixed random weights saved as a
Hugging Face directory (tiny/config.json + tiny/model.safetensors, via
save_pretrained), and reference values computed by PyTorch in float64 from those
(float32) weights, in tiny/reference.safetensors:

  tokens_clean, tokens_corrupt [B, T] (int32), metric_tokens [B, 2] (target,
  contrast), logprob_tokens [B]
  logits_clean, logits_corrupt [B, T, V]
  metric_clean [B] = logits[:, -1, target] - logits[:, -1, contrast]
  grad.<node>.<l>  d(sum_b metric_b)/d(node), node in q k v pattern z attn_out
                   resid_mid mlp_pre mlp_post mlp_out resid_post; grad.embed
                   (= resid_pre of layer 0)
  lp.value [B], lp.grad.embed, lp.grad.pattern.<l>: the same for the
                   log-probability of logprob_tokens at the last position
  drop<l>.grad.<node>.<l'> and drop<l>.grad.embed: the logit-difference
                   gradients with block l's attention and MLP outputs detached
                   from the residual stream (GradDrop)
  patch.<kind> [B, ...]: metric(clean row b with the node taken from corrupt
                   row b) - metric(clean row b), every node of a kind:
                   z/q/k/v/pattern [B, L, H] (one head, all positions),
                   resid_pre/attn_out [B, L, T] (one position),
                   mlp_post1 [B, 4D] (one neuron of layer 1, all positions),
                   z_single [B] (layer 1, head 2, position 4, index 3)

The reference forward is written out functionally (TransformerLens-style hooks)
and checked against transformers' GPT2LMHeadModel in float64.

Run: python make_gpt2_fixtures.py   (torch, transformers, safetensors)
"""
import json, math, os
import torch
from safetensors.torch import save_file, load_file
from transformers import GPT2Config, GPT2LMHeadModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tiny")
L, H, D, V, NPOS = 2, 4, 32, 50, 16
DH = D // H

torch.manual_seed(20240607)
config = GPT2Config(n_layer=L, n_head=H, n_embd=D, vocab_size=V, n_positions=NPOS,
                    layer_norm_epsilon=1e-5, activation_function="gelu_new",
                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = GPT2LMHeadModel(config).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.05 * torch.randn_like(p))
        else:
            p.copy_(0.15 * torch.randn_like(p))
os.makedirs(OUT, exist_ok=True)
model.save_pretrained(OUT, safe_serialization=True)
for extra in ["generation_config.json"]:
    if os.path.exists(os.path.join(OUT, extra)):
        os.remove(os.path.join(OUT, extra))

# Weights as saved (float32), used in float64 from here on.
raw = load_file(os.path.join(OUT, "model.safetensors"))
W = {k[len("transformer."):] if k.startswith("transformer.") else k: v.double() for k, v in raw.items()}
cfg = json.load(open(os.path.join(OUT, "config.json")))
eps = cfg["layer_norm_epsilon"]

def ln(x, p):
    return torch.nn.functional.layer_norm(x, (D,), W[p + ".weight"], W[p + ".bias"], eps)

def gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

def forward(ids, patch=None, cache=None, detach=()):
    """ids [B, T] long. patch(name, l, t) -> t'. cache: dict to fill with (name, l) -> t (grad retained)."""
    B, T = ids.shape
    x = (W["wte.weight"][ids] + W["wpe.weight"][:T]).detach().requires_grad_(True)
    emb = x
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)

    def hook(name, l, t):
        if patch is not None:
            t = patch(name, l, t)
        if cache is not None:
            if t.requires_grad:
                t.retain_grad()
            cache[(name, l)] = t
        return t

    for l in range(L):
        p = f"h.{l}."
        x = hook("resid_pre", l, x)
        h = ln(x, p + "ln_1")
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = [t.reshape(B, T, H, DH) for t in qkv.split(D, dim=-1)]
        q, k, v = hook("q", l, q), hook("k", l, k), hook("v", l, v)
        qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        s = (qh @ kh.transpose(-1, -2)) / math.sqrt(DH)
        s = s.masked_fill(mask, float("-inf"))
        a = hook("pattern", l, torch.softmax(s, dim=-1))
        z = hook("z", l, (a @ vh).transpose(1, 2))
        attn_out = z.reshape(B, T, D) @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        attn_out = hook("attn_out", l, attn_out)
        x = x + (attn_out.detach() if l in detach else attn_out)
        x = hook("resid_mid", l, x)
        pre = hook("mlp_pre", l, ln(x, p + "ln_2") @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        post = hook("mlp_post", l, gelu(pre))
        out = hook("mlp_out", l, post @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"])
        x = x + (out.detach() if l in detach else out)
        x = hook("resid_post", l, x)
    logits = ln(x, "ln_f") @ W["wte.weight"].T
    return logits, emb

B, T = 2, 7
g = torch.Generator().manual_seed(7)
clean = torch.randint(0, V, (B, T), generator=g)
corrupt = clean.clone()
corrupt[:, 1] = torch.randint(0, V, (B,), generator=g)
corrupt[:, 4] = torch.randint(0, V, (B,), generator=g)
metric_tokens = torch.tensor([[3, 11], [17, 5]])
logprob_tokens = torch.tensor([29, 2])

def logit_diff(logits):
    last = logits[:, -1, :]
    r = torch.arange(B)
    return last[r, metric_tokens[:, 0]] - last[r, metric_tokens[:, 1]]

# Check the functional forward against transformers in float64.
hf = model.double()
with torch.no_grad():
    hf_logits = hf(clean).logits
ref_logits, _ = forward(clean)
err = (hf_logits - ref_logits).abs().max().item()
assert err < 1e-10, f"functional forward differs from transformers by {err}"

out = {}
out["tokens_clean"] = clean.to(torch.int32)
out["tokens_corrupt"] = corrupt.to(torch.int32)
out["metric_tokens"] = metric_tokens.to(torch.int32)
out["logprob_tokens"] = logprob_tokens.to(torch.int32)

NODES = ["q", "k", "v", "pattern", "z", "attn_out", "resid_mid", "mlp_pre", "mlp_post", "mlp_out", "resid_post"]

def grads(prefix, metric, detach=()):
    cache = {}
    logits, emb = forward(clean, cache=cache, detach=detach)
    m = metric(logits)
    m.sum().backward()
    out[prefix + "grad.embed"] = emb.grad.detach().clone()
    for (name, l), t in cache.items():
        if name in NODES:
            gr = t.grad if t.grad is not None else torch.zeros_like(t)
            out[f"{prefix}grad.{name}.{l}"] = gr.detach().clone()
    return logits, m

logits, m = grads("", logit_diff)
out["logits_clean"] = logits.detach()
out["metric_clean"] = m.detach()
for l in range(L):
    grads(f"drop{l}.", logit_diff, detach=(l,))

def logprob(logits):
    lp = torch.log_softmax(logits[:, -1, :], dim=-1)
    return lp[torch.arange(B), logprob_tokens]
cache = {}
logits, emb = forward(clean, cache=cache)
v = logprob(logits)
v.sum().backward()
out["lp.value"] = v.detach()
out["lp.grad.embed"] = emb.grad.detach().clone()
for l in range(L):
    out[f"lp.grad.pattern.{l}"] = cache[("pattern", l)].grad.detach().clone()

# Exact activation patching: clean row b with one node from corrupt row b.
ccache = {}
with torch.no_grad():
    clog, _ = forward(corrupt, cache=ccache)
out["logits_corrupt"] = clog.detach()
base = out["metric_clean"]

def patched_metric(node, l, sel):
    """sel(t) -> index tuple into a per-batch node tensor t[b] (without the batch dim)."""
    def patch(name, ll, t):
        if name != node or ll != l:
            return t
        t = t.clone()
        for b in range(B):
            idx = sel
            t[b][idx] = ccache[(node, l)][b][idx]
        return t
    with torch.no_grad():
        logits, _ = forward(clean, patch=patch)
    return logit_diff(logits) - base

def table(node, dims, make_sel):
    shape = [B] + dims
    res = torch.zeros(shape, dtype=torch.float64)
    import itertools
    for ix in itertools.product(*[range(d) for d in dims]):
        res[(slice(None),) + ix] = patched_metric(node, *make_sel(*ix))
    return res

S = slice(None)
for node in ["z", "q", "k", "v"]:
    out[f"patch.{node}"] = table(node, [L, H], lambda l, h: (l, (S, h, S)))       # [T, H, dh]
out["patch.pattern"] = table("pattern", [L, H], lambda l, h: (l, (h, S, S)))     # [H, T, T]
out["patch.resid_pre"] = table("resid_pre", [L, T], lambda l, t: (l, (t, S)))    # [T, D]
out["patch.attn_out"] = table("attn_out", [L, T], lambda l, t: (l, (t, S)))
out["patch.mlp_post1"] = table("mlp_post", [4 * D], lambda n: (1, (S, n)))       # [T, 4D]
out["patch.z_single"] = patched_metric("z", 1, (4, 2, 3))

out = {k: (v.contiguous() if v.dtype == torch.int32 else v.double().contiguous()) for k, v in out.items()}
save_file(out, os.path.join(OUT, "reference.safetensors"))
print(f"wrote {OUT}: {len(out)} reference tensors; functional vs transformers {err:.2e}")
