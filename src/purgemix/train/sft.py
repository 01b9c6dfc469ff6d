"""Supervised fine-tuning with TRL's ``SFTTrainer`` and PEFT LoRA, the loss on the assistant turns only.

Each conversation is rendered through the base model's chat template (a plain ``### Instruction`` /
``### Response`` template for a base model without one) and tokenized here, turn by turn, so that the
labels of every token outside an assistant turn are -100 (``encode_conversation``; TRL takes the
``labels`` column as it is). Defaults are the papers' (LoRA r 64, alpha 16, dropout 0.1); ``lora=False``
fine-tunes every weight. The run is deterministic for a seed (``transformers.set_seed``, a seeded data
order), resumes from the newest checkpoint in ``OUT/checkpoints``, and ends with a merged model in
``OUT/model``, which ``models.load_llm("hf:OUT/model")`` opens. bf16 on a GPU, fp32 on CPU.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import orjson

from ..core.record import Record

# A template for base models without a chat template: Alpaca-style sections; the answer ends with EOS.
PLAIN_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}### Instruction:\n{{ m['content'] }}\n\n### Response:\n"
    "{% else %}{{ m['content'] }}{{ eos_token }}\n\n{% endif %}"
    "{% endfor %}"
)
DONE = "sft.json"  # written last into OUT: the settings, the data fingerprint and the loss history


@dataclass
class SFTSettings:
    base: str = "smollm2-135m"  # a short name, a GGUF path or an HF folder (models.hf.converted_folder)
    lora: bool = True
    r: int = 64
    alpha: int = 16
    dropout: float = 0.1
    learning_rate: float | None = None  # default: 2e-4 with LoRA, 2e-5 for a full fine-tune
    epochs: float = 1.0
    max_steps: int | None = None  # stops earlier than ``epochs`` when set
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    seed: int = 0
    save_steps: int = 50
    gradient_checkpointing: bool = False  # recompute activations: less memory, more time (large bases)
    # batches of similar length (a seeded shuffle of length-sorted megabatches): far less padding per step
    group_by_length: bool = True
    threads: int | None = None

    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else (2e-4 if self.lora else 2e-5)


def conversation_of(record: Record) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in record["messages"]]


def _template_ids(tok: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=add_generation_prompt)
    if hasattr(out, "keys"):  # BatchEncoding in newer transformers
        out = out["input_ids"]
    return list(out)


def encode_conversation(tok: Any, messages: Sequence[dict[str, str]], max_length: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one conversation: labels are the ids on the assistant turns (their text and
    the end-of-turn tokens the template adds) and -100 elsewhere (system, user, the assistant header).

    The turns are found by rendering growing prefixes of the conversation; this needs a template whose
    render of a prefix is a prefix of the whole (true of ChatML, Gemma's and the plain template), and
    raises otherwise rather than train on a wrong mask."""
    ids = _template_ids(tok, messages, False)
    labels = [-100] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(_template_ids(tok, messages[:i], True)) if i else 0
        end_ids = _template_ids(tok, messages[: i + 1], False)
        if end_ids != ids[: len(end_ids)] or start > len(end_ids):
            raise ValueError("the chat template does not render a conversation's prefix as its prefix; "
                             "the assistant turns cannot be masked")
        labels[start:len(end_ids)] = ids[start:len(end_ids)]
    return ids[:max_length], labels[:max_length]


def data_fingerprint(conversations: Sequence[Sequence[dict[str, str]]]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for c in conversations:
        h.update(orjson.dumps(c))
    return h.hexdigest()


def load_base(settings: SFTSettings):
    """(model, tokenizer) of the base, fp32 on CPU and bf16 on a GPU, the tokenizer with a chat template."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..models.hf import converted_folder, load_tokenizer

    folder = converted_folder(settings.base)
    tok = load_tokenizer(folder)
    if not tok.chat_template:
        tok.chat_template = PLAIN_TEMPLATE
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    return model, tok, folder


def finetune(conversations: Sequence[Sequence[dict[str, str]]], out: str | os.PathLike, settings: SFTSettings,
             *, model_and_tokenizer: tuple[Any, Any, Path | None] | Callable[[], tuple] | None = None,
             on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fine-tune the base on ``conversations`` into ``out``; returns what ``OUT/sft.json`` records. A
    finished run with the same settings and data is reused; an interrupted one resumes from its newest
    checkpoint. ``model_and_tokenizer`` (or a function that makes it) replaces ``load_base`` (tests pass a tiny
    random model)."""
    out = Path(out)
    fingerprint = {"settings": asdict(settings), "data": data_fingerprint(conversations),
                   "records": len(conversations)}
    done = out / DONE
    if done.exists():
        prev = orjson.loads(done.read_bytes())
        if prev.get("fingerprint") == fingerprint and (out / "model" / "config.json").exists():
            return prev
    # checkpoints of another run (other data or settings) in OUT must not be resumed into this one
    started = out / "started.json"
    if started.exists() and orjson.loads(started.read_bytes()) != fingerprint:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    started.write_bytes(orjson.dumps(fingerprint))
    import torch
    from transformers import TrainerCallback, set_seed

    try:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer
    except ImportError:
        from ..models.registry import ModelNotAvailable

        raise ModelNotAvailable("fine-tuning needs: pip install 'purgemix[train]'") from None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    set_seed(settings.seed)
    if callable(model_and_tokenizer):  # built only when there is training to do
        model_and_tokenizer = model_and_tokenizer()
    model, tok, folder = model_and_tokenizer or load_base(settings)
    rows = [encode_conversation(tok, c, settings.max_length) for c in conversations]
    rows = [(i, lab) for i, lab in rows if any(x != -100 for x in lab)]  # no assistant token: nothing to learn
    if not rows:
        raise ValueError("no conversation has an assistant turn to train on")
    data = Dataset.from_dict({"input_ids": [i for i, _ in rows], "labels": [lab for _, lab in rows]})
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    gpu = torch.cuda.is_available()
    ckpt = out / "checkpoints"
    args = SFTConfig(
        output_dir=str(ckpt), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.lr(),
        num_train_epochs=settings.epochs, max_steps=settings.max_steps or -1, max_length=settings.max_length,
        logging_steps=1, save_steps=settings.save_steps, save_total_limit=2, seed=settings.seed,
        data_seed=settings.seed, report_to=[], bf16=gpu, use_cpu=not gpu, dataloader_num_workers=0,
        disable_tqdm=bool(os.environ.get("PURGEMIX_NO_PROGRESS")), lr_scheduler_type="linear", warmup_ratio=0.0,
        # TRL turns recomputation on by default; a small model fits in memory without it, at ~1.3x the speed
        gradient_checkpointing=settings.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
    )

    class _Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if on_log and logs:
                on_log({"step": state.global_step, **logs})

    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=peft_config,
                         callbacks=[_Log()])
    resume = ckpt.exists() and any(p.name.startswith("checkpoint-") for p in ckpt.iterdir())
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    trained = trainer.model
    if settings.lora:
        trained = trained.merge_and_unload()
    final = out / "model"
    tmp = out / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trained.to(torch.float32).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if folder is not None and (Path(folder) / "purgemix_ok").exists():  # the tokenizer repair on reload
        shutil.copy(Path(folder) / "purgemix_ok", tmp / "purgemix_ok")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    info = {"fingerprint": fingerprint, "model": str(final), "steps": trainer.state.global_step,
            "train_loss": result.training_loss, "losses": losses, "trained_records": len(rows),
            "resumed": resume}
    done.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return info
