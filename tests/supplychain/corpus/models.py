"""Corpus part: model formats (safetensors, GGUF, ONNX, TF SavedModel, Keras HDF5/zip/JSON).

Everything is built as bytes: safetensors headers and GGUF files by hand, SavedModel and
``keras_metadata.pb`` protos with the small protobuf wire writer below (TensorFlow is not
installed), ONNX with ``onnx.helper`` and ``torch.onnx.export``, Keras HDF5 files with h5py.
Nothing here is ever loaded by a framework. Payloads that could run (a Jinja SSTI template,
marshalled Lambda bytecode, a ``WriteFile`` graph) would each create ``marker``.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import struct
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

# --- protobuf wire writer (tests only) ----------------------------------------------------


def varint(n: int) -> bytes:
    """Encode a non-negative int as a protobuf varint."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_int(number: int, value: int) -> bytes:
    """A varint field."""
    return varint(number << 3) + varint(value)


def pb_bytes(number: int, data: bytes | str) -> bytes:
    """A length-delimited field (string, bytes or an already encoded message)."""
    raw = data.encode() if isinstance(data, str) else data
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def pb_msg(number: int, *parts: bytes) -> bytes:
    """A sub-message field made of encoded ``parts``."""
    return pb_bytes(number, b"".join(parts))


# --- TensorFlow SavedModel ----------------------------------------------------------------


def attr_s(key: str, value: str) -> bytes:
    """NodeDef.attr entry with a string value (AttrValue.s)."""
    return pb_msg(5, pb_bytes(1, key), pb_msg(2, pb_bytes(2, value)))


def attr_type(key: str, dtype: int) -> bytes:
    """NodeDef.attr entry with a type value (AttrValue.type)."""
    return pb_msg(5, pb_bytes(1, key), pb_msg(2, pb_int(6, dtype)))


def attr_func(key: str, name: str) -> bytes:
    """NodeDef.attr entry naming a function (AttrValue.func)."""
    return pb_msg(5, pb_bytes(1, key), pb_msg(2, pb_msg(10, pb_bytes(1, name))))


def node_def(number: int, name: str, op: str, inputs: Sequence[str] = (), *attrs: bytes) -> bytes:
    """A NodeDef as field ``number`` (1 in GraphDef, 3 in FunctionDef)."""
    return pb_msg(
        number, pb_bytes(1, name), pb_bytes(2, op), *(pb_bytes(3, i) for i in inputs), *attrs
    )


def function_def(name: str, *nodes: bytes) -> bytes:
    """FunctionDefLibrary.function entry."""
    return pb_msg(1, pb_msg(1, pb_bytes(1, name)), *nodes)


def saved_model(
    graph_nodes: Iterable[bytes],
    functions: Iterable[bytes] = (),
    saver: bytes = b"",
    extra_meta: bytes = b"",
) -> bytes:
    """A SavedModel proto: schema version 1, one MetaGraphDef tagged ``serve``."""
    meta_info = pb_msg(1, pb_bytes(4, "serve"), pb_bytes(5, "2.15.0"), pb_bytes(6, "v2.15.0"))
    library = pb_msg(2, *functions)
    graph = pb_msg(2, *graph_nodes, library, pb_msg(4, pb_int(1, 1286)))
    return pb_int(1, 1) + pb_msg(2, meta_info, graph, saver, extra_meta)


def _standard_nodes() -> list[bytes]:
    dt = attr_type("dtype", 1)
    return [
        node_def(1, "x", "Placeholder", (), dt),
        node_def(1, "w", "VarHandleOp", (), dt, attr_s("shared_name", "w")),
        node_def(1, "w/Read", "ReadVariableOp", ("w",), dt),
        node_def(1, "MatMul", "MatMul", ("x", "w/Read"), attr_type("T", 1)),
        node_def(1, "b", "Const", (), dt),
        node_def(1, "Add", "AddV2", ("MatMul", "b"), attr_type("T", 1)),
        node_def(1, "Relu", "Relu", ("Add",), attr_type("T", 1)),
    ]


def _tf1_saver_nodes() -> list[bytes]:
    return [
        node_def(1, "save/filename", "PlaceholderWithDefault", ("save/Const",)),
        node_def(1, "save/Const", "Const", (), attr_type("dtype", 7)),
        node_def(1, "save/SaveV2", "SaveV2", ("save/Const", "save/names", "save/slices", "w")),
        node_def(1, "save/control_dependency", "Identity", ("save/Const",)),
        node_def(1, "save/RestoreV2", "RestoreV2", ("save/Const", "save/names", "save/slices")),
        node_def(1, "save/AssignVariableOp", "AssignVariableOp", ("w", "save/RestoreV2")),
        node_def(1, "save/restore_all", "NoOp", ()),
    ]


def _tf2_saver() -> tuple[list[bytes], list[bytes]]:
    nodes = [
        node_def(1, "saver_filename", "Placeholder", (), attr_type("dtype", 7)),
        node_def(
            1,
            "StatefulPartitionedCall_1",
            "StatefulPartitionedCall",
            ("saver_filename",),
            attr_func("f", "__inference__traced_save_45"),
        ),
        node_def(
            1,
            "StatefulPartitionedCall_2",
            "StatefulPartitionedCall",
            ("saver_filename",),
            attr_func("f", "__inference__traced_restore_60"),
        ),
    ]
    functions = [
        function_def(
            "__inference__traced_save_45",
            node_def(3, "StaticRegexFullMatch", "StaticRegexFullMatch", ("file_prefix",)),
            node_def(3, "StringJoin", "StringJoin", ("file_prefix",)),
            node_def(3, "ShardedFilename", "ShardedFilename", ("StringJoin",)),
            node_def(3, "SaveV2", "SaveV2", ("ShardedFilename",)),
            node_def(3, "MergeV2Checkpoints", "MergeV2Checkpoints", ("ShardedFilename",)),
            node_def(3, "Identity", "Identity", ("file_prefix",)),
        ),
        function_def(
            "__inference__traced_restore_60",
            node_def(3, "RestoreV2", "RestoreV2", ("file_prefix",)),
            node_def(3, "AssignVariableOp", "AssignVariableOp", ("RestoreV2",)),
            node_def(3, "NoOp", "NoOp", ()),
        ),
    ]
    return nodes, functions


def _saver_def() -> bytes:
    return pb_msg(
        3,
        pb_bytes(1, "save/Const:0"),
        pb_bytes(2, "save/control_dependency:0"),
        pb_bytes(3, "save/restore_all"),
        pb_int(4, 5),
        pb_int(7, 2),
    )


def savedmodel_standard() -> bytes:
    """MatMul/Add/Relu with a TF1 saver and TF2 traced save/restore functions."""
    tf2_nodes, tf2_functions = _tf2_saver()
    return saved_model(
        [*_standard_nodes(), *_tf1_saver_nodes(), *tf2_nodes], tf2_functions, _saver_def()
    )


def savedmodel_file_ops(marker: str) -> bytes:
    """Reads /etc/passwd and writes it to ``marker`` (ReadFile + WriteFile, one in a function)."""
    nodes = [
        *_standard_nodes(),
        node_def(1, "secret_path", "Const", (), attr_s("value", "/etc/passwd")),
        node_def(1, "ReadFile", "ReadFile", ("secret_path",)),
        node_def(1, "out_path", "Const", (), attr_s("value", marker)),
        node_def(
            1,
            "Call",
            "StatefulPartitionedCall",
            ("out_path", "ReadFile"),
            attr_func("f", "__inference_exfiltrate_7"),
        ),
    ]
    functions = [
        function_def(
            "__inference_exfiltrate_7",
            node_def(3, "WriteFile", "WriteFile", ("path", "contents")),
        )
    ]
    return saved_model(nodes, functions, _saver_def())


def savedmodel_pyfunc(marker: str) -> bytes:
    """A PyFunc node (the registered Python function would touch ``marker``)."""
    nodes = [
        *_standard_nodes(),
        node_def(1, "cmd", "Const", (), attr_s("value", f"touch {marker}")),
        node_def(1, "PyFunc", "PyFunc", ("cmd",), attr_s("token", "pyfunc_0")),
        node_def(1, "save/SaveV2", "SaveV2", ("cmd",)),
    ]
    return saved_model(nodes, (), b"")


def keras_metadata(objects: Sequence[tuple[str, str, dict[str, Any]]]) -> bytes:
    """keras_metadata.pb: SavedMetadata with (node_path, identifier, metadata JSON) nodes."""
    parts = []
    for node_id, (path, identifier, metadata) in enumerate(objects):
        parts.append(
            pb_msg(
                1,
                pb_int(2, node_id) if node_id else b"",
                pb_bytes(3, path),
                pb_bytes(4, identifier),
                pb_bytes(5, json.dumps(metadata)),
                pb_msg(6, pb_int(1, 1), pb_int(2, 1)),
            )
        )
    return b"".join(parts)


# --- Keras --------------------------------------------------------------------------------


def lambda_code_b64(marker: str) -> str:
    """base64 of a marshalled lambda that would create ``marker`` (as Keras's func_dump does)."""
    module = compile(
        f"lambda x: __import__('os').system('touch {marker}') or x", "<lambda>", "eval"
    )
    code = next(c for c in module.co_consts if hasattr(c, "co_code"))
    return base64.encodebytes(marshal.dumps(code)).decode("ascii")


def _k2_dense(name: str, units: int) -> dict[str, Any]:
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": "relu",
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
        },
    }


def _k2_lambda(marker: str) -> dict[str, Any]:
    return {
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "trainable": True,
            "dtype": "float32",
            "function": [lambda_code_b64(marker), None, None],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }


def keras2_config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """A Keras 2 ``Sequential`` config (``model.to_json()`` / HDF5 ``model_config``)."""
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, 4],
                        "dtype": "float32",
                        "sparse": False,
                        "ragged": False,
                        "name": "input_1",
                    },
                },
                *layers,
            ],
        },
        "keras_version": "2.12.0",
        "backend": "tensorflow",
    }


def _k3(module: str, class_name: str, config: Any, **extra: Any) -> dict[str, Any]:
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": None,
        **extra,
    }


def _k3_dense(name: str, units: int, activation: Any = "relu") -> dict[str, Any]:
    policy = _k3("keras", "DTypePolicy", {"name": "float32"})
    return _k3(
        "keras.layers",
        "Dense",
        {
            "name": name,
            "trainable": True,
            "dtype": policy,
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": _k3("keras.initializers", "GlorotUniform", {"seed": None}),
            "bias_initializer": _k3("keras.initializers", "Zeros", {}),
            "kernel_regularizer": None,
        },
        build_config={"input_shape": [None, 4]},
    )


def keras3_config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """A Keras 3 ``config.json`` (as inside a ``.keras`` archive)."""
    return _k3(
        "keras",
        "Sequential",
        {
            "name": "sequential",
            "trainable": True,
            "dtype": _k3("keras", "DTypePolicy", {"name": "float32"}),
            "layers": [
                _k3(
                    "keras.layers",
                    "InputLayer",
                    {"batch_shape": [None, 4], "dtype": "float32", "name": "input_layer"},
                ),
                *layers,
            ],
            "build_input_shape": [None, 4],
        },
        build_config={"input_shape": [None, 4]},
        compile_config=None,
    )


def _k3_lambda(marker: str) -> dict[str, Any]:
    function = {
        "class_name": "__lambda__",
        "config": {"code": lambda_code_b64(marker), "defaults": None, "closure": None},
    }
    return _k3(
        "keras.layers",
        "Lambda",
        {"name": "lambda", "trainable": True, "function": function, "arguments": {}},
    )


def keras_h5(config: dict[str, Any] | None, *, with_weights: bool = True) -> bytes:
    """A legacy Keras HDF5 file: ``model_config`` root attribute and a weights group."""
    import h5py
    import numpy as np

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        if config is not None:
            f.attrs["model_config"] = json.dumps(config).encode("utf-8")
            f.attrs["keras_version"] = b"2.12.0"
            f.attrs["backend"] = b"tensorflow"
        if with_weights:
            group = f.create_group("model_weights/dense/dense")
            group.create_dataset("kernel:0", data=np.zeros((4, 3), np.float32))
            group.create_dataset("bias:0", data=np.zeros((3,), np.float32))
    return buf.getvalue()


def hdf5_external_link(target: str) -> bytes:
    """An HDF5 file whose only content is an external link to ``target``."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f["weights"] = h5py.ExternalLink(target, "/data")
    return buf.getvalue()


def keras_zip(config: dict[str, Any]) -> bytes:
    """A Keras 3 ``.keras`` archive: config.json, metadata.json, model.weights.h5."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "metadata.json",
            json.dumps({"keras_version": "3.5.0", "date_saved": "2024-06-01@12:00:00"}),
        )
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", keras_h5(None))
    return buf.getvalue()


# --- safetensors --------------------------------------------------------------------------


def safetensors_raw(header: dict[str, Any] | str, data: bytes) -> bytes:
    """A safetensors file from an arbitrary header (object or raw JSON text) and data bytes."""
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + data


def _st(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# --- GGUF ---------------------------------------------------------------------------------

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
_GGUF_FMT = {GGUF_U32: "<I", GGUF_I32: "<i", GGUF_F32: "<f", GGUF_BOOL: "<?"}


def _gguf_string(text: str | bytes) -> bytes:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _gguf_value(vtype: int, value: Any) -> bytes:
    if vtype == GGUF_STRING:
        return _gguf_string(value)
    if vtype == GGUF_ARRAY:
        etype, items = value
        body = b"".join(_gguf_value(etype, v) for v in items)
        return struct.pack("<IQ", etype, len(items)) + body
    return struct.pack(_GGUF_FMT[vtype], value)


def gguf_file(
    kvs: Sequence[tuple[str, int, Any]],
    tensors: Sequence[tuple[str, Sequence[int], int, bytes]],
    alignment: int = 32,
) -> bytes:
    """A GGUF v3 file: metadata ``(key, type, value)`` and ``(name, dims, ggml type, data)``."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, vtype, value in kvs:
        out += _gguf_string(key) + struct.pack("<I", vtype) + _gguf_value(vtype, value)
    offset = 0
    blobs = []
    for name, dims, ttype, data in tensors:
        out += _gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ttype, offset)
        padded = data + b"\0" * (-len(data) % alignment)
        blobs.append(padded)
        offset += len(padded)
    out += b"\0" * (-len(out) % alignment)
    return bytes(out) + b"".join(blobs)


CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def ssti_template(marker: str) -> str:
    """The CVE-2024-34359 proof-of-concept shape: reach os.popen through __subclasses__."""
    return (
        "{% for x in ().__class__.__base__.__subclasses__() %}"
        "{% if 'warning' in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').popen('touch " + marker + "').read() }}"
        "{% endif %}{% endfor %}" + CHATML
    )


def gguf_model(template: str) -> bytes:
    """A tiny llama-style GGUF with a tokenizer, ``template`` and three small tensors."""
    kvs = [
        ("general.architecture", GGUF_STRING, "llama"),
        ("general.name", GGUF_STRING, "tiny"),
        ("general.alignment", GGUF_U32, 32),
        ("llama.context_length", GGUF_U32, 128),
        ("tokenizer.ggml.model", GGUF_STRING, "gpt2"),
        ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, ["<s>", "</s>", "a", "Ġhello"])),
        ("tokenizer.ggml.scores", GGUF_ARRAY, (GGUF_F32, [0.0, 0.0, -1.0, -2.0])),
        ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, [3, 3, 1, 1])),
        ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        ("tokenizer.chat_template", GGUF_STRING, template),
    ]
    tensors = [
        ("token_embd.weight", [4, 4], 0, struct.pack("<16f", *range(16))),
        ("output_norm.weight", [4], 1, struct.pack("<4e", 1.0, 1.0, 1.0, 1.0)),
        ("blk.0.attn_q.weight", [32, 1], 8, b"\x00\x3c" + bytes(range(32))),
    ]
    return gguf_file(kvs, tensors)


# --- ONNX ---------------------------------------------------------------------------------


def onnx_torch() -> bytes:
    """A tiny MLP exported by ``torch.onnx.export`` (TorchScript exporter)."""
    import warnings

    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
    ).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 4),),
            buf,
            dynamo=False,
            input_names=["input"],
            output_names=["scores"],
            dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},
            opset_version=17,
        )
    return buf.getvalue()


def onnx_helper_model(
    *, location: str | None = None, domain: str = "", op_type: str = "Relu"
) -> bytes:
    """An onnx.helper model: an ``If`` with subgraphs, a Constant, one initializer.

    ``location`` makes the initializer external; ``domain``/``op_type`` set the op used inside
    the ``then`` branch.
    """
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    if location is not None:
        weight.ClearField("float_data")
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    then_graph = helper.make_graph(
        [helper.make_node(op_type, ["w"], ["y"], domain=domain)], "then", [], [y]
    )
    else_graph = helper.make_graph([helper.make_node("Neg", ["w"], ["y"])], "else", [], [y])
    nodes = [
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("cv", TensorProto.BOOL, [], [True])
        ),
        helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    graph = helper.make_graph(nodes, "main", [], [y], initializer=[weight])
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="onnx.helper")
    return model.SerializeToString()


# --- the corpus ---------------------------------------------------------------------------


def malicious(marker: str) -> dict[str, bytes]:
    """Model-format samples that must each raise at least a MEDIUM finding."""
    f32 = bytes(16)
    return {
        "safetensors-overlap.safetensors": safetensors_raw(
            {"a": _st("F32", [2], 0, 8), "b": _st("F32", [2], 4, 12)}, bytes(12)
        ),
        "safetensors-trailing.safetensors": safetensors_raw(
            {"a": _st("F32", [4], 0, 16)}, f32 + f"import os; os.system('touch {marker}')".encode()
        ),
        "safetensors-dupkey.safetensors": safetensors_raw(
            '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
            '"a":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}}',
            f32,
        ),
        "safetensors-overflow.safetensors": safetensors_raw(
            {"a": _st("F32", [1 << 62, 8], 0, 16)}, f32
        ),
        "safetensors-baddtype.safetensors": safetensors_raw({"a": _st("F128", [1], 0, 16)}, f32),
        "gguf-ssti.gguf": gguf_model(ssti_template(marker)),
        "onnx-external/model.onnx": onnx_helper_model(location="../../etc/passwd"),
        "onnx-external-abs/model.onnx": onnx_helper_model(location="/etc/passwd"),
        "onnx-custom-op.onnx": onnx_helper_model(domain="com.example.evil", op_type="Backdoor"),
        "onnx-python-op.onnx": onnx_helper_model(domain="com.microsoft", op_type="PythonOp"),
        "savedmodel-readfile/saved_model.pb": savedmodel_file_ops(marker),
        "savedmodel-pyfunc/saved_model.pb": savedmodel_pyfunc(marker),
        "savedmodel-keras-lambda/saved_model.pb": savedmodel_standard(),
        "savedmodel-keras-lambda/keras_metadata.pb": keras_metadata(
            [
                ("root", "_tf_keras_sequential", keras2_config([_k2_lambda(marker)])),
                (
                    "root.layer-0",
                    "_tf_keras_layer",
                    {"name": "lambda", "trainable": True, **_k2_lambda(marker)},
                ),
            ]
        ),
        "keras-lambda.h5": keras_h5(keras2_config([_k2_dense("dense", 3), _k2_lambda(marker)])),
        "keras-lambda.keras": keras_zip(keras3_config([_k3_dense("dense", 3), _k3_lambda(marker)])),
        "keras-custom-module.json": json.dumps(
            keras3_config(
                [_k3("evil_layers.backdoor", "Trigger", {"name": "trigger", "path": marker})]
            )
        ).encode(),
        "keras-os-system.json": json.dumps(
            keras3_config(
                [
                    _k3_dense(
                        "dense",
                        3,
                        activation=_k3("os", "function", "system", registered_name="function"),
                    )
                ]
            )
        ).encode(),
        "safetensors-gap.safetensors": safetensors_raw(
            {"a": _st("F32", [2], 0, 8), "b": _st("F32", [2], 16, 24)}, bytes(24)
        ),
        "safetensors-size-mismatch.safetensors": safetensors_raw(
            {"a": _st("F32", [2], 0, 16)}, bytes(16)
        ),
        "gguf-include-template.gguf": gguf_model("{% include 'payload.j2' %}" + CHATML),
        "gguf-dup-key.gguf": gguf_file(
            [("general.name", GGUF_STRING, "a"), ("general.name", GGUF_STRING, marker)],
            [("t", [4], 0, bytes(16))],
        ),
        "savedmodel-print-to-file/saved_model.pb": saved_model(
            [
                *_standard_nodes(),
                node_def(1, "p", "PrintV2", ("Relu",), attr_s("output_stream", f"file://{marker}")),
            ]
        ),
        "savedmodel-rpc/saved_model.pb": saved_model(
            [*_standard_nodes(), node_def(1, "rpc", "RpcCall", ("Relu",))]
        ),
        "keras-get-file.json": json.dumps(
            keras3_config(
                [
                    _k3_dense(
                        "dense",
                        3,
                        activation=_k3(
                            "keras.utils", "function", "get_file", registered_name="function"
                        ),
                    )
                ]
            )
        ).encode(),
        "keras-tfsm-layer.json": json.dumps(
            keras3_config([_k3("keras.layers", "TFSMLayer", {"filepath": "/tmp/attacker_model"})])
        ).encode(),
        "keras2-lambda.json": json.dumps(keras2_config([_k2_lambda(marker)])).encode(),
        "tfjs-lambda/model.json": json.dumps(
            {
                "format": "layers-model",
                "generatedBy": "keras v2.12.0",
                "convertedBy": "TensorFlow.js Converter v4.10.0",
                "modelTopology": keras2_config([_k2_lambda(marker)]),
                "weightsManifest": [],
            }
        ).encode(),
        "keras-registered-custom.h5": keras_h5(
            keras2_config([{"class_name": "Evil>Backdoor", "config": {"name": "bd"}}])
        ),
        "hdf5-external-link.h5": hdf5_external_link("/etc/passwd"),
    }


def benign() -> dict[str, bytes]:
    """Ordinary model files of the same formats: none may raise any finding."""
    import numpy as np
    from safetensors.numpy import save

    weights = {
        "dense.kernel": np.arange(12, dtype=np.float32).reshape(4, 3),
        "dense.bias": np.zeros(3, dtype=np.float32),
        "steps": np.array([7], dtype=np.int64),
        "mask": np.ones((2, 2), dtype=np.bool_),
    }
    return {
        "safetensors-numpy.safetensors": save(weights, metadata={"format": "np"}),
        "gguf-chatml.gguf": gguf_model(CHATML),
        "onnx-torch.onnx": onnx_torch(),
        "onnx-helper.onnx": onnx_helper_model(),
        "onnx-external-ok/model.onnx": onnx_helper_model(location="weights.bin"),
        "onnx-external-ok/weights.bin": struct.pack("<2f", 1.0, 2.0),
        "keras-dense.h5": keras_h5(keras2_config([_k2_dense("dense", 3), _k2_dense("out", 2)])),
        "keras-dense.keras": keras_zip(keras3_config([_k3_dense("dense", 3)])),
        "savedmodel-standard/saved_model.pb": savedmodel_standard(),
    }
