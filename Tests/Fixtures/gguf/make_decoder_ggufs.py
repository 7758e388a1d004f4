"""Writes tiny decoder GGUF files from the Hugging Face fixtures in Tests/Fixtures/llm, the way
llama.cpp's converter lays them out, so the GGUF loader is held to the same float64 references
as the Hugging Face loader:

  llama.gguf  from llm/llama: q and k rows permuted into llama.cpp's interleaved-pair order
              ((H, 2, d/2) -> (H, d/2, 2) per head), Llama 3's RoPE scaling as the per-frequency
              divisors rope_freqs.weight (as the converter computes them), no output.weight (tied),
              F32 throughout (quantised tensors through a model: SmolLM2Tests).
  qwen2.gguf  from llm/qwen2: no permutation (llama.cpp runs qwen2 in NeoX RoPE order), q/k/v biases.
  gemma.gguf  from llm/gemma (arch "gemma"): norm weights stored as 1 + w, as the converter's
              GemmaModel writes them; attention.key_length = head_dim (≠ D/H); tied.
  gpt_neox.gguf  from llm/gpt_neox (arch "gptneox"): the fused query_key_value rows regrouped
              from [H, 3, d_h] to [q; k; v] as the converter's GPTNeoXModel does, LayerNorm
              weights and biases, partial rotary (rope.dimension_count), parallel residual, untied.

Run: python make_decoder_ggufs.py   (gguf, numpy, safetensors)
"""
import json, math, os
import numpy as np
import gguf
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
LLM = os.path.join(HERE, "..", "llm")


def permute(w, heads):
    # llama.cpp's converter: rows of each head from rotate-half order to interleaved pairs.
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(name, arch, permute_qk):
    cfg = json.load(open(os.path.join(LLM, name, "config.json")))
    W = load_file(os.path.join(LLM, name, "model.safetensors"))
    H, Hkv, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    dh = cfg.get("head_dim") or D // H
    w = gguf.GGUFWriter(os.path.join(HERE, name + ".gguf"), arch)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(D)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    rope = cfg["rope_parameters"]
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_rope_dimension_count(dh)
    w.add_vocab_size(cfg["vocab_size"])
    if rope["rope_type"] == "llama3":
        # The converter's factors: 1 for short wavelengths, factor for long, blended between.
        base, factor = rope["rope_theta"], rope["factor"]
        low, high, old = rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]
        factors = []
        for i in range(0, dh, 2):
            freq = 1.0 / base ** (i / dh)
            wavelen = 2 * math.pi / freq
            if wavelen < old / high:
                factors.append(1.0)
            elif wavelen > old / low:
                factors.append(factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                factors.append(1 / ((1 - smooth) / factor + smooth))
        w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    w.add_tensor("token_embd.weight", W["model.embed_tokens.weight"])
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.o_proj.weight": "attn_output.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
             "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for p in "qkv":
        names[f"self_attn.{p}_proj.weight"] = f"attn_{p}.weight"
        names[f"self_attn.{p}_proj.bias"] = f"attn_{p}.bias"
    for l in range(cfg["num_hidden_layers"]):
        for hf, g in names.items():
            key = f"model.layers.{l}.{hf}"
            if key not in W:
                continue
            t = W[key]
            if permute_qk and hf.startswith("self_attn.q_proj"):
                t = permute(t, H)
            if permute_qk and hf.startswith("self_attn.k_proj"):
                t = permute(t, Hkv)
            w.add_tensor(f"blk.{l}.{g}", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", W["model.norm.weight"])
    if "lm_head.weight" in W:
        w.add_tensor("output.weight", W["lm_head.weight"])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print("wrote", name + ".gguf", os.path.getsize(os.path.join(HERE, name + ".gguf")), "bytes")


def write_gemma():
    cfg = json.load(open(os.path.join(LLM, "gemma", "config.json")))
    W = load_file(os.path.join(LLM, "gemma", "model.safetensors"))
    H, Hkv, D, dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"], cfg["head_dim"]
    w = gguf.GGUFWriter(os.path.join(HERE, "gemma.gguf"), "gemma")
    w.add_block_count(cfg["num_hidden_layers"]); w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(D); w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(H); w.add_head_count_kv(Hkv); w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_key_length(dh); w.add_value_length(dh)
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    w.add_tensor("token_embd.weight", W["model.embed_tokens.weight"])
    for l in range(cfg["num_hidden_layers"]):
        for hf, g in names.items():
            t = W[f"model.layers.{l}.{hf}"]
            if hf.endswith("norm.weight"):
                t = (t + 1).astype(np.float32)
            w.add_tensor(f"blk.{l}.{g}", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", (W["model.norm.weight"] + 1).astype(np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print("wrote gemma.gguf", os.path.getsize(os.path.join(HERE, "gemma.gguf")), "bytes")


def write_neox():
    cfg = json.load(open(os.path.join(LLM, "gpt_neox", "config.json")))
    W = load_file(os.path.join(LLM, "gpt_neox", "model.safetensors"))
    H, D = cfg["num_attention_heads"], cfg["hidden_size"]
    dh = D // H
    rope = cfg["rope_parameters"]
    w = gguf.GGUFWriter(os.path.join(HERE, "gpt_neox.gguf"), "gptneox")
    w.add_block_count(cfg["num_hidden_layers"]); w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(D); w.add_feed_forward_length(cfg["intermediate_size"]); w.add_head_count(H)
    w.add_rope_dimension_count(int(rope["partial_rotary_factor"] * dh))
    w.add_rope_freq_base(rope["rope_theta"])
    w.add_parallel_residual(cfg["use_parallel_residual"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_tensor("token_embd.weight", W["gpt_neox.embed_in.weight"])
    parts = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "attention.query_key_value": "attn_qkv",
             "attention.dense": "attn_output", "mlp.dense_h_to_4h": "ffn_up", "mlp.dense_4h_to_h": "ffn_down"}
    for l in range(cfg["num_hidden_layers"]):
        for hf, g in parts.items():
            for kind in ("weight", "bias"):
                t = W[f"gpt_neox.layers.{l}.{hf}.{kind}"]
                if hf == "attention.query_key_value":
                    # [H, 3, d_h, ...] -> [3, H, d_h, ...]: q rows, then k, then v.
                    t = t.reshape(H, 3, dh, *t.shape[1:]).swapaxes(0, 1).reshape(t.shape)
                w.add_tensor(f"blk.{l}.{g}.{kind}", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", W["gpt_neox.final_layer_norm.weight"])
    w.add_tensor("output_norm.bias", W["gpt_neox.final_layer_norm.bias"])
    w.add_tensor("output.weight", W["embed_out.weight"])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    print("wrote gpt_neox.gguf", os.path.getsize(os.path.join(HERE, "gpt_neox.gguf")), "bytes")


write("llama", "llama", permute_qk=True)
write("qwen2", "qwen2", permute_qk=False)
write_gemma()
write_neox()
