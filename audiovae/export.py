"""Export for real-time hosts: a mel model's decoder and its neural vocoder as TorchScript or ONNX graphs.

``export_model(model, "onnx", out)`` writes into the folder ``out``:

- ``decoder.{pt,onnx}``: ``z`` Tensor[B, C, T'] (and, for a genre-conditioned model, ``condition`` Tensor[B, G + 1]:
  mixture weights over the genres, the last column being "no genre") -> ``log_mel`` Tensor[B, n_mels, T' * k];
- ``vocoder.{pt,onnx}``: ``log_mel`` Tensor[B, n_mels, F] -> ``waveform`` Tensor[B, (F - 1) * hop_length];
- ``export.json``: what each graph takes and gives, the genres, the mel front end and the sample rate.

Batch and time are dynamic axes. Every graph is loaded back after writing and run on an input of another length
than the one it was traced with; its output must match eager PyTorch within ``TOLERANCE``, else the export fails.
ONNX graphs use the vocoder's matrix-product inverse DFT (ONNX has no inverse FFT) and need the ``onnx`` package to
write and ``onnxruntime`` to check (``pip install 'audiovae[export]'``).
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ._atomic import atomic_dir
from .errors import AudioVAEError, ConfigError

FORMATS = ("torchscript", "onnx")
SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}
TOLERANCE = 1e-4
OPSET = 17


class DecoderGraph(nn.Module):
    """A mel model's decoder with its genre condition as mixture weights: (z, condition) -> log_mel."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.model.decode_embedded(z, condition @ self.model.genre_embedding.weight)


class UnconditionalDecoderGraph(nn.Module):
    """A mel model's decoder without genres: z -> log_mel."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode_embedded(z, None)


def _graph_vocoder(vocoder, fmt: str):
    """The vocoder as exported: for ONNX a copy whose inverse DFT is two matrix products, with its DFT bases made
    persistent buffers (the ONNX tracer writes a non-persistent buffer again at every use: with 16 refinement
    rounds that made a 158 MB graph instead of a 20 MB one)."""
    if fmt != "onnx":
        return vocoder
    copy = type(vocoder)(**(vocoder.init_args | {"istft": "matmul"}))
    copy.load_state_dict(vocoder.state_dict())
    for module in copy.modules():
        for name in list(getattr(module, "_non_persistent_buffers_set", ())):
            module._non_persistent_buffers_set.discard(name)
    return copy.eval()


@dataclass
class _Part:
    """One graph to write: ``graph`` is traced, ``eager`` is what its output is checked against (the vocoder's ONNX
    copy is checked against the vocoder itself); ``inputs(frames, batch=1)`` makes example inputs; the graph is
    traced at ``trace_frames`` and checked at ``check_frames`` (time steps of its first input)."""

    graph: nn.Module
    eager: nn.Module
    names: list[str]
    inputs: Callable[..., tuple]
    output: str
    trace_frames: int
    check_frames: int


def _decoder_part(model) -> _Part:
    channels = model.latent_shape[0]
    if not model.conditions:
        graph = UnconditionalDecoderGraph(model)
        return _Part(graph, graph, ["z"], lambda frames, batch=1: (torch.randn(batch, channels, frames),),
                     "log_mel", 32, 7)
    columns = len(model.conditions) + 1

    def inputs(frames: int, batch: int = 1):
        weights = torch.zeros(batch, columns)
        weights[:, 0] = 1.0
        return torch.randn(batch, channels, frames), weights

    graph = DecoderGraph(model)
    return _Part(graph, graph, ["z", "condition"], inputs, "log_mel", 32, 7)


def _vocoder_part(vocoder, fmt: str) -> _Part:
    n_mels = vocoder.mel_config.n_mels
    return _Part(_graph_vocoder(vocoder, fmt), vocoder, ["log_mel"],
                 lambda frames, batch=1: (torch.randn(batch, n_mels, frames) - 4.0,), "waveform", 128, 57)


def _write_graph(graph: nn.Module, fmt: str, path: Path, names: list[str], output: str, example: tuple) -> None:
    # The tracers warn about every Python int taken from a shape; the check after writing (another length, another
    # batch) is what shows whether the graph generalises, so their warnings only add noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", module=r"torch\.onnx")
        _trace(graph.eval(), fmt, path, names, output, example)


def _trace(graph: nn.Module, fmt: str, path: Path, names: list[str], output: str, example: tuple) -> None:
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(graph, example, check_trace=False)
        traced.save(str(path))
        return
    try:
        import onnx  # noqa: F401  (torch.onnx needs it to serialise)
    except ImportError as exc:
        raise AudioVAEError(f"ONNX export needs the onnx package ({exc}): pip install 'audiovae[export]'") from exc
    axes = {name: {0: "batch", 2: "time"} if x.dim() == 3 else {0: "batch"} for name, x in zip(names, example)}
    axes[output] = {0: "batch", 2 if output == "log_mel" else 1: "time"}
    with torch.no_grad():
        torch.onnx.export(graph, example, str(path), input_names=names, output_names=[output], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)


def run_exported(path: str | os.PathLike, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Run an exported graph (.pt with torch.jit, .onnx with onnxruntime on the CPU) on ``inputs``."""
    path = Path(path)
    if path.suffix == ".pt":
        with torch.no_grad():
            return torch.jit.load(str(path))(*inputs)
    try:
        import onnxruntime
    except ImportError as exc:
        raise AudioVAEError(f"checking an ONNX graph needs onnxruntime ({exc}): "
                            "pip install 'audiovae[export]'") from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feeds)[0])


def _check(path: Path, eager: nn.Module, inputs: tuple) -> float:
    with torch.no_grad():
        expected = eager(*inputs)
    got = run_exported(path, inputs)
    if got.shape != expected.shape:
        raise AudioVAEError(f"{path.name}: the exported graph gives shape {tuple(got.shape)} for an input of another "
                            f"length, eager PyTorch {tuple(expected.shape)}; the export is not usable")
    error = float((got - expected).abs().max())
    if error > TOLERANCE:
        raise AudioVAEError(f"{path.name}: the exported graph differs from eager PyTorch by {error:.2e} "
                            f"(> {TOLERANCE:g}); the export is not usable")
    return error


def export_model(model, fmt: str, out: str | os.PathLike, *, vocoder=None) -> dict:
    """Write ``model``'s graphs in format ``fmt`` ("torchscript" or "onnx") into the folder ``out`` (atomically).

    model: a mel model (its decoder is exported, with ``vocoder`` when one is given) or a neural vocoder (exported
    alone). vocoder: a neural vocoder paired with the model, or None. Returns the export.json content, with each
    graph's largest difference from eager PyTorch under "checked_max_abs_diff".
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    is_vocoder = getattr(model, "modality", None) == "vocoder"
    if not is_vocoder and getattr(model, "modality", None) != "audio":
        raise ConfigError(f"export writes mel models and vocoders; {type(model).__name__} is a "
                          f"{getattr(model, 'modality', 'non-latent')} model")
    model, vocoder = model.cpu().eval(), (model if is_vocoder else vocoder)
    parts = {} if is_vocoder else {"decoder": _decoder_part(model)}
    if vocoder is not None:
        vocoder = vocoder.cpu().eval()
        parts["vocoder"] = _vocoder_part(vocoder, fmt)
    description = {"format": "audiovae-export", "graph_format": fmt, "tolerance": TOLERANCE, "graphs": {}}
    with atomic_dir(out) as tmp:
        for name, part in parts.items():
            path = tmp / f"{name}{SUFFIXES[fmt]}"
            _write_graph(part.graph, fmt, path, part.names, part.output, part.inputs(part.trace_frames))
            error = _check(path, part.eager, part.inputs(part.check_frames, batch=2))
            description["graphs"][name] = {"file": path.name, "inputs": part.names, "output": part.output,
                                           "checked_max_abs_diff": error}
        if not is_vocoder:
            columns = list(model.conditions) + ["(no genre)"] if model.conditions else []
            description |= {"genres": list(model.conditions), "condition_columns": columns,
                            "latent_channels": model.latent_shape[0],
                            "mel_frames_per_latent_frame": model.time_downsample}
        mel = vocoder.mel_config if vocoder is not None else model.frontend
        description |= {"mel": mel.to_dict(), "sample_rate": mel.sample_rate}
        (tmp / "export.json").write_text(json.dumps(description, indent=2))
    return description
