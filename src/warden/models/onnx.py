"""``OnnxModel``: an ONNX graph run by onnxruntime on the CPU, as a Warden model (black-box).

The model's single input takes the batch; its scores are the first floating-point output of
rank 2 (``(batch, n_classes)``) unless ``output_name`` picks another. Weights stored as
*external data* are accepted only from a model file whose data files sit inside the model's
own folder: a location that is absolute or climbs out with ``..`` could make the runtime read
any file on the machine, and bytes given in memory have no folder, so they must be
self-contained.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import InputShapeError, ModelError, ModelLoadError
from warden.models.base import AdapterBase, Bounds, check_batch
from warden.models.callable import check_scores, resolve_bounds

__all__ = ["OnnxModel"]

logger = logging.getLogger(__name__)

_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


def _node_tensors(nodes: Iterator[Any] | Sequence[Any]) -> Iterator[Any]:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from _graph_tensors(sub)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _external_locations(proto: Any) -> list[str]:
    """Locations of every tensor in the model stored as external data."""
    from onnx import TensorProto

    tensors = list(_graph_tensors(proto.graph))
    for function in proto.functions:
        tensors.extend(_node_tensors(function.node))
    locations = []
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            locations.append(entries.get("location", ""))
    return locations


def _check_external_data(proto: Any, folder: Path | None, what: str) -> None:
    locations = _external_locations(proto)
    if not locations:
        return
    if folder is None:
        raise ModelLoadError(
            f"{what}: the model keeps weights in external data files ({locations[0]!r}); "
            "load it from its file path, or save it with all weights inside the model"
        )
    root = folder.resolve()
    for loc in locations:
        posix, windows = PurePosixPath(loc), PureWindowsPath(loc)
        escapes = (
            not loc
            or posix.is_absolute()
            or windows.is_absolute()
            or bool(windows.drive)
            or ".." in posix.parts
            or ".." in windows.parts
        )
        if escapes or not (root / loc).resolve().is_relative_to(root):
            raise ModelLoadError(
                f"{what}: external data location {loc!r} is outside the model's folder; only "
                "relative paths inside the folder are allowed (no absolute paths, no '..')"
            )


class OnnxModel(AdapterBase):
    """Run an ONNX classifier with onnxruntime's ``CPUExecutionProvider``.

    ``source`` is a file path or the model's bytes. ``input_shape`` defaults to the graph's
    non-batch input dimensions when they are all fixed (give it when they are symbolic);
    ``n_classes`` defaults to the size of the score output's last dimension. Inputs are cast
    to the graph's input dtype (float32, float64 or float16) and run in chunks of
    ``batch_size``; a graph with a fixed batch size is fed chunks of exactly that size (the
    last one padded). ``bounds=None`` means unknown and is taken as ``[0, 1]`` per feature.
    """

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        input_shape: Sequence[int] | None = None,
        n_classes: int | None = None,
        bounds: Bounds | None = None,
        batch_size: int = 256,
        output_name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        self.source = source if isinstance(source, bytes) else Path(source)
        what = "ONNX model (bytes)" if isinstance(source, bytes) else str(source)
        self._session = self._open(self.source, what)
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ModelLoadError(f"{what}: expected a graph with one input, found [{names}]")
        inp = inputs[0]
        self._input_name: str = inp.name
        if inp.type not in _DTYPES:
            raise ModelLoadError(
                f"{what}: input {inp.name!r} has type {inp.type}; expected a float tensor"
            )
        self._dtype = _DTYPES[inp.type]
        self._input_shape = self._find_input_shape(list(inp.shape), input_shape, what)
        first = inp.shape[0] if inp.shape else None
        self._fixed_batch = first if isinstance(first, int) and first > 0 else None
        self.batch_size = self._fixed_batch or int(batch_size)
        out = self._find_output(output_name, what)
        self._output_name: str = out.name
        self._n_classes = self._find_n_classes(list(out.shape), n_classes, what)
        self._bounds = resolve_bounds(bounds, self._input_shape, "OnnxModel")
        logger.debug(
            "ONNX model %s: input %r %s, output %r, %d classes",
            what,
            self._input_name,
            self._input_shape,
            self._output_name,
            self._n_classes,
        )

    @staticmethod
    def _open(source: Path | bytes, what: str) -> Any:
        try:
            import onnx
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelLoadError(
                f"{what}: ONNX support needs onnx and onnxruntime (pip install 'warden[onnx]')"
            ) from exc
        try:
            if isinstance(source, bytes):
                proto = onnx.load_model_from_string(source)
            else:
                proto = onnx.load_model(str(source), load_external_data=False)
        except Exception as exc:  # protobuf raises assorted errors on bad bytes
            raise ModelLoadError(f"{what}: not a readable ONNX model: {exc}") from exc
        if not proto.ir_version or not proto.graph.node:
            raise ModelLoadError(f"{what}: not an ONNX model (no IR version or an empty graph)")
        folder = None if isinstance(source, bytes) else source.parent
        _check_external_data(proto, folder, what)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        model = source if isinstance(source, bytes) else str(source)
        try:
            return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors share no public base
            raise ModelLoadError(f"{what}: onnxruntime cannot load the model: {exc}") from exc

    @staticmethod
    def _find_input_shape(
        graph_shape: list[Any], given: Sequence[int] | None, what: str
    ) -> tuple[int, ...]:
        dims = graph_shape[1:]
        if given is None:
            if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
                raise ModelLoadError(
                    f"{what}: the graph's input shape {graph_shape} has symbolic dimensions; "
                    "pass input_shape (without the batch axis)"
                )
            return tuple(int(d) for d in dims)
        shape = tuple(int(s) for s in given)
        if not shape or any(s < 1 for s in shape):
            raise InputShapeError(f"input_shape must be positive sizes, got {shape}")
        if graph_shape and (
            len(dims) != len(shape)
            or any(
                isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, shape, strict=True)
            )
        ):
            raise ModelLoadError(
                f"{what}: input_shape {shape} does not fit the graph's input shape {graph_shape}"
            )
        return shape

    def _find_output(self, output_name: str | None, what: str) -> Any:
        outputs = self._session.get_outputs()
        if output_name is not None:
            for out in outputs:
                if out.name == output_name:
                    return out
            names = ", ".join(o.name for o in outputs)
            raise ModelLoadError(f"{what}: no output named {output_name!r}; outputs: [{names}]")
        for out in outputs:
            if out.type in _DTYPES and len(out.shape) == 2:
                return out
        described = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
        raise ModelLoadError(
            f"{what}: no float output of shape (batch, n_classes) among [{described}]; "
            "pass output_name"
        )

    @staticmethod
    def _find_n_classes(out_shape: list[Any], given: int | None, what: str) -> int:
        last = out_shape[-1] if out_shape else None
        static = last if isinstance(last, int) and last > 0 else None
        if given is not None and static is not None and int(given) != static:
            raise ModelLoadError(f"{what}: n_classes={given} but the graph outputs {static} scores")
        found = given if given is not None else static
        if found is None:
            raise ModelLoadError(
                f"{what}: the graph does not fix the number of classes; pass n_classes"
            )
        if found < 2:
            raise ModelError(f"n_classes must be at least 2, got {found}")
        return int(found)

    def _run(self, chunk: NDArray[Any]) -> NDArray[Any]:
        n = len(chunk)
        if self._fixed_batch is not None and n < self._fixed_batch:
            pad = np.repeat(chunk[:1], self._fixed_batch - n, axis=0)
            chunk = np.concatenate([chunk, pad])
        try:
            (out,) = self._session.run([self._output_name], {self._input_name: chunk})
        except Exception as exc:  # onnxruntime's errors share no public base
            raise ModelError(f"onnxruntime failed on a batch of {n}: {exc}") from exc
        return np.asarray(out)[:n]

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        arr = np.ascontiguousarray(check_batch(x, self._input_shape).astype(self._dtype))
        if len(arr) == 0:
            return np.zeros((0, self._n_classes), np.float32)
        outs = [
            self._run(arr[i : i + self.batch_size]) for i in range(0, len(arr), self.batch_size)
        ]
        return check_scores(
            np.concatenate(outs), len(arr), self._n_classes, f"ONNX output {self._output_name!r}"
        )

    def __repr__(self) -> str:
        src = "<bytes>" if isinstance(self.source, bytes) else str(self.source)
        return f"OnnxModel({src}, input_shape={self._input_shape}, n_classes={self._n_classes})"
