"""Makes Tests/Fixtures/llm: tiny decoder LLMs of five Hugging Face families with
fixed random float32 weights, each saved by save_pretrained (config.json +
model.safetensors; generation_config.json removed) in llm/<family>/, with
reference values computed by PyTorch in float64 from exactly those saved weights
in llm/<family>/reference.safetensors. llm/llama-sharded/ holds the llama model
again, saved in >= 3 shards with model.safetensors.index.json (no reference
file: it shares llama's).

Families (2 layers, vocab V = 96, eager attention, dropout 0):
  llama     D 64, H 4, Hkv 2, dh 16, F 96, SiLU-gated MLP, RMSNorm eps 1e-5,
            rope_theta 1e4 with llama3 rope scaling (factor 8, low 1, high 4,
            original max positions 32), tied embeddings.
  qwen2     D 64, H 4, Hkv 2, dh 16, F 96, q/k/v biases (o_proj has none),
            rope_theta 1e6, untied lm_head.
  mistral   D 64, H 4, Hkv 1 (multi-query), dh 16, F 96, sliding_window 4,
            untied lm_head.
  gemma     D 48, H 4, Hkv 1, dh 16 (H*dh = 64 != D), F 96, gelu_pytorch_tanh
            gated MLP, tied embeddings, RMSNorm eps 1e-6.
  gpt_neox  D 64, H 4, dh 16, F 256, rotary_pct 0.25 (rotary_ndims 4), parallel
            residual, exact (erf) GELU, LayerNorm eps 1e-5, all biases, untied
            embed_out.

Reference keys (float64 except the int32 ids), B = 2, T = 10, L = 2:
  tokens_clean, tokens_corrupt [B, T] int32 (corrupt differs at positions 2, 6)
  metric_tokens [B, 2] int32 (target, contrast)
  logits_clean, logits_corrupt [B, T, V]
  metric_clean [B] = logits[:, -1, target] - logits[:, -1, contrast]
  (act.* and grad.attn_out/mlp_out are computed and checked but not saved)
  act.<name>.<l>  clean-run activations, TransformerLens names:
      resid_pre [B,T,D]      decoder layer input (layer 0: the (scaled) embedding)
      q [B,T,H,dh], k, v [B,T,Hkv,dh]   projection outputs before rotary
      rot_q [B,T,H,dh], rot_k [B,T,Hkv,dh]  after rotary
      pattern [B,H,T,T]      attention probabilities (query t, key s)
      z [B,T,H,dh]           input of o_proj / attention.dense, per head
      attn_out [B,T,D]       o_proj / dense output (incl. bias)
      resid_mid [B,T,D]      resid_pre + attn_out (not for gpt_neox: parallel)
      mlp_pre [B,T,F]        gate_proj output (gated) / dense_h_to_4h output (NeoX)
      mlp_pre_linear [B,T,F] up_proj output (gated families only)
      mlp_post [B,T,F]       input of down_proj / dense_4h_to_h
      mlp_out [B,T,D]        MLP output
      resid_post [B,T,D]     decoder layer output
  act.ln_final [B,T,D]   final norm output (logits = ln_final @ W_U^T, no bias)
  grad.<name>.<l>  d(sum_b metric_b)/d(act) at the clean run, name in resid_pre
                   z attn_out mlp_post mlp_out pattern q k v (q, k, v before
                   rotary); grad.embed = d/d(embedding output) = grad.resid_pre.0
  llama and gpt_neox only, exact activation patching (clean row b with one node
  taken from corrupt row b; value = metric(patched) - metric(clean)), done with
  forward hooks that replace module inputs / outputs:
      patch.z [B,L,H]          one head's z, all positions
      patch.mlp_post [B,L,F]   one neuron, all positions
      patch.resid_pre [B,L,T]  one position, all of D
      patch.k [B,L,Hkv], patch.v [B,L,Hkv]  one KV head, pre-rotary, all positions
      atp.z [B,L,H], atp.mlp_post [B,L,F], atp.k [B,L,Hkv]: attribution
          patching, sum over the node's elements of (a_corrupt - a_clean) * grad
          (grad at the clean run)

Conventions verified here (asserts), in the reference's own float64 arithmetic:
  * Positions are implicit 0..T-1; no attention mask, no padding.
  * Rotary (all families): rot(x) = x*cos + rotate_half(x)*sin with
    rotate_half(x) = cat(-x[d/2:], x[:d/2]) (halves, not interleaved pairs),
    angle(t, i) = t * inv_freq[i] repeated for both halves,
    inv_freq[i] = theta^(-2i/d).
  * llama3 scaling at dh 16: wavelen_i = 2 pi / inv_freq_i; wavelen < 32/4 = 8
    is unchanged (i = 0), wavelen > 32/1 = 32 is divided by 8 (i = 2..7), in
    between smoothed (i = 1): (1-s) f/8 + s f with s = (32/wavelen - 1)/(4 - 1).
  * gpt_neox: query_key_value output [B,T,3D] is laid out [H, 3, dh] per token
    (head h's q, k, v are contiguous: columns h*3dh + {0, dh, 2dh} + j), not
    [3, H, dh]. Rotary (rotary_ndims = int(dh * 0.25) = 4) rotates only the
    first 4 dims of each head, with rotate_half over those 4 dims; dims 4..15
    pass through. Parallel residual: resid_post = resid_pre + attn_out +
    mlp_out, both branches normed from resid_pre by their own LayerNorms.
  * gemma: RMSNorm multiplies by (1 + w) (stored w ~ 0.1 randn); the embedding
    is multiplied by embed_scale = torch.tensor(sqrt(D)), a float32 buffer, so
    the scale is float32(sqrt(48)) = 6.928203105926514 (exact sqrt(48) =
    6.928203230275509) even when the model runs in float64 (in bfloat16 it
    would round further); grad.embed is w.r.t. the scaled embedding.
  * mistral sliding window 4: the query at position t attends to the keys s
    with t - 4 < s <= t (4 keys incl. itself); pattern is exactly 0 elsewhere.
  * GQA / MQA: query head h uses KV head h // (H / Hkv).

Float64: transformers 5.25 computes parts of these models in float32 even when
the model is float64 (LlamaRMSNorm / GemmaRMSNorm cast to float32, eager
attention's softmax uses dtype=float32, rotary cos/sin are computed from
float32 angles and inv_freq). For a float64 reference those forwards are
replaced here by float64 versions of the same formulas (norms, rotary with
inv_freq recomputed in float64, eager attention); the result is checked against
the unmodified transformers model (float64 and float32), which agree to the
float32 level only. Everything else is transformers' own modules.

config.json is what transformers 5 writes: rope settings only under
"rope_parameters" (rope_theta, rope_type, llama3 factors, NeoX
partial_rotary_factor), not the older top-level rope_theta / rope_scaling /
rotary_pct of Hub checkpoints. Tied models store only the embedding (no
lm_head.weight); gpt_neox's unembedding is saved as embed_out.weight.

Sizes (weights float32, reference float64): llama 790 KB (+ llama-sharded
280 KB), qwen2 830 KB, mistral 780 KB, gemma 650 KB, gpt_neox 1150 KB.

Run: python make_llm_fixtures.py   (torch, transformers 5.x, safetensors);
the output is deterministic (about 25 s on a CPU).
"""
import itertools, json, math, os, shutil
import torch
from safetensors.torch import save_file, load_file
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          MistralConfig, MistralForCausalLM, GemmaConfig, GemmaForCausalLM,
                          GPTNeoXConfig, GPTNeoXForCausalLM)
from transformers.models.llama import modeling_llama
from transformers.models.qwen2 import modeling_qwen2
from transformers.models.mistral import modeling_mistral
from transformers.models.gemma import modeling_gemma
from transformers.models.gpt_neox import modeling_gpt_neox

HERE = os.path.dirname(os.path.abspath(__file__))
L, V, B, T = 2, 96, 2, 10
TOL = 1e-12

COMMON = dict(vocab_size=V, num_hidden_layers=L, attention_dropout=0.0, attn_implementation="eager",
              bos_token_id=None, eos_token_id=None, pad_token_id=None)
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, modeling_llama, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
        rope_theta=10000.0, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, modeling_qwen2, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
        rope_theta=1e6, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        use_sliding_window=False)),
    "mistral": (MistralConfig, MistralForCausalLM, modeling_mistral, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=1, intermediate_size=96,
        rope_theta=10000.0, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
        sliding_window=4)),
    "gemma": (GemmaConfig, GemmaForCausalLM, modeling_gemma, dict(
        hidden_size=48, num_attention_heads=4, num_key_value_heads=1, head_dim=16, intermediate_size=96,
        hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rope_theta=10000.0,
        max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "gpt_neox": (GPTNeoXConfig, GPTNeoXForCausalLM, modeling_gpt_neox, dict(
        hidden_size=64, num_attention_heads=4, intermediate_size=256, rotary_pct=0.25, rotary_emb_base=10000,
        use_parallel_residual=True, hidden_act="gelu", layer_norm_eps=1e-5, tie_word_embeddings=False,
        hidden_dropout=0.0, max_position_embeddings=64, attention_bias=True)),
}
PATCH_FAMILIES = ("llama", "gpt_neox")
SEEDS = {"llama": 101, "qwen2": 102, "mistral": 103, "gemma": 104, "gpt_neox": 105}


def init_weights(family, model, seed):
    """float32 random weights with O(1) activations."""
    g = torch.Generator().manual_seed(seed)
    rn = lambda p: torch.randn(p.shape, generator=g, dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(0.1 * rn(p) if family == "gemma" else 1 + 0.1 * rn(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * rn(p))
            elif "embed" in name:                      # embed_tokens, embed_in, embed_out
                p.copy_((0.15 if family == "gemma" else 0.5) * rn(p))
            elif name.endswith("lm_head.weight"):
                p.copy_(0.5 * rn(p))
            else:                                      # Linear [out, in]
                p.copy_(rn(p) / math.sqrt(p.shape[1]))


# ---------------------------------------------------------------- float64 replacements
def rope_inv_freq(cfg):
    """inv_freq in float64, from the formulas (default / llama3), for the rotated dims."""
    rp = cfg["rope_parameters"]
    dh = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    d = int(dh * rp.get("partial_rotary_factor", 1.0))
    inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    if rp["rope_type"] == "llama3":
        f, lo, hi, old = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        s = (old / wl - lo) / (hi - lo)
        inv = torch.where(wl < old / hi, inv, torch.where(wl > old / lo, inv / f, (1 - s) * inv / f + s * inv))
    else:
        assert rp["rope_type"] == "default"
    return inv, d


def install_float64(model, mod, family, cfg, rec):
    """Replace the float32-internal forwards by float64 versions and add the
    pattern / rot_q / rot_k hook points (inside eager attention)."""
    base = model.model if family != "gpt_neox" else model.gpt_neox
    inv, rd = rope_inv_freq(cfg)
    hf_inv = base.rotary_emb.inv_freq.double()
    assert torch.allclose(hf_inv, inv, rtol=1e-6, atol=0), (hf_inv, inv)

    def rotary_forward(x, position_ids):
        ang = position_ids[..., None].double() * inv
        emb = torch.cat((ang, ang), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    base.rotary_emb.forward = rotary_forward

    for name, m in model.named_modules():
        if type(m).__name__.endswith("RMSNorm"):
            eps = m.variance_epsilon if hasattr(m, "variance_epsilon") else m.eps
            if family == "gemma":
                m.forward = (lambda m, eps: lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + m.weight))(m, eps)
            else:
                m.forward = (lambda m, eps: lambda x: m.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)))(m, eps)

    def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kw):
        l = module.layer_idx
        q = rec.hook("rot_q", l, query.transpose(1, 2)).transpose(1, 2)
        k = rec.hook("rot_k", l, key.transpose(1, 2)).transpose(1, 2)
        rep = query.shape[1] // key.shape[1]
        k = k.repeat_interleave(rep, dim=1)
        v = value.repeat_interleave(rep, dim=1)
        w = torch.matmul(q, k.transpose(2, 3)) * scaling
        if attention_mask is not None:
            w = w + attention_mask
        w = torch.softmax(w, dim=-1)
        w = rec.hook("pattern", l, w)
        out = torch.matmul(w, v).transpose(1, 2).contiguous()
        rec.eager_calls += 1
        return out, w
    mod.eager_attention_forward = eager


# ---------------------------------------------------------------- hooks
class Recorder:
    def __init__(self):
        self.patch, self.cache, self.eager_calls = None, None, 0

    def hook(self, name, l, t):
        if self.patch is not None:
            t = self.patch(name, l, t)
        if self.cache is not None:
            if t.requires_grad:
                t.retain_grad()
            self.cache[(name, l)] = t
        return t


def install_hooks(model, family, rec, H, Hkv, dh):
    def out_hook(name, l, heads=None):
        def f(m, args, out):
            if heads is None:
                return rec.hook(name, l, out)
            Bq, Tq = out.shape[:2]
            return rec.hook(name, l, out.view(Bq, Tq, heads, dh)).reshape(Bq, Tq, heads * dh)
        return f

    def in_hook(name, l, heads=None):
        def f(m, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            if heads is None:
                y = rec.hook(name, l, x)
            else:
                Bq, Tq = x.shape[:2]
                y = rec.hook(name, l, x.view(Bq, Tq, heads, dh)).reshape(Bq, Tq, heads * dh)
            if args:
                return (y,) + tuple(args[1:]), kwargs
            kwargs = dict(kwargs); kwargs["hidden_states"] = y
            return args, kwargs
        return f

    def embed_hook(m, args, out):      # the (scaled) embedding output is the leaf of the graph
        return out.detach().requires_grad_(True)

    if family == "gpt_neox":
        base = model.gpt_neox
        base.embed_in.register_forward_hook(embed_hook)
        base.final_layer_norm.register_forward_hook(out_hook("ln_final", None))
        for l, layer in enumerate(base.layers):
            layer.register_forward_pre_hook(in_hook("resid_pre", l), with_kwargs=True)
            layer.register_forward_hook(out_hook("resid_post", l))

            def qkv_hook(m, args, out, l=l):
                Bq, Tq = out.shape[:2]
                x = out.view(Bq, Tq, H, 3, dh)          # [H, 3, dh] per token
                q, k, v = (rec.hook(n, l, x[:, :, :, i]) for i, n in enumerate(("q", "k", "v")))
                return torch.stack((q, k, v), dim=3).reshape(Bq, Tq, 3 * H * dh)
            layer.attention.query_key_value.register_forward_hook(qkv_hook)
            layer.attention.dense.register_forward_pre_hook(in_hook("z", l, H), with_kwargs=True)
            layer.attention.dense.register_forward_hook(out_hook("attn_out", l))
            layer.mlp.dense_h_to_4h.register_forward_hook(out_hook("mlp_pre", l))
            layer.mlp.dense_4h_to_h.register_forward_pre_hook(in_hook("mlp_post", l), with_kwargs=True)
            layer.mlp.register_forward_hook(out_hook("mlp_out", l))
    else:
        base = model.model
        base.embed_tokens.register_forward_hook(embed_hook)
        base.norm.register_forward_hook(out_hook("ln_final", None))
        for l, layer in enumerate(base.layers):
            a = layer.self_attn
            layer.register_forward_pre_hook(in_hook("resid_pre", l), with_kwargs=True)
            layer.register_forward_hook(out_hook("resid_post", l))
            a.q_proj.register_forward_hook(out_hook("q", l, H))
            a.k_proj.register_forward_hook(out_hook("k", l, Hkv))
            a.v_proj.register_forward_hook(out_hook("v", l, Hkv))
            a.o_proj.register_forward_pre_hook(in_hook("z", l, H), with_kwargs=True)
            a.o_proj.register_forward_hook(out_hook("attn_out", l))
            layer.post_attention_layernorm.register_forward_pre_hook(in_hook("resid_mid", l), with_kwargs=True)
            layer.mlp.gate_proj.register_forward_hook(out_hook("mlp_pre", l))
            layer.mlp.up_proj.register_forward_hook(out_hook("mlp_pre_linear", l))
            layer.mlp.down_proj.register_forward_pre_hook(in_hook("mlp_post", l), with_kwargs=True)
            layer.mlp.register_forward_hook(out_hook("mlp_out", l))


# ---------------------------------------------------------------- functional checks
def check_consistency(family, cfg, W, ids, A, logits, H, Hkv, dh):
    """Recompute every recorded activation from the saved weights W (float64) and
    the recorded inputs, with the conventions stated in the docstring."""
    def close(a, b, what):
        err = (a - b).abs().max().item()
        assert err < TOL, f"{family}: {what} off by {err}"

    neox = family == "gpt_neox"
    pre = "gpt_neox." if neox else "model."
    D = cfg["hidden_size"]
    inv, rd = rope_inv_freq(cfg)
    if family == "llama":  # llama3 scaling changes some but not all frequencies
        plain = 1.0 / (10000.0 ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
        ratio = (inv / plain).tolist()
        assert abs(ratio[0] - 1) < 1e-15 and 1 / 8 < ratio[1] < 1 and all(abs(r - 1 / 8) < 1e-15 for r in ratio[2:]), ratio
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv
    cos, sin = torch.cat((ang, ang), -1).cos()[:, None, :], torch.cat((ang, ang), -1).sin()[:, None, :]

    def rope(x):                                  # x [B, T, n, dh]
        xr, xp = x[..., :rd], x[..., rd:]
        rh = torch.cat((-xr[..., rd // 2:], xr[..., :rd // 2]), -1)
        return torch.cat((xr * cos + rh * sin, xp), -1)

    def norm(x, p):
        if neox:
            return torch.nn.functional.layer_norm(x, (D,), W[p + ".weight"], W[p + ".bias"], cfg["layer_norm_eps"])
        w = (1 + W[p + ".weight"]) if family == "gemma" else W[p + ".weight"]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * w

    def lin(x, p):
        y = x @ W[p + ".weight"].T
        return y + W[p + ".bias"] if p + ".bias" in W else y

    emb = W[pre + ("embed_in.weight" if neox else "embed_tokens.weight")][ids]
    if family == "gemma":
        scale = torch.tensor(math.sqrt(D), dtype=torch.float32).double()
        assert scale.item() == 6.928203105926514 and scale.item() != math.sqrt(D)
        emb = emb * scale
    close(A[("resid_pre", 0)], emb, "embedding")
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    if cfg.get("sliding_window"):
        s_idx, t_idx = torch.arange(T)[None, :], torch.arange(T)[:, None]
        causal = causal & (s_idx > t_idx - cfg["sliding_window"])
    for l in range(L):
        p = f"{pre}layers.{l}."
        x = A[("resid_pre", l)]
        if l > 0:
            close(x, A[("resid_post", l - 1)], f"resid_pre.{l} vs resid_post.{l-1}")
        if neox:
            qkv = lin(norm(x, p + "input_layernorm"), p + "attention.query_key_value").view(B, T, H, 3, dh)
            q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]
        else:
            h = norm(x, p + "input_layernorm")
            q = lin(h, p + "self_attn.q_proj").view(B, T, H, dh)
            k = lin(h, p + "self_attn.k_proj").view(B, T, Hkv, dh)
            v = lin(h, p + "self_attn.v_proj").view(B, T, Hkv, dh)
        close(A[("q", l)], q, f"q.{l}"); close(A[("k", l)], k, f"k.{l}"); close(A[("v", l)], v, f"v.{l}")
        close(A[("rot_q", l)], rope(q), f"rot_q.{l}"); close(A[("rot_k", l)], rope(k), f"rot_k.{l}")
        kv = torch.arange(H) // (H // Hkv)
        rq, rk = A[("rot_q", l)], A[("rot_k", l)][:, :, kv]
        s = torch.einsum("bthd,bshd->bhts", rq, rk) / math.sqrt(dh)
        pat = torch.softmax(s.masked_fill(~causal, float("-inf")), -1)
        close(A[("pattern", l)], pat, f"pattern.{l}")
        assert (A[("pattern", l)][:, :, ~causal] == 0).all() and (A[("pattern", l)][:, :, causal] > 0).all()
        z = torch.einsum("bhts,bshd->bthd", A[("pattern", l)], v[:, :, kv])
        close(A[("z", l)], z, f"z.{l}")
        ao = lin(A[("z", l)].reshape(B, T, H * dh), p + ("attention.dense" if neox else "self_attn.o_proj"))
        close(A[("attn_out", l)], ao, f"attn_out.{l}")
        if neox:
            h2 = norm(x, p + "post_attention_layernorm")
            close(A[("mlp_pre", l)], lin(h2, p + "mlp.dense_h_to_4h"), f"mlp_pre.{l}")
            close(A[("mlp_post", l)], torch.nn.functional.gelu(A[("mlp_pre", l)]), f"mlp_post.{l}")
            close(A[("mlp_out", l)], lin(A[("mlp_post", l)], p + "mlp.dense_4h_to_h"), f"mlp_out.{l}")
            close(A[("resid_post", l)], x + A[("attn_out", l)] + A[("mlp_out", l)], f"resid_post.{l}")
        else:
            close(A[("resid_mid", l)], x + A[("attn_out", l)], f"resid_mid.{l}")
            h2 = norm(A[("resid_mid", l)], p + "post_attention_layernorm")
            close(A[("mlp_pre", l)], lin(h2, p + "mlp.gate_proj"), f"mlp_pre.{l}")
            close(A[("mlp_pre_linear", l)], lin(h2, p + "mlp.up_proj"), f"mlp_pre_linear.{l}")
            g = A[("mlp_pre", l)]
            act = torch.nn.functional.gelu(g, approximate="tanh") if family == "gemma" else torch.nn.functional.silu(g)
            close(A[("mlp_post", l)], act * A[("mlp_pre_linear", l)], f"mlp_post.{l}")
            close(A[("mlp_out", l)], lin(A[("mlp_post", l)], p + "mlp.down_proj"), f"mlp_out.{l}")
            close(A[("resid_post", l)], A[("resid_mid", l)] + A[("mlp_out", l)], f"resid_post.{l}")
    close(A[("ln_final", None)], norm(A[("resid_post", L - 1)], pre + ("final_layer_norm" if neox else "norm")), "ln_final")
    if neox:
        WU = W["embed_out.weight"]
    elif cfg["tie_word_embeddings"]:
        assert "lm_head.weight" not in W
        WU = W["model.embed_tokens.weight"]
    else:
        WU = W["lm_head.weight"]
    close(logits, A[("ln_final", None)] @ WU.T, "logits")


# ---------------------------------------------------------------- one family
def make(family):
    ConfigCls, ModelCls, mod, kw = FAMILIES[family]
    out_dir = os.path.join(HERE, family)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    config = ConfigCls(**COMMON, **kw)
    model = ModelCls(config).eval()
    init_weights(family, model, SEEDS[family])
    model.save_pretrained(out_dir, safe_serialization=True)
    dirs = [out_dir]
    if family == "llama":
        sh = os.path.join(HERE, "llama-sharded")
        shutil.rmtree(sh, ignore_errors=True)
        model.save_pretrained(sh, safe_serialization=True, max_shard_size="100KB")
        dirs.append(sh)
    for d in dirs:
        if os.path.exists(os.path.join(d, "generation_config.json")):
            os.remove(os.path.join(d, "generation_config.json"))
    cfg = json.load(open(os.path.join(out_dir, "config.json")))

    # The weights exactly as saved, in float64.
    W = {k: v.double() for k, v in load_file(os.path.join(out_dir, "model.safetensors")).items()}
    if family == "llama":
        idx = json.load(open(os.path.join(HERE, "llama-sharded", "model.safetensors.index.json")))
        shards = sorted(set(idx["weight_map"].values()))
        assert len(shards) >= 3, shards
        Ws = {}
        for s in shards:
            Ws.update(load_file(os.path.join(HERE, "llama-sharded", s)))
        assert Ws.keys() == W.keys() and all(torch.equal(Ws[k].double(), W[k]) for k in W)

    # Reload the saved directory (checks that config.json round-trips), float32 and float64.
    m32 = ModelCls.from_pretrained(out_dir, attn_implementation="eager").eval()
    for (n, p), (n2, p2) in zip(model.state_dict().items(), m32.state_dict().items()):
        assert n == n2 and torch.equal(p, p2), n
    hf64 = ModelCls.from_pretrained(out_dir, attn_implementation="eager").eval().double()
    model = ModelCls.from_pretrained(out_dir, attn_implementation="eager").eval().double()
    for p in model.parameters():
        p.requires_grad_(False)

    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    dh = cfg.get("head_dim") or cfg["hidden_size"] // H

    g = torch.Generator().manual_seed(SEEDS[family] + 1000)
    clean = torch.randint(0, V, (B, T), generator=g)
    corrupt = clean.clone()
    for t in (2, 6):
        corrupt[:, t] = (clean[:, t] + torch.randint(1, V, (B,), generator=g)) % V
    assert ((corrupt != clean).nonzero()[:, 1].unique().tolist() == [2, 6])
    metric_tokens = torch.tensor([[3, 11], [17, 5]])

    def logit_diff(logits):
        last = logits[:, -1, :]
        r = torch.arange(B)
        return last[r, metric_tokens[:, 0]] - last[r, metric_tokens[:, 1]]

    with torch.no_grad():
        ref64 = hf64(clean).logits
        ref32 = m32(clean).logits.double()

    rec = Recorder()
    install_float64(model, mod, family, cfg, rec)
    install_hooks(model, family, rec, H, Hkv, dh)

    def run(ids, cache=None, patch=None, grad=False):
        rec.cache, rec.patch = cache, patch
        with torch.set_grad_enabled(grad):
            logits = model(ids).logits
        rec.cache, rec.patch = None, None
        return logits

    # Clean run with gradients.
    A = {}
    calls = rec.eager_calls
    logits = run(clean, cache=A, grad=True)
    assert rec.eager_calls == calls + L, "the float64 eager attention was not used"
    m = logit_diff(logits)
    m.sum().backward()
    err64 = (logits - ref64).abs().max().item()
    err32 = (logits - ref32).abs().max().item()
    assert err64 < 1e-5 and err32 < 1e-4, (err64, err32)
    check_consistency(family, cfg, W, clean, {k: v.detach() for k, v in A.items()}, logits.detach(), H, Hkv, dh)
    if family == "mistral":  # the window matters at T = 10
        assert T > cfg["sliding_window"] and (A[("pattern", 0)][:, :, 9, :6] == 0).all()

    # Central differences through the same hooks check the gradients.
    def nudged_metric(node, l, idx, h):
        def patch(name, ll, t):
            if name != node or ll != l:
                return t
            t = t.clone()
            t[idx] += h
            return t
        with torch.no_grad():
            return logit_diff(run(clean, patch=patch))
    for node, l, idx in [("resid_pre", 0, (1, 3, 5)), ("q", 1, (0, 9, 2, 7)), ("k", 0, (1, 4, Hkv - 1, 3)),
                         ("v", 1, (0, 2, 0, 1)), ("z", 1, (1, 8, 3, 0)), ("pattern", 1, (0, 2, 9, 7)),
                         ("mlp_post", 0, (1, 6, 11)), ("mlp_out", 1, (0, 9, 4)), ("attn_out", 0, (1, 2, 7))]:
        hh = 1e-5
        fd = (nudged_metric(node, l, idx, hh) - nudged_metric(node, l, idx, -hh))[idx[0]] / (2 * hh)
        gr = A[(node, l)].grad[idx]
        assert abs(fd - gr) < 1e-7 * max(1.0, abs(gr)), (family, node, l, fd.item(), gr.item())

    out = {"tokens_clean": clean.to(torch.int32), "tokens_corrupt": corrupt.to(torch.int32),
           "metric_tokens": metric_tokens.to(torch.int32),
           "logits_clean": logits.detach(), "metric_clean": m.detach()}
    names = ["resid_pre", "q", "k", "v", "rot_q", "rot_k", "pattern", "z", "attn_out", "resid_mid",
             "mlp_pre", "mlp_pre_linear", "mlp_post", "mlp_out", "resid_post"]
    for (name, l), t in A.items():
        if l is None:
            out[f"act.{name}"] = t.detach().clone()
        else:
            assert name in names
            out[f"act.{name}.{l}"] = t.detach().clone()
    for l in range(L):
        for name in ["resid_pre", "z", "attn_out", "mlp_post", "mlp_out", "pattern", "q", "k", "v"]:
            gr = A[(name, l)].grad
            out[f"grad.{name}.{l}"] = (gr if gr is not None else torch.zeros_like(A[(name, l)])).detach().clone()
    out["grad.embed"] = out["grad.resid_pre.0"].clone()

    C = {}
    with torch.no_grad():
        out["logits_corrupt"] = run(corrupt, cache=C).detach()
    C = {k: v.detach() for k, v in C.items()}

    if family in PATCH_FAMILIES:
        base = out["metric_clean"]
        Aclean = {k: v.detach() for k, v in A.items()}

        def patched_metric(node, l, idx, source=C):
            def patch(name, ll, t):
                if name != node or ll != l:
                    return t
                t = t.clone()
                t[(slice(None),) + idx] = source[(node, l)][(slice(None),) + idx]
                return t
            with torch.no_grad():
                return logit_diff(run(clean, patch=patch)) - base

        def table(node, dims, make_idx):
            res = torch.zeros([B, L] + dims, dtype=torch.float64)
            for l in range(L):
                for ix in itertools.product(*[range(d) for d in dims]):
                    res[(slice(None), l) + ix] = patched_metric(node, l, make_idx(*ix))
            return res

        S = slice(None)
        F = cfg["intermediate_size"]
        # Patching with the clean activation changes nothing.
        for node, idx in [("z", (S, 1, S)), ("mlp_post", (S, 3)), ("resid_pre", (4, S)), ("k", (S, 0, S)), ("v", (S, 1, S))]:
            for l in range(L):
                d = patched_metric(node, l, idx, source=Aclean)
                assert (d.abs() < 1e-13).all(), (node, l, d)
        out["patch.z"] = table("z", [H], lambda h: (S, h, S))
        out["patch.mlp_post"] = table("mlp_post", [F], lambda n: (S, n))
        out["patch.resid_pre"] = table("resid_pre", [T], lambda t: (t, S))
        out["patch.k"] = table("k", [Hkv], lambda h: (S, h, S))
        out["patch.v"] = table("v", [Hkv], lambda h: (S, h, S))
        # resid_pre at a position the corrupt run does not change: exactly 0.
        assert (out["patch.resid_pre"][:, 0, [0, 1, 3, 4, 5]] == 0).all()

        def atp(node, sum_dims):
            r = torch.stack([((C[(node, l)] - Aclean[(node, l)]) * A[(node, l)].grad).sum(sum_dims) for l in range(L)], 1)
            return r
        out["atp.z"] = atp("z", (1, 3))
        out["atp.mlp_post"] = atp("mlp_post", (1,))
        out["atp.k"] = atp("k", (1, 3))
        cz = torch.corrcoef(torch.stack([out["atp.z"].flatten(), out["patch.z"].flatten()]))[0, 1].item()
        print(f"  {family}: corr(atp.z, patch.z) = {cz:.3f}")

    # The activations were checked above (recomputed from the weights); only what the Swift
    # tests read is saved, which keeps each fixture directory small.
    out = {k: v for k, v in out.items() if not k.startswith("act.") and k.split(".")[:2] not in (["grad", "attn_out"], ["grad", "mlp_out"])}
    out = {k: (v.contiguous() if v.dtype == torch.int32 else v.double().contiguous()) for k, v in out.items()}
    save_file(out, os.path.join(out_dir, "reference.safetensors"))
    for d in dirs:
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"wrote {d}: {sorted(os.listdir(d))}, {size / 1024:.0f} KiB")
    print(f"  {family}: {len(out)} reference tensors; float64 reference vs unmodified transformers "
          f"float64 {err64:.1e}, float32 {err32:.1e}")
    return out


if __name__ == "__main__":
    assert transformers.__version__.startswith("5."), transformers.__version__
    for family in FAMILIES:
        make(family)
