"""Pickle corpus: malicious pickles assembled opcode by opcode, benign ones from real libraries.

Every malicious sample is built as bytes here and never loaded; if one were unpickled, its
payload would create the file ``marker`` (shell ``echo > marker``, Python ``open(marker, 'w')``,
``pip --log marker`` …). Keys are ``pickle-<what>.<ext>``; some extensions deliberately lie.
Benign samples come from the real libraries (torch, scikit-learn, joblib, numpy) and the
standard pickler, and are loaded nowhere either.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import shlex
import struct
import subprocess
import zipfile

__all__ = ["A", "benign", "malicious", "torch_member"]


class A:
    """A tiny pickle assembler: each method returns the bytes of one or a few opcodes."""

    @staticmethod
    def proto(n: int) -> bytes:
        return b"\x80" + bytes([n])

    @staticmethod
    def u(text: str) -> bytes:
        """SHORT_BINUNICODE or BINUNICODE."""
        data = text.encode()
        if len(data) < 256:
            return b"\x8c" + bytes([len(data)]) + data
        return b"X" + struct.pack("<I", len(data)) + data

    @staticmethod
    def u8(text: str) -> bytes:
        """BINUNICODE8."""
        data = text.encode()
        return b"\x8d" + struct.pack("<Q", len(data)) + data

    @staticmethod
    def s(text: str) -> bytes:
        """Protocol 0 STRING (quoted, escaped)."""
        return b"S" + repr(text).encode("ascii") + b"\n"

    @staticmethod
    def binstring(text: str) -> bytes:
        """BINSTRING (4-byte length)."""
        data = text.encode("latin-1")
        return b"T" + struct.pack("<I", len(data)) + data

    @staticmethod
    def short_binstring(text: str) -> bytes:
        data = text.encode("latin-1")
        return b"U" + bytes([len(data)]) + data

    @staticmethod
    def binbytes(data: bytes) -> bytes:
        return b"B" + struct.pack("<I", len(data)) + data

    @staticmethod
    def glob(module: str, name: str) -> bytes:
        """GLOBAL (text form)."""
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    @staticmethod
    def sglob(module: str, name: str) -> bytes:
        """STACK_GLOBAL from two SHORT_BINUNICODE strings."""
        return A.u(module) + A.u(name) + b"\x93"

    @staticmethod
    def tup(*items: bytes) -> bytes:
        return b"(" + b"".join(items) + b"t"

    @staticmethod
    def call(func: bytes, *args: bytes) -> bytes:
        """``func(*args)``: func, MARK, args, TUPLE, REDUCE."""
        return func + A.tup(*args) + b"R"

    @staticmethod
    def dict_(*pairs: bytes) -> bytes:
        return b"}(" + b"".join(pairs) + b"u"

    @staticmethod
    def int_(n: int) -> bytes:
        return b"J" + struct.pack("<i", n)


def _pickle0_system(module: str, cmd: str) -> bytes:
    return A.glob(module, "system") + b"(" + A.s(cmd) + b"tR."


def _payloads(marker: str) -> tuple[str, str]:
    """(shell command, Python statement) that create ``marker``."""
    return f"echo x > {shlex.quote(marker)}", f"open({marker!r}, 'w').close()"


class _Reduce:
    """An object that pickles as ``func(*args)`` (the standard ``__reduce__`` protocol)."""

    def __init__(self, func: object, args: tuple[object, ...]) -> None:
        self.func, self.args = func, args


class _Pickler(pickle.Pickler):
    """Writes :class:`_Reduce` objects through ``reducer_override``; dumps only, never loads."""

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, _Reduce):
            return (obj.func, obj.args)
        return NotImplemented


def _dumps(obj: object, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def _torch_legacy(pickles: list[bytes], tail: bytes = b"") -> bytes:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return magic + b"".join(pickles) + tail


def _joblib_object_array(payload: bytes) -> bytes:
    """A joblib stream whose object array's nested pickle is ``payload``."""
    dtype = (
        A.call(A.sglob("numpy", "dtype"), A.u("O8"), b"\x89", b"\x88")
        + A.tup(b"K\x03", A.u("|"), b"NNN", A.int_(-1), A.int_(-1), b"K?")
        + b"b"
    )
    state = A.dict_(
        A.u("subclass") + A.sglob("numpy", "ndarray"),
        A.u("shape") + b"K\x01\x85",
        A.u("order") + A.u("C"),
        A.u("dtype") + dtype,
        A.u("allow_mmap") + b"\x89",
        A.u("numpy_array_alignment_bytes") + b"K\x10",
    )
    wrapper = A.sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + state + b"b"
    return A.proto(4) + b"}" + A.u("weights") + wrapper + payload + b"s."


def _npy(descr: str, shape: tuple[int, ...], data: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def malicious(marker: str) -> dict[str, bytes]:
    """Pickles whose payload would create ``marker`` if they were ever unpickled."""
    cmd, py = _payloads(marker)
    shell_system = A.proto(2) + A.call(A.glob("os", "system"), A.u(cmd)) + b"."
    getattr_os = A.call(
        A.glob("builtins", "getattr"),
        A.call(A.glob("importlib", "import_module"), A.u("os")),
        A.u("system"),
    )
    os_module = A.call(A.glob("importlib", "import_module"), A.u("os"))
    out: dict[str, bytes] = {
        "pickle-os-system.pkl": shell_system,
        "pickle-posix-system.bin": _dumps(_Reduce(os.system, (cmd,)), 2),
        "pickle-nt-system.pkl": A.proto(4) + A.call(A.sglob("nt", "system"), A.u(cmd)) + b".",
        "pickle-subprocess-popen.pkl": A.proto(4)
        + A.call(A.sglob("subprocess", "Popen"), A.tup(A.u("sh"), A.u("-c"), A.u(cmd)))
        + b".",
        "pickle-subprocess-check-output.data": _dumps(
            _Reduce(subprocess.check_output, (("sh", "-c", cmd),)), 5
        ),
        "pickle-builtins-exec.pkl": A.proto(4)
        + A.call(A.sglob("builtins", "exec"), A.u(py))
        + b".",
        "pickle-builtin-eval-proto0.txt": A.glob("__builtin__", "eval")
        + b"("
        + A.s(f"open({marker!r}, 'w').close()")
        + b"tR.",
        "pickle-builtin-eval-proto2.pkl": A.proto(2)
        + A.call(A.glob("__builtin__", "eval"), A.u(f"open({marker!r}, 'w').close()"))
        + b".",
        "pickle-getattr-importlib.pkl": A.proto(2) + A.call(getattr_os, A.u(cmd)) + b".",
        "pickle-pkgutil-resolve-name.pkl": A.proto(4)
        + A.call(A.call(A.sglob("pkgutil", "resolve_name"), A.u("os:system")), A.u(cmd))
        + b".",
        "pickle-functools-partial.pkl": A.proto(4)
        + A.call(A.call(A.sglob("functools", "partial"), A.sglob("os", "system"), A.u(cmd)))
        + b".",
        "pickle-operator-methodcaller.pkl": A.proto(4)
        + A.call(A.call(A.sglob("operator", "methodcaller"), A.u("system"), A.u(cmd)), os_module)
        + b".",
        "pickle-operator-attrgetter.pkl": A.proto(4)
        + A.call(
            A.call(A.call(A.sglob("_operator", "attrgetter"), A.u("system")), os_module), A.u(cmd)
        )
        + b".",
        "pickle-cprofile-run.pkl": A.proto(4) + A.call(A.sglob("cProfile", "run"), A.u(py)) + b".",
        "pickle-bdb-run.pkl": A.proto(4)
        + A.call(
            A.call(A.sglob("builtins", "getattr"), A.call(A.sglob("bdb", "Bdb")), A.u("run")),
            A.u(py),
        )
        + b".",
        "pickle-timeit.pkl": A.proto(4)
        + A.call(A.sglob("timeit", "timeit"), A.u("pass"), A.u(py))
        + b".",
        "pickle-venv-create.pkl": A.proto(4)
        + A.call(A.sglob("venv", "create"), A.u(marker))
        + b".",
        "pickle-pydoc-pipepager.pkl": A.proto(4)
        + A.call(A.sglob("pydoc", "pipepager"), A.u("x"), A.u(cmd))
        + b".",
        "pickle-pip-main.pkl": A.proto(4)
        + A.call(
            A.sglob("pip._internal.cli.main", "main"),
            b"]" + b"(" + A.u("--log") + A.u(marker) + A.u("--version") + b"e",
        )
        + b".",
        "pickle-code-interpreter.pkl": A.proto(4)
        + A.call(
            A.call(
                A.sglob("builtins", "getattr"),
                A.sglob("code", "InteractiveInterpreter")
                + b")}\x92"  # NEWOBJ_EX(cls, (), {})
                + A.dict_(
                    A.u("locals") + b"}",
                    A.u("compile") + A.call(A.sglob("codeop", "CommandCompiler")),
                )
                + b"b",
                A.u("runsource"),
            ),
            A.u(py),
        )
        + b".",
        "pickle-torch-private-helper.pkl": A.proto(2)
        + A.call(A.call(A.glob("torch._utils", "_import_dotted_name"), A.u("os.system")), A.u(cmd))
        + b".",
        "pickle-torch-load-nested.pkl": A.proto(4)
        + A.call(
            A.call(A.sglob("functools", "partial"), A.sglob("torch.serialization", "load"))
            + A.tup(
                A.sglob("torch.serialization", "load"),
                b")",
                A.dict_(A.u("weights_only") + b"\x89"),
                b"N",
            )
            + b"b",
            A.call(A.sglob("_io", "BytesIO"), A.binbytes(shell_system)),
        )
        + b".",
        "pickle-pickle-loads-nested.pkl": A.proto(3)
        + A.call(A.glob("_pickle", "loads"), A.binbytes(shell_system))
        + b".",
        "pickle-nested-bytes-value.pkl": A.proto(4)
        + A.dict_(A.u("config") + A.u("x"), A.u("blob") + A.binbytes(shell_system))
        + b".",
        "pickle-nested-latin1-str.pkl": A.proto(2)
        + A.call(
            A.glob("cPickle", "loads"),
            A.call(A.glob("_codecs", "encode"), A.u(shell_system.decode("latin-1")), A.u("latin1")),
        )
        + b".",
        "pickle-stack-global-binstring.pkl": A.proto(4)
        + A.call(A.binstring("os") + A.short_binstring("system") + b"\x93", A.u(cmd))
        + b".",
        "pickle-stack-global-string.pkl": A.proto(4)
        + A.call(A.s("subprocess") + A.s("getoutput") + b"\x93", A.u(cmd))
        + b".",
        "pickle-stack-global-memo.pkl": A.proto(4)
        + A.u("posix")
        + b"\x94"  # MEMOIZE -> 0
        + A.u("innocent")
        + b"\x94"  # MEMOIZE -> 1
        + b"0"  # POP
        + A.u("system")
        + b"r\x07\x00\x00\x00"  # LONG_BINPUT 7
        + b"0"
        + b"h\x00j\x07\x00\x00\x00\x93"  # BINGET 0, LONG_BINGET 7, STACK_GLOBAL
        + A.tup(A.u(cmd))
        + b"R.",
        "pickle-stack-global-binunicode8.pkl": A.proto(4)
        + A.call(A.u8("os") + A.u8("system") + b"\x93", A.u8(cmd))
        + b".",
        "pickle-dotted-os-path.pkl": A.proto(4)
        + A.call(A.sglob("os.path", "os.system"), A.u(cmd))
        + b".",
        "pickle-dotted-attribute-chain.pkl": A.proto(4)
        + A.call(A.sglob("posixpath", "os.system"), A.u(cmd))
        + b".",
        "pickle-inst.pkl": b"(" + A.s(cmd) + b"ios\nsystem\n.",
        "pickle-obj.pkl": A.proto(1) + b"(" + A.glob("os", "system") + A.s(cmd) + b"o.",
        "pickle-ext-code.pkl": A.proto(2)
        + A.call(A.glob("copyreg", "add_extension"), A.u("posix"), A.u("system"), b"K\xf0")
        + b"0"  # POP the None
        + b"\x82\xf0"  # EXT1 240 -> posix.system
        + A.tup(A.u(cmd))
        + b"R.",
        "pickle-build-setstate.pkl": A.proto(2)
        + A.call(A.glob("collections", "OrderedDict"))
        + b"N}"
        + A.u("__setstate__")
        + A.glob("posix", "system")
        + b"s\x86b"  # BUILD (None, {'__setstate__': posix.system})
        + A.u(cmd)
        + b"b.",  # BUILD again: __setstate__(cmd)
        "pickle-broken-after-payload.pkl": A.proto(2)
        + A.call(A.glob("os", "system"), A.u(cmd))
        + b"\xff\xfe garbage",
        "pickle-second-stream.pkl": pickle.dumps({"weights": [1, 2, 3]}, protocol=4) + shell_system,
        "pickle-legacy-torch-second.pt": _torch_legacy(
            [
                shell_system,
                pickle.dumps({"protocol_version": 1001}, protocol=2),
                pickle.dumps({}, protocol=2),
                pickle.dumps([], protocol=2),
            ]
        ),
        "pickle-joblib-object-array.joblib": _joblib_object_array(shell_system),
        "pickle-npy-object-array.npy": _npy("|O", (1,), shell_system),
        "pickle-proto0-system.bin": _pickle0_system("os", cmd),
        "pickle-proto1-system.txt": A.glob("posix", "system") + b"q\x00(" + A.u(cmd) + b"tq\x01R.",
        "pickle-shutil-copyfile.pkl": A.proto(4)
        + A.call(A.sglob("shutil", "copyfile"), A.u(os.devnull), A.u(marker))
        + b".",
        "pickle-dunder-import.pkl": A.proto(2)
        + A.call(
            A.call(
                A.glob("__builtin__", "getattr"),
                A.call(A.glob("__builtin__", "__import__"), A.u("os")),
                A.u("system"),
            ),
            A.u(cmd),
        )
        + b".",
    }
    return out


def torch_member(data: bytes) -> bytes:
    """The ``data.pkl`` pickle of a zip-format ``torch.save`` file."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        return zf.read(name)


@functools.lru_cache(maxsize=1)
def _benign() -> tuple[tuple[str, bytes], ...]:
    import collections
    import warnings

    import joblib
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    out: dict[str, bytes] = {}

    def save(obj: object, **kwargs: object) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf, **kwargs)  # type: ignore[arg-type]
        return buf.getvalue()

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )
    sd = net.state_dict()
    half = {k: v.half() for k, v in sd.items() if v.is_floating_point()}
    mixed = {
        "bf16": torch.ones(2, dtype=torch.bfloat16),
        "int8": torch.arange(4, dtype=torch.int8),
        "param": torch.nn.Parameter(torch.zeros(3)),
    }
    # Adam's state_dict layout, written out: importing torch.optim pulls in torch._dynamo (~2 s)
    params = list(net.parameters())
    optimizer = {
        "state": {
            i: {
                "step": torch.tensor(3.0),
                "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.zeros_like(p),
            }
            for i, p in enumerate(params)
        },
        "param_groups": [
            {
                "lr": 0.001,
                "betas": (0.9, 0.999),
                "eps": 1e-08,
                "weight_decay": 0,
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "capturable": False,
                "differentiable": False,
                "fused": None,
                "params": list(range(len(params))),
            }
        ],
    }
    out["pickle-benign-torch-state-dict.pt"] = save(sd)
    out["pickle-benign-torch-fp16.pt"] = save(half)
    out["pickle-benign-torch-mixed.pth"] = save(mixed)
    out["pickle-benign-torch-optimizer.pt"] = save(optimizer)
    out["pickle-benign-torch-legacy.pt"] = save(sd, _use_new_zipfile_serialization=False)
    out["pickle-benign-torch-legacy-mixed.pt"] = save(mixed, _use_new_zipfile_serialization=False)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "logreg": LogisticRegression().fit(x, y),
            "tree": DecisionTreeClassifier(max_depth=3).fit(x, y),
            "pipeline": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(
                x, y
            ),
        }
    for name, model in models.items():
        buf = io.BytesIO()
        joblib.dump(model, buf)
        out[f"pickle-benign-joblib-{name}.joblib"] = buf.getvalue()
        buf = io.BytesIO()
        joblib.dump(model, buf, compress=3)
        out[f"pickle-benign-joblib-{name}-z.joblib"] = buf.getvalue()
        out[f"pickle-benign-sklearn-{name}.pkl"] = pickle.dumps(model, protocol=4)

    arrays = {
        "int": np.arange(12).reshape(3, 4),
        "f32": np.ones((2, 2), np.float32),
        "struct": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
    }
    for name, arr in arrays.items():
        out[f"pickle-benign-numpy-{name}.pkl"] = pickle.dumps(arr, protocol=2)
        out[f"pickle-benign-numpy-{name}-p5.pkl"] = pickle.dumps(arr, protocol=5)
        buf = io.BytesIO()
        np.save(buf, arr)
        out[f"pickle-benign-numpy-{name}.npy"] = buf.getvalue()

    data = {
        "dict": {"lr": 0.1, "layers": [64, 32], "name": "mlp", "ok": True, "none": None},
        "ordered": collections.OrderedDict(a=1, b=(2, 3)),
        "sets": [{1, 2}, frozenset({3}), complex(1, 2), b"raw", bytearray(b"ba")],
        "nested": {"k": [[{"deep": (1, 2.5)}]], "big": 2**80, "text": "héllo"},
    }
    for name, obj in data.items():
        for proto in (0, 2, 4, 5):
            out[f"pickle-benign-py-{name}-p{proto}.pkl"] = pickle.dumps(obj, protocol=proto)
    return tuple(out.items())


def benign() -> dict[str, bytes]:
    """Real benign pickles: torch checkpoints, joblib/sklearn models, numpy, Python data."""
    return dict(_benign())
