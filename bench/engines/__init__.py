"""Engine registry: spec `engine = "..."` → the module that knows its flags."""

from __future__ import annotations

from bench.engines.base import Engine, Launch, Readback
from bench.engines.ik_llama import IkLlamaServer
from bench.engines.ktransformers import KTransformersLegacy, KTransformersSGLang
from bench.engines.llamacpp import LlamaServer, XLlamaCpp
from bench.engines.sglang import SGLang
from bench.engines.vllm import VLLM

ENGINES: dict[str, type[Engine]] = {
    cls.name: cls
    for cls in (LlamaServer, XLlamaCpp, IkLlamaServer, KTransformersLegacy, KTransformersSGLang, SGLang, VLLM)
}


def get_engine(name: str) -> Engine:
    return ENGINES[name]()


__all__ = ["ENGINES", "Engine", "Launch", "Readback", "get_engine"]
