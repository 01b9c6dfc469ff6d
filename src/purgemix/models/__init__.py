"""The model layer: every neural part of purgemix goes through these interfaces."""

from .base import Embedder, Generation, GenerationParams, LLM, ScoredResponse
from .fake import FakeEmbedder, FakeLLM

__all__ = ["Embedder", "FakeEmbedder", "FakeLLM", "Generation", "GenerationParams", "LLM", "ScoredResponse"]
