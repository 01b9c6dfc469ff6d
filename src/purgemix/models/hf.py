"""Embedded Hugging Face causal LMs through transformers (torch imported lazily).

The path for log-probabilities (IFD, perplexity) and for training. A GGUF file is converted once
(dequantised) and saved as safetensors in the cache, so later loads take about a second; the
known tokenizer traps of GGUF conversion are fixed and checked with a round trip:

- SmolLM2: transformers rebuilds its tokenizer with the wrong pre-tokenizer (every space and
  newline becomes ``<|endoftext|>``). We restore a byte-level pre-tokenizer (digits split one by
  one), byte-level decoder and post-processor, bos ``<|im_start|>``, eos/pad ``<|im_end|>``.
- Qwen2.5: the conversion is right but reports eos ``<|endoftext|>``; chat turns end in ``<|im_end|>``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from .base import Generation, GenerationParams, Messages, ScoredResponse, UsageStats
from .cache import cache_dir
from .registry import MODELS, ModelNotAvailable, gguf_path

ROUND_TRIP = "Hello world!\n  Two  spaces, digits 12345 and code: def f(x): return x*2\n"


def _torch():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise ModelNotAvailable("embedded transformers models need: pip install 'purgemix[models]'") from None
    return torch


def fix_tokenizer(tok, family: str) -> None:
    """Repair a GGUF-converted fast tokenizer in place (see module doc)."""
    if family == "smollm2":
        from tokenizers import decoders, pre_tokenizers, processors

        bt = tok.backend_tokenizer
        bt.normalizer = None
        bt.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        bt.decoder = decoders.ByteLevel()
        bt.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.bos_token = "<|im_start|>"
        tok.eos_token = "<|im_end|>"
        tok.pad_token = "<|im_end|>"
    elif family == "qwen":
        tok.eos_token = "<|im_end|>"
        if tok.pad_token is None:
            tok.pad_token = "<|endoftext|>"
    if not tok.chat_template:
        tok.chat_template = CHATML
    check_round_trip(tok)


def check_round_trip(tok) -> None:
    ids = tok.encode(ROUND_TRIP, add_special_tokens=False)
    back = tok.decode(ids)
    if back != ROUND_TRIP:
        raise ModelNotAvailable(f"tokenizer round trip failed: {back[:80]!r}")
    specials = set(tok.all_special_ids)
    if any(i in specials for i in ids):
        raise ModelNotAvailable("tokenizer turns plain text into special tokens")


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _family(name: str) -> str:
    n = name.lower()
    return "smollm2" if "smollm" in n else "qwen" if "qwen" in n else "other"


def converted_folder(spec: str) -> Path:
    """An HF folder for ``spec``: a folder as is, or a GGUF (short name or path) converted once."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return p
    gguf = gguf_path(spec)
    out = cache_dir() / "hf" / (spec if spec in MODELS else gguf.stem)
    if (out / "config.json").exists() and (out / "purgemix_ok").exists():
        return out
    _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    family = _family(spec + gguf.name)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    fix_tokenizer(tok, family)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the weights are already dequantised to fp32: drop the GGUF "quantizer" so the model saves
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "purgemix_ok").write_text(family + "\n")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def load_tokenizer(folder: Path):
    """The tokenizer of an HF folder, repaired when the folder was converted from GGUF (reloading it may
    rebuild the broken pre-tokenizer; the ``purgemix_ok`` marker names the family), with a pad token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    marker = Path(folder) / "purgemix_ok"
    if marker.exists():
        fix_tokenizer(tok, marker.read_text().strip())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class HFCausalLM:
    """``LLM`` and ``LogProbScorer`` over a transformers causal LM on CPU (or GPU when present)."""

    def __init__(self, spec: str, *, name: str | None = None, max_length: int = 1024, threads: int | None = None,
                 batch_size: int = 8):
        torch = _torch()
        from transformers import AutoModelForCausalLM

        if threads:
            torch.set_num_threads(threads)
        folder = converted_folder(spec)
        self.name = f"hf:{name or (spec if spec in MODELS else Path(spec).name)}"
        self.tok = load_tokenizer(folder)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).to(self.device).eval()
        self.max_length = max_length
        self.batch_size = batch_size  # sequences decoded together (one answer each): several times the tokens/s
        self.stats = UsageStats()
        self._lock = threading.Lock()
        self._grammars: dict[str, object] = {}  # compiled xgrammar grammars by source text

    @property
    def parallel_width(self) -> int:  # sequences decoded together
        return self.batch_size

    def _constraint(self, params: GenerationParams) -> list | None:
        """A fresh logits processor for the request's grammar or JSON schema (``xgrammar``, the engine vLLM and
        SGLang use), or None: no constraint asked, or xgrammar not installed (the caller's parser stays
        tolerant)."""
        if not (params.grammar or params.json_schema):
            return None
        try:
            import xgrammar as xgr
        except ImportError:
            return None
        key = ("g:" + params.grammar) if params.grammar else ("j:" + str(params.json_schema))
        if key not in self._grammars:
            if not self._grammars:
                self._compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(
                    self.tok, vocab_size=self.model.config.vocab_size))
            self._grammars[key] = (self._compiler.compile_grammar(params.grammar) if params.grammar
                                   else self._compiler.compile_json_schema(params.json_schema))
        return [xgr.contrib.hf.LogitsProcessor(self._grammars[key])]

    def _prompt_ids(self, conv: Messages) -> list[int]:
        out = self.tok.apply_chat_template([{"role": m["role"], "content": m["content"]} for m in conv],
                                           add_generation_prompt=True, tokenize=True)
        if hasattr(out, "keys"):  # BatchEncoding in newer transformers
            out = out["input_ids"]
        return list(out)

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        import torch

        if params.n == 1 and self.batch_size > 1 and len(conversations) > 1:
            return self._generate_batched(conversations, params, on_result)
        res = []
        for i, conv in enumerate(conversations):
            t0 = time.perf_counter()
            try:
                ids = self._prompt_ids(conv)[-self.max_length:]
                x = torch.tensor([ids], device=self.device)
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                sample = params.temperature > 0
                with self._lock, torch.no_grad():
                    y = self.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=params.max_tokens,
                                            do_sample=sample, temperature=params.temperature if sample else None,
                                            top_p=params.top_p if sample else None, num_return_sequences=params.n,
                                            pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id,
                                            logits_processor=self._constraint(params))
                texts, reasons, n_out = [], [], 0
                for row in y:
                    new = row[len(ids):].tolist()
                    if self.tok.eos_token_id in new:
                        new = new[: new.index(self.tok.eos_token_id)]
                        reason = "stop"
                    else:
                        reason = "length"
                    text = self.tok.decode(new, skip_special_tokens=True)
                    for s in params.stop:
                        if s in text:
                            text, reason = text[: text.index(s)], "stop"
                    texts.append(text)
                    reasons.append(reason)
                    n_out += len(new)
                g = Generation(texts=texts, finish_reasons=reasons, tokens_in=len(ids), tokens_out=n_out)
            except Exception as e:
                g = Generation(error=f"{type(e).__name__}: {e}")
            g.seconds = time.perf_counter() - t0
            self.stats.requests += 1
            self.stats.tokens_in += g.tokens_in
            self.stats.tokens_out += g.tokens_out
            res.append(g)
            if on_result:
                on_result(i, g)
        return res

    def _generate_batched(self, conversations: Sequence[Messages], params: GenerationParams,
                          on_result: Callable[[int, Generation], None] | None) -> list[Generation]:
        """One answer per conversation, ``batch_size`` decoded together, left-padded, prompts of similar
        length in one batch. Greedy answers are the same as one at a time up to float rounding."""
        import torch

        prompts: list[list[int] | None] = []
        res: list[Generation | None] = [None] * len(conversations)
        for i, conv in enumerate(conversations):
            try:
                prompts.append(self._prompt_ids(conv)[-self.max_length:])
            except Exception as e:
                prompts.append(None)
                res[i] = Generation(error=f"{type(e).__name__}: {e}")
        order = sorted((i for i, p in enumerate(prompts) if p is not None), key=lambda i: len(prompts[i]))
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        sample = params.temperature > 0
        for s in range(0, len(order), self.batch_size):
            chunk = order[s:s + self.batch_size]
            t0 = time.perf_counter()
            width = max(len(prompts[i]) for i in chunk)
            x = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                x[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]):] = 1
            try:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                with self._lock, torch.no_grad():
                    y = self.model.generate(x.to(self.device), attention_mask=mask.to(self.device),
                                            max_new_tokens=params.max_tokens, do_sample=sample,
                                            temperature=params.temperature if sample else None,
                                            top_p=params.top_p if sample else None,
                                            pad_token_id=pad, eos_token_id=self.tok.eos_token_id,
                                            logits_processor=self._constraint(params))
                gens = []
                for r, i in enumerate(chunk):
                    new = y[r, width:].tolist()
                    reason = "length"
                    if self.tok.eos_token_id in new:
                        new, reason = new[: new.index(self.tok.eos_token_id)], "stop"
                    text = self.tok.decode(new, skip_special_tokens=True)
                    for st in params.stop:
                        if st in text:
                            text, reason = text[: text.index(st)], "stop"
                    gens.append(Generation(texts=[text], finish_reasons=[reason], tokens_in=len(prompts[i]),
                                           tokens_out=len(new)))
            except Exception as e:
                gens = [Generation(error=f"{type(e).__name__}: {e}") for _ in chunk]
            seconds = time.perf_counter() - t0
            for i, g in zip(chunk, gens):
                g.seconds = seconds / len(chunk)
                self.stats.requests += 1
                self.stats.tokens_in += g.tokens_in
                self.stats.tokens_out += g.tokens_out
                res[i] = g
                if on_result:
                    on_result(i, g)
        return res  # type: ignore[return-value]

    def _loss(self, prefix: list[int], target: list[int]) -> float:
        import torch

        ids = (prefix + target)[-self.max_length:]
        n_t = min(len(target), len(ids) - 1)
        x = torch.tensor([ids], device=self.device)
        with torch.no_grad():
            logits = self.model(x).logits[0, :-1].float()
        labels = x[0, 1:]
        nll = torch.nn.functional.cross_entropy(logits[-n_t:], labels[-n_t:], reduction="mean")
        return float(nll)

    def _batch_losses(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Mean NLL of each target given its prefix, in one left-padded forward pass.

        Left padding puts every target at the end of its row, so the model computes logits only for
        the last positions (``logits_to_keep``): the vocabulary projection and the softmax over the
        prompt positions, most of the cost for a small model with a large vocabulary, are skipped."""
        import torch

        seqs, n_targets = [], []
        for prefix, target in pairs:
            ids = (prefix + target)[-self.max_length:]
            seqs.append(ids)
            n_targets.append(min(len(target), len(ids) - 1))
        width = max(len(x) for x in seqs)
        keep = max(n_targets) + 1
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        x = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, ids in enumerate(seqs):
            x[r, width - len(ids):] = torch.tensor(ids)
            mask[r, width - len(ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        x, mask, positions = x.to(self.device), mask.to(self.device), positions.to(self.device)
        with torch.no_grad():
            try:
                logits = self.model(input_ids=x, attention_mask=mask, position_ids=positions,
                                    logits_to_keep=keep).logits
            except TypeError:  # a model without logits_to_keep: all positions, keep the tail
                logits = self.model(input_ids=x, attention_mask=mask, position_ids=positions).logits[:, -keep:]
        # logits[:, j] predicts token (width - keep + j + 1); a target of n tokens ends the row
        out = []
        for r, n in enumerate(n_targets):
            lg = logits[r, keep - 1 - n:keep - 1].float()
            out.append(float(torch.nn.functional.cross_entropy(lg, x[r, width - n:])))
        return out

    def score(self, prompts: Sequence[Messages], responses: Sequence[str], batch_size: int = 8) -> list[ScoredResponse]:
        """Mean NLL of the response tokens given the chat-templated prompt, and given an empty
        user turn (the response "alone", same template). Batched, padded on the right."""
        empty = self._prompt_ids([{"role": "user", "content": ""}])
        out: list[ScoredResponse | None] = [None] * len(responses)
        items = []
        for i, (conv, resp) in enumerate(zip(prompts, responses)):
            try:
                target = self.tok.encode(resp, add_special_tokens=False)[: self.max_length // 2]
                if not target:
                    out[i] = ScoredResponse(error="empty response")
                    continue
                items.append((i, self._prompt_ids(conv), target))
            except Exception as e:
                out[i] = ScoredResponse(error=f"{type(e).__name__}: {e}")
        items.sort(key=lambda t: len(t[1]) + len(t[2]))  # similar lengths share a batch
        for s in range(0, len(items), batch_size):
            chunk = items[s:s + batch_size]
            t0 = time.perf_counter()
            try:
                with self._lock:
                    losses = self._batch_losses([(p, t) for _, p, t in chunk] + [(empty, t) for _, _, t in chunk])
                for j, (i, _, target) in enumerate(chunk):
                    cond, unc = losses[j], losses[len(chunk) + j]
                    ok = math.isfinite(cond) and math.isfinite(unc)
                    out[i] = ScoredResponse(tokens=len(target), loss_conditional=cond, loss_unconditional=unc,
                                            error=None if ok else "non-finite loss")
            except Exception as e:
                for i, _, _ in chunk:
                    out[i] = ScoredResponse(error=f"{type(e).__name__}: {e}")
            self.stats.requests += len(chunk)
            self.stats.seconds += time.perf_counter() - t0
        return out  # type: ignore[return-value]
