"""Random-weight GGUF models (dense or Mixtral-style MoE Llama, or an R1-shaped deepseek2 proxy) for
real-server benchmarks.

Why: the sweep and its tests need a real llama.cpp server on a real model, with no downloads.
Random weights are enough to measure speed, as long as every request yields exactly `max_tokens`
tokens, which the weights guarantee by construction.

    shape    `ModelShape` (what to generate; its content hash names the file) and the tensor plan
    vocab    the SentencePiece-style tokenizer and the tokens never sampled
    weights  the tensors' values (the `max_tokens` guarantee) and `model_bytes`
    write    `write_model`: the GGUF, atomically, then llama-quantize / llama-gguf-split
    cache    `ensure_model` / `model_file` / `cache_dir`: generated once, found by content hash
"""
