"""``less``: gradient similarity to a small validation set (LESS, Xia et al. 2024).

LESS scores a training example by how well its loss gradient aligns with the gradients of a few examples of
the target behaviour: a step on it would lower the validation loss most. As in the paper, the gradients are
those of LoRA adapters on a causal LM (the loss covers the response tokens only), reduced by a random
projection, normalised, and the score is the mean cosine to the validation gradients.

Departures from the paper, each for cost on a CPU:
- no warm-up training: the gradients are taken at the LoRA initialisation (B = 0, so only the B matrices get
  a gradient), and they are plain SGD gradients, not Adam-preconditioned ones (there is no optimizer state
  without the warm-up);
- the projection is a count sketch (feature hashing: each gradient coordinate goes to one of ``dim`` buckets
  with a random sign), a sparse Johnson-Lindenstrauss map that costs one pass over the gradient instead of
  a dense ``params x dim`` matrix (hundreds of MB);
- the model is ``models.scorer`` (``--scorer``), by default the base model the protocol fine-tunes
  (SmolLM2-135M), the model whose gradients LESS means.

It is the most expensive selector: one forward and backward pass per record. It scores a seeded random
``sample`` of the pool (1,000 by default; ``sample: null`` scores all); the others get no score and are
chosen last, so with ``n`` below the sample size every kept record comes from the sample.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core.record import Record
from .base import DEFAULT_SCORER, Selector, Signals, register_selector


class CountSketch:
    """A seeded sparse random projection of a flat gradient into ``dim`` buckets (inner products preserved in
    expectation)."""

    def __init__(self, size: int, dim: int, seed: int):
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.bucket = rng.integers(0, dim, size, dtype=np.int64)
        self.sign = rng.choice(np.array([-1.0, 1.0], np.float32), size)

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        return np.bincount(self.bucket, weights=flat * self.sign, minlength=self.dim).astype(np.float32)


@register_selector
class LessSelector(Selector):
    """Mean cosine of a record's projected LoRA gradient to a validation set's (LESS; see the module)."""

    name = "less"
    version = "1"
    uses_scorer = True

    def __init__(self, seed: int = 0, *, model: str = DEFAULT_SCORER, validation: str = "alpaca-eval",
                 validation_size: int = 32, sample: int | None = 1000, rank: int = 8, dim: int = 8192,
                 max_length: int = 512, **options: Any):
        super().__init__(seed=seed, model=model, validation=validation, validation_size=int(validation_size),
                         sample=None if sample is None else int(sample), rank=int(rank), dim=int(dim),
                         max_length=int(max_length), **options)
        # () -> (model, tokenizer); replaced in tests by a tiny model
        self.load: Callable[[], tuple[Any, Any]] = self._load_scorer
        self._passes = 0

    def report(self) -> dict[str, Any]:
        return {"gradient_passes": self._passes} if self._passes else {}

    def _load_scorer(self) -> tuple[Any, Any]:
        from ..models import load_scorer

        sc = load_scorer(self.options["model"])
        return sc.model, sc.tok

    def validation_pairs(self) -> list[tuple[list[dict[str, str]], str]]:
        from ..core.references import load_references

        pairs = load_references(self.options["validation"])
        rng = np.random.default_rng(self.seed)
        size = min(self.options["validation_size"], len(pairs))
        pick = sorted(rng.choice(len(pairs), size, replace=False).tolist())
        return [([{"role": "user", "content": pairs[i][0]}], pairs[i][1]) for i in pick]

    def sampled(self, n: int) -> list[int]:
        size = self.options["sample"]
        if size is None or size >= n:
            return list(range(n))
        return sorted(np.random.default_rng(self.seed).choice(n, size, replace=False).tolist())

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        out = np.full(len(records), np.nan)
        rows = self.sampled(len(records))
        if not rows:
            return out
        features = GradientFeatures(*self.load(), rank=self.options["rank"], dim=self.options["dim"],
                                    max_length=self.options["max_length"], seed=self.seed)
        val = features.of(self.validation_pairs(), "less: validation gradients")
        target = val.mean(axis=0)
        from ..rating.ifd import split_prompt

        train = features.of([split_prompt(records[i]) for i in rows], "less: gradients")
        out[rows] = train @ target
        self._passes = len(rows) + len(val)
        return out


class GradientFeatures:
    """Projected, unit-norm LoRA gradients of the response loss, one row per (prompt, response)."""

    def __init__(self, model: Any, tokenizer: Any, *, rank: int, dim: int, max_length: int, seed: int):
        import torch
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)
        targets = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                          if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in ("q_proj", "v_proj")})
        cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets or None,
                         task_type="CAUSAL_LM")
        self.model = get_peft_model(model, cfg).eval()  # eval: no dropout, a deterministic gradient
        self.params = [p for n, p in self.model.named_parameters() if p.requires_grad and "lora_B" in n]
        for n, p in self.model.named_parameters():  # B gets the only non-zero gradient at the initialisation
            p.requires_grad_("lora_B" in n)
        self.tok, self.max_length = tokenizer, max_length
        self.sketch = CountSketch(sum(p.numel() for p in self.params), dim, seed)

    def _ids(self, prompt: list[dict[str, str]], response: str) -> tuple[list[int], int]:
        head = self.tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        head = list(head["input_ids"] if hasattr(head, "keys") else head)
        tail = self.tok.encode(response, add_special_tokens=False)[: self.max_length // 2]
        ids = (head + tail)[-self.max_length:]
        return ids, min(len(tail), len(ids) - 1)

    def one(self, prompt: list[dict[str, str]], response: str) -> np.ndarray:
        import torch

        ids, n = self._ids(prompt, response)
        if n <= 0:
            return np.zeros(self.sketch.dim, np.float32)
        x = torch.tensor([ids])
        labels = torch.full_like(x, -100)
        labels[0, -n:] = x[0, -n:]
        self.model.zero_grad(set_to_none=True)
        self.model(input_ids=x, labels=labels).loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in self.params]).detach().float().numpy()
        v = self.sketch(flat)
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v

    def of(self, pairs: Sequence[tuple[list[dict[str, str]], str]], label: str) -> np.ndarray:
        from ..core.progress import progress_bar

        rows = []
        with progress_bar(label, total=len(pairs), unit="records") as bar:
            for prompt, response in pairs:
                rows.append(self.one(prompt, response))
                bar.advance(1)
        return np.stack(rows) if rows else np.zeros((0, self.sketch.dim), np.float32)
