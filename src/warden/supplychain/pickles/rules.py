"""Pickle policy: which globals and calls a model checkpoint may contain (fail closed).

A global is judged by how the pickle uses it (:class:`Role`):

- ``CALL``: called with arguments (``REDUCE``, ``INST``, ``OBJ``, or handed to an allowlisted
  helper that calls it, such as ``collections.defaultdict``'s factory). It must be on the
  callable allowlist (:data:`CALLABLES`), which was derived from real benign checkpoints:
  ``torch.save`` of state dicts and optimizers, ``joblib.dump``/``pickle.dumps`` of fitted
  scikit-learn models, numpy arrays and scalars, plain Python containers.
- ``NEW``: instantiated without ``__init__`` (``NEWOBJ``, ``copyreg._reconstructor``,
  ``copyreg.__newobj__``), then usually ``BUILD``-ed. Besides the allowlist, classes (CapWords
  names) in an allowlisted class namespace (:data:`CLASS_NAMESPACES`: ``sklearn``, ``numpy``,
  ``scipy.sparse``, ``torch.nn``, ``collections``) pass.
- ``REF``: only referenced (an argument, a dict value). Importing a module can itself run
  code, so an unknown reference is still a finding, one grade lower.

The denylist (:func:`judge_global`) grades known-dangerous globals CRITICAL (code execution,
shell, imports, file writes, network, nested unpickling) or HIGH (other side effects), by module
prefix and by attribute name anywhere in a dotted path (``torch._utils.os.system`` is as bad as
``os.system``). Everything neither allowed nor denied is ``pickle.unknown-global``: HIGH when
called or instantiated, MEDIUM when only referenced.

Calls are judged too: calling something that is not a global (``pickle.indirect-call``),
mutating a global or persistent object (``pickle.global-mutation``), a ``BUILD`` state that
sets dunder attributes (``pickle.dunder-state``), extension-registry codes
(``pickle.extension-code``), unusual persistent ids (``pickle.persistent-id``).
"""

from __future__ import annotations

import enum
import functools
import re
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from warden.assess.finding import Severity
from warden.supplychain.pickles.vm import (
    Anomaly,
    Call,
    Global,
    PersistentRef,
    PickleTrace,
    describe,
)

__all__ = [
    "CALLABLES",
    "CLASS_NAMESPACES",
    "REFERENCES",
    "Issue",
    "Role",
    "Verdict",
    "anomaly_issues",
    "evaluate",
    "judge_global",
    "resolve",
]


class Role(enum.IntEnum):
    """How a pickle uses a global; ordered by how much of it runs."""

    REF = 0
    """Imported and referenced only."""
    NEW = 1
    """Instantiated with ``cls.__new__`` (no ``__init__``), then usually ``BUILD``-ed."""
    CALL = 2
    """Called with arguments."""


@dataclass(frozen=True)
class Verdict:
    """Why a global is not allowed."""

    rule: str
    """Finding rule id (``pickle.dangerous-global`` or ``pickle.unknown-global``)."""
    severity: Severity
    """How bad."""
    reason: str
    """One short sentence for the report."""


@dataclass(frozen=True)
class Issue:
    """One policy violation found in a pickle (aggregated into findings by the caller)."""

    rule: str
    """Finding rule id suffix (``pickle.dangerous-global`` …)."""
    severity: Severity
    """How bad."""
    title: str
    """Headline."""
    reason: str
    """Why it matters."""
    key: str
    """What it is about (a global's dotted path, or a short label); aggregation key."""
    opcode: str
    """The opcode that did it."""
    offset: int
    """Byte offset of that opcode in the stream."""
    pickle_index: int
    """Which pickle of the stream."""
    detail: str = ""
    """A short rendering of the arguments or state involved."""


# --- allowlists ---------------------------------------------------------------------------

_TORCH_REBUILD = (
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_nested_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_wrapper_subclass",
    "_rebuild_xla_tensor",
)

_SAFE_BUILTINS = (
    "set",
    "frozenset",
    "complex",
    "slice",
    "bytearray",
    "bytes",
    "range",
    "int",
    "float",
    "str",
    "list",
    "tuple",
    "dict",
    "bool",
    "object",
)

_SKLEARN_CY_LOSSES = (
    "AbsoluteError",
    "ExponentialLoss",
    "HalfBinomialLoss",
    "HalfGammaLoss",
    "HalfMultinomialLoss",
    "HalfPoissonLoss",
    "HalfSquaredError",
    "HalfTweedieLoss",
    "HalfTweedieLossIdentity",
    "HuberLoss",
    "PinballLoss",
)
_SKLEARN_SGD_LOSSES = (
    "Hinge",
    "SquaredHinge",
    "ModifiedHuber",
    "EpsilonInsensitive",
    "SquaredEpsilonInsensitive",
    "Log",
    "SquaredLoss",
    "Huber",
)

CALLABLES: Final[frozenset[str]] = frozenset(
    {
        *(f"torch._utils.{n}" for n in _TORCH_REBUILD),
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.storage._load_from_bytes",
        "torch.serialization._get_layout",
        "torch.Size",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        *(f"builtins.{n}" for n in _SAFE_BUILTINS),
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
        "joblib.numpy_pickle_compat.ZNDArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle_compat.NDArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle_compat.ZNDArrayWrapper",
        # scikit-learn Cython classes that pickle as cls(*args) + BUILD
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn._loss.link.Interval",
        *(f"sklearn._loss._loss.Cy{n}" for n in _SKLEARN_CY_LOSSES),
        *(f"sklearn.linear_model._sgd_fast.{n}" for n in _SKLEARN_SGD_LOSSES),
        # Cython ``newObj(cls)`` helpers: ``cls.__new__(cls)``, state set by BUILD
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.neighbors._binary_tree.newObj",
        "sklearn.metrics._dist_metrics.newObj",
    }
)
"""Globals a checkpoint may call (and so also instantiate or reference), as ``module.name``."""

_TORCH_DTYPES = (
    "float",
    "double",
    "half",
    "bfloat16",
    "float16",
    "float32",
    "float64",
    "complex32",
    "complex64",
    "complex128",
    "cfloat",
    "cdouble",
    "chalf",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "short",
    "int",
    "long",
    "bool",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "strided",
    "sparse_coo",
    "sparse_csr",
    "sparse_csc",
    "sparse_bsr",
    "sparse_bsc",
    "_mkldnn",
    "contiguous_format",
    "channels_last",
    "channels_last_3d",
    "preserve_format",
    "per_tensor_affine",
    "per_channel_affine",
    "per_tensor_symmetric",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
    "Tensor",
)
_STORAGES = (
    "Double",
    "Float",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
    "ComplexDouble",
    "ComplexFloat",
    "QUInt8",
    "QInt8",
    "QInt32",
    "QUInt4x2",
    "QUInt2x4",
    "Untyped",
)
_NUMPY_TYPES = (
    "ndarray",
    "matrix",
    "recarray",
    "record",
    "dtype",
    "generic",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "longdouble",
    "complex64",
    "complex128",
    "clongdouble",
    "str_",
    "bytes_",
    "void",
    "object_",
    "datetime64",
    "timedelta64",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "longlong",
    "ulonglong",
    "half",
    "single",
    "double",
)

REFERENCES: Final[frozenset[str]] = frozenset(
    {
        *(f"torch.{n}" for n in _TORCH_DTYPES),
        *(f"torch.{s}Storage" for s in _STORAGES),
        *(f"torch.cuda.{s}Storage" for s in _STORAGES),
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        *(f"numpy.{n}" for n in _NUMPY_TYPES),
        *(f"numpy.core.multiarray.{n}" for n in ("ndarray", "dtype")),
        "builtins.Ellipsis",
        "builtins.NotImplemented",
        *(
            f"scipy.sparse.{m}{fmt}.{fmt}_{kind}"
            for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")
            for m in ("_", "")
            for kind in ("matrix", "array")
        ),
    }
)
"""Globals a checkpoint may reference or instantiate without ``__init__`` (types, dtypes)."""

CLASS_NAMESPACES: Final[tuple[str, ...]] = (
    "sklearn",
    "numpy",
    "scipy.sparse",
    "torch.nn",
    "collections",
)
"""Modules whose classes (CapWords names) may be instantiated without ``__init__``."""

# Positions of the arguments an allowlisted callable calls (CALL) or instantiates (NEW).
_ARG_ROLES: Final[dict[str, tuple[Role | None, ...]]] = {
    "copyreg._reconstructor": (Role.NEW, Role.NEW),
    "copyreg.__newobj__": (Role.NEW,),
    "copyreg.__newobj_ex__": (Role.NEW,),
    "torch._tensor._rebuild_from_type": (Role.CALL, Role.NEW),
    "torch._tensor._rebuild_from_type_v2": (Role.CALL, Role.NEW),
    "torch._utils._rebuild_wrapper_subclass": (Role.NEW,),
    "numpy.core.multiarray._reconstruct": (Role.NEW,),
    "numpy._core.multiarray._reconstruct": (Role.NEW,),
    "numpy.ma.core._mareconstruct": (Role.NEW, Role.NEW),
    "numpy.random._pickle.__randomstate_ctor": (Role.CALL, Role.CALL),
    "numpy.random._pickle.__bit_generator_ctor": (Role.CALL,),
    "numpy.random._pickle.__generator_ctor": (Role.CALL, Role.CALL),
    "collections.defaultdict": (Role.CALL,),
    "sklearn.neighbors._kd_tree.newObj": (Role.NEW,),
    "sklearn.neighbors._ball_tree.newObj": (Role.NEW,),
    "sklearn.neighbors._binary_tree.newObj": (Role.NEW,),
    "sklearn.metrics._dist_metrics.newObj": (Role.NEW,),
}

# Positions of the arguments an allowlisted callable applies as object state (setattr).
_STATE_ARGS: Final[dict[str, int]] = {
    "torch._utils._rebuild_parameter_with_state": 3,
    "torch._tensor._rebuild_from_type_v2": 3,
}

# --- denylist -----------------------------------------------------------------------------

_EXEC = "runs shell commands or arbitrary code"
_IMPORT = "imports or resolves arbitrary modules"
_LOAD = "unpickles or loads nested, unchecked data"
_NET = "opens network connections"
_FILES = "reads, writes or deletes files"
_ATTR = "reaches arbitrary attributes"

_CRITICAL_PREFIXES: Final[dict[str, str]] = {
    "os": _EXEC,
    "posix": _EXEC,
    "nt": _EXEC,
    "_posixsubprocess": _EXEC,
    "subprocess": _EXEC,
    "pty": _EXEC,
    "sys": "controls the interpreter (modules, paths, hooks)",
    "shutil": _FILES,
    "socket": _NET,
    "_socket": _NET,
    "ssl": _NET,
    "runpy": _EXEC,
    "importlib": _IMPORT,
    "pkgutil": _IMPORT,
    "imp": _IMPORT,
    "zipimport": _IMPORT,
    "code": _EXEC,
    "codeop": _EXEC,
    "ctypes": "calls native code",
    "_ctypes": "calls native code",
    "cffi": "calls native code",
    "pickle": _LOAD,
    "_pickle": _LOAD,
    "pickletools": _LOAD,
    "shelve": _LOAD,
    "marshal": _LOAD,
    "types": "builds functions and code objects",
    "functools": "composes calls (partial, reduce)",
    "_functools": "composes calls (partial, reduce)",
    "operator": _ATTR,
    "_operator": _ATTR,
    "webbrowser": _EXEC,
    "http": _NET,
    "urllib": _NET,
    "urllib2": _NET,
    "urllib3": _NET,
    "requests": _NET,
    "httpx": _NET,
    "aiohttp": _NET,
    "ftplib": _NET,
    "smtplib": _NET,
    "telnetlib": _NET,
    "poplib": _NET,
    "imaplib": _NET,
    "nntplib": _NET,
    "xmlrpc": _NET,
    "socketserver": _NET,
    "asyncio": _EXEC,
    "multiprocessing": _EXEC,
    "_multiprocessing": _EXEC,
    "concurrent": _EXEC,
    "threading": _EXEC,
    "_thread": _EXEC,
    "signal": _EXEC,
    "pip": "installs packages",
    "_pip": "installs packages",
    "venv": "creates environments and files",
    "ensurepip": "installs packages",
    "setuptools": _EXEC,
    "distutils": _EXEC,
    "pkg_resources": _IMPORT,
    "pydoc": _EXEC,
    "cProfile": _EXEC,
    "profile": _EXEC,
    "_lsprof": _EXEC,
    "pdb": _EXEC,
    "bdb": _EXEC,
    "trace": _EXEC,
    "timeit": _EXEC,
    "doctest": _EXEC,
    "unittest": _EXEC,
    "idlelib": _EXEC,
    "tkinter": _EXEC,
    "turtle": _EXEC,
    "gc": "reaches every live object",
    "inspect": _ATTR,
    "builtins.eval": _EXEC,
    "builtins.exec": _EXEC,
    "builtins.execfile": _EXEC,
    "builtins.compile": _EXEC,
    "builtins.open": _FILES,
    "builtins.__import__": _IMPORT,
    "builtins.getattr": _ATTR,
    "builtins.setattr": _ATTR,
    "builtins.delattr": _ATTR,
    "builtins.globals": _ATTR,
    "builtins.locals": _ATTR,
    "builtins.vars": _ATTR,
    "builtins.breakpoint": _EXEC,
    "builtins.input": _EXEC,
    "builtins.help": _EXEC,
    "builtins.exit": _EXEC,
    "builtins.quit": _EXEC,
    "builtins.type": "builds classes",
    "builtins.super": _ATTR,
    "builtins.memoryview": _ATTR,
    "io": _FILES,
    "_io": _FILES,
    "codecs": _FILES,
    "_codecs": _FILES,
    "tempfile": _FILES,
    "pathlib": _FILES,
    "fileinput": _FILES,
    "dill": _LOAD,
    "cloudpickle": _LOAD,
    "joblib": _LOAD,
    "sklearn.externals.joblib": _LOAD,
    "tensorflow": _LOAD,
    "keras": _LOAD,
    "tf_keras": _LOAD,
    "yaml": _LOAD,
    "jinja2": _EXEC,
    "numexpr": _EXEC,
    "sympy": _EXEC,
    "IPython": _EXEC,
    "torch.load": _LOAD,
    "torch.save": _FILES,
    "torch.hub": _LOAD,
    "torch.serialization": _LOAD,
    "torch.jit": _LOAD,
    "torch.package": _LOAD,
    "torch.utils.cpp_extension": _EXEC,
    "torch.compile": _EXEC,
    "torch.ops": "calls native operators",
    "torch.library": "registers native operators",
    "torch.classes": "calls native classes",
    "torch.distributed": _NET,
    "torch.fx": _EXEC,
    "torch.utils.data": _FILES,
    "numpy.load": _LOAD,
    "numpy.loads": _LOAD,
    "numpy.save": _FILES,
    "numpy.savez": _FILES,
    "numpy.savez_compressed": _FILES,
    "numpy.savetxt": _FILES,
    "numpy.loadtxt": _FILES,
    "numpy.genfromtxt": _FILES,
    "numpy.fromfile": _FILES,
    "numpy.memmap": _FILES,
    "numpy.testing": _EXEC,
    "numpy.f2py": _EXEC,
    "numpy.distutils": _EXEC,
    "numpy.ctypeslib": "calls native code",
    "numpy.lib.npyio": _LOAD,
    "numpy.lib._npyio_impl": _LOAD,
    "numpy.lib.format": _LOAD,
    "numpy.lib._datasource": _NET,
    "numpy.DataSource": _NET,
    "pandas.read_pickle": _LOAD,
    "pandas.io": _LOAD,
    "pandas.eval": _EXEC,
    "scipy.io": _FILES,
}
"""Module or attribute prefixes graded CRITICAL, with the reason."""

_HIGH_PREFIXES: Final[dict[str, str]] = {
    "builtins": "a builtin outside the small safe set",
    "copyreg": "changes how objects are rebuilt",
    "glob": _FILES,
    "dbm": _FILES,
    "sqlite3": _FILES,
    "zipfile": _FILES,
    "tarfile": _FILES,
    "gzip": _FILES,
    "bz2": _FILES,
    "lzma": _FILES,
    "logging": _FILES,
    "mmap": _FILES,
    "select": _NET,
    "selectors": _NET,
    "fcntl": _FILES,
    "resource": "changes process limits",
    "platform": _EXEC,
    "sysconfig": _IMPORT,
    "site": _IMPORT,
    "atexit": _EXEC,
    "weakref": _ATTR,
    "ast": _EXEC,
    "sklearn.datasets": _NET,
}
"""Module or attribute prefixes graded HIGH, with the reason."""

_DANGEROUS_NAMES: Final = frozenset(
    {
        "system",
        "popen",
        "popen2",
        "popen3",
        "popen4",
        "spawn",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "execl",
        "execle",
        "execlp",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "fork",
        "forkpty",
        "startfile",
        "kill",
        "killpg",
        "eval",
        "exec",
        "execfile",
        "compile",
        "import_module",
        "reload",
        "getattr",
        "setattr",
        "delattr",
        "load",
        "loads",
        "load_module",
        "unsafe_load",
        "full_load",
        "read_pickle",
        "save",
        "dump",
        "open",
        "urlopen",
        "urlretrieve",
        "Popen",
        "call",
        "check_call",
        "check_output",
        "getoutput",
        "getstatusoutput",
        "run",
        "run_path",
        "run_module",
        "runcode",
        "runsource",
        "runctx",
        "interact",
        "remove",
        "unlink",
        "rmtree",
        "rmdir",
        "rename",
        "chmod",
        "chown",
        "symlink",
        "makedirs",
        "write_text",
        "write_bytes",
        "breakpoint",
        "set_trace",
        "pipepager",
        "tempfilepager",
        "pager",
        "os",
        "sys",
        "subprocess",
        "builtins",
        "posix",
        "nt",
    }
)
"""Attribute names that make any dotted path CRITICAL (``torch._utils.os.system``)."""

_CLASS_NAME = re.compile(r"_?[A-Z][A-Za-z0-9_]*")
_PYX_UNPICKLE = re.compile(r"__pyx_unpickle_[A-Za-z0-9_]+")
_ALIASES: Final = {"__builtin__": "builtins", "__builtins__": "builtins", "copy_reg": "copyreg"}


def resolve(module: str, name: str) -> str:
    """The dotted path a global means, Python 2 names mapped as ``fix_imports`` does."""
    mapped = NAME_MAPPING.get((module, name))
    if mapped is not None:
        module, name = mapped
    else:
        module = IMPORT_MAPPING.get(module, module)
    module = _ALIASES.get(module, module)
    return f"{module}.{name}"


def _prefix_match(path: str, table: dict[str, str]) -> str | None:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        reason = table.get(".".join(parts[:i]))
        if reason is not None:
            return reason
    return None


def _in_namespace(path: str) -> bool:
    module, _, name = path.rpartition(".")
    if not _CLASS_NAME.fullmatch(name):
        return False
    return any(module == ns or module.startswith(ns + ".") for ns in CLASS_NAMESPACES)


def judge_global(path: str, role: Role) -> Verdict | None:
    """``None`` when the global at ``path`` may be used in ``role``; else why not."""
    if path in CALLABLES or (role < Role.CALL and path in REFERENCES):
        return None
    reason = _prefix_match(path, _CRITICAL_PREFIXES)
    if reason is not None:
        return Verdict("pickle.dangerous-global", Severity.CRITICAL, reason)
    parts = path.split(".")
    for part in parts[1:]:
        if part in _DANGEROUS_NAMES:
            return Verdict("pickle.dangerous-global", Severity.CRITICAL, f"reaches {part!r}")
        if len(part) > 4 and part.startswith("__") and part.endswith("__"):
            return Verdict(
                "pickle.dangerous-global", Severity.CRITICAL, f"walks the dunder {part!r}"
            )
    if parts[0] == "torch" and any(p.startswith("_") for p in parts[1:]):
        return Verdict(
            "pickle.dangerous-global",
            Severity.CRITICAL,
            "a private torch helper outside the tensor-rebuild allowlist",
        )
    reason = _prefix_match(path, _HIGH_PREFIXES)
    if reason is not None:
        return Verdict("pickle.dangerous-global", Severity.HIGH, reason)
    if role < Role.CALL and _in_namespace(path):
        return None
    module = path.rpartition(".")[0]
    if _PYX_UNPICKLE.fullmatch(parts[-1]) and any(
        module == ns or module.startswith(ns + ".") for ns in CLASS_NAMESPACES
    ):
        return None  # Cython's generated unpickle helper: checksum, cls.__new__, setstate
    if role == Role.REF:
        return Verdict(
            "pickle.unknown-global",
            Severity.MEDIUM,
            "not on the allowlist; importing it can run module code",
        )
    return Verdict(
        "pickle.unknown-global",
        Severity.HIGH,
        "not on the allowlist; loading the pickle runs it",
    )


_judge = functools.lru_cache(maxsize=4096)(judge_global)
""":func:`judge_global`, memoised: it depends only on its arguments and constant tables, and
the same few hundred globals make up nearly every real pickle."""


# --- evaluation ---------------------------------------------------------------------------

_VERBS: Final = {Role.REF: "imports", Role.NEW: "instantiates", Role.CALL: "calls"}
_CALL_OPS: Final = frozenset({"REDUCE", "INST", "OBJ"})
_NEW_OPS: Final = frozenset({"NEWOBJ", "NEWOBJ_EX"})
_METHOD_OPS: Final = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"})
_PID_OPS: Final = frozenset({"PERSID", "BINPERSID"})


_PATHS: dict[tuple[str, str], str] = {}


def _path(g: Global) -> str:
    key = (g.module, g.name)
    path = _PATHS.get(key)
    if path is None:
        path = resolve(g.module, g.name)
        if len(_PATHS) < 4096:
            _PATHS[key] = path
    return path


def _dunder_keys(state: Any) -> list[str]:
    if type(state) is tuple:
        if len(state) != 2:
            return []
        parts: tuple[Any, ...] = state
    else:
        parts = (state,)
    keys: list[str] = []
    for part in parts:
        if type(part) is dict:
            keys.extend(
                k for k in part if type(k) is str and k.startswith("__") and k.endswith("__")
            )
    return keys


def _unwrap(func: Any) -> Any:
    """What a callable stands for: legacy torch's ``('module', cls, …)`` pid loads ``cls``."""
    if isinstance(func, PersistentRef):
        pid = func.pid
        if type(pid) is tuple and len(pid) >= 2 and pid[0] == "module":
            return pid[1]
    return func


def _is_torch_pid(pid: Any) -> bool:
    if type(pid) is not tuple or not pid:
        return False
    if pid[0] == "storage":
        return len(pid) >= 5 and isinstance(pid[1], Global) and type(pid[2]) is str
    return pid[0] == "module" and len(pid) >= 2


class _Uses:
    """The strongest role each global node is put to, and the call that did it."""

    def __init__(self) -> None:
        self.role: dict[int, Role] = {}
        self.via: dict[int, Call] = {}

    def mark(self, value: Any, role: Role, call: Call) -> None:
        if isinstance(value, Global) and role > self.role.get(id(value), Role.REF):
            self.role[id(value)] = role
            self.via[id(value)] = call


def evaluate(traces: Iterable[PickleTrace]) -> list[Issue]:
    """Every policy violation in the given pickles (one Issue per occurrence)."""
    issues: list[Issue] = []
    for trace in traces:
        issues.extend(_evaluate(trace))
    return issues


def _evaluate(trace: PickleTrace) -> list[Issue]:
    issues: list[Issue] = []
    uses = _Uses()
    for call in trace.calls:
        op = call.opcode
        func = _unwrap(call.func)
        if op in _CALL_OPS or op in _NEW_OPS:
            role = Role.CALL if op in _CALL_OPS else Role.NEW
            if isinstance(func, Global):
                uses.mark(func, role, call)
                issues.extend(_mark_args(uses, func, call))
            else:
                issues.append(
                    Issue(
                        "pickle.indirect-call",
                        Severity.HIGH,
                        f"pickle {'calls' if role == Role.CALL else 'instantiates'} a computed "
                        f"object ({describe(func)})",
                        "the callable is not a plain global, so no allowlist can vouch for it",
                        f"{op} {describe(func)}"[:120],
                        op,
                        call.offset,
                        call.pickle_index,
                        describe(call.args),
                    )
                )
        elif op == "BUILD" or op in _METHOD_OPS:
            if type(func) is Call and (op != "BUILD" or type(call.args[0]) not in (dict, tuple)):
                continue  # an object built by a call this loop judges: nothing more to check
            issues.extend(_judge_mutation(call))
        elif op in _PID_OPS:
            pid = call.args[0]
            if not _is_torch_pid(pid):
                issues.append(
                    Issue(
                        "pickle.persistent-id",
                        Severity.LOW,
                        "pickle hands a persistent id to its loader's persistent_load",
                        "what it returns depends on the loading code, not on this file",
                        "persistent-id",
                        op,
                        call.offset,
                        call.pickle_index,
                        describe(pid),
                    )
                )
    for g in trace.globals:
        if g.opcode.startswith("EXT"):
            issues.append(
                Issue(
                    "pickle.extension-code",
                    Severity.HIGH,
                    f"pickle loads global number {g.name} from the copyreg extension registry",
                    "the global it stands for depends on the loading process and cannot be checked",
                    f"extension {g.name}",
                    g.opcode,
                    g.offset,
                    g.pickle_index,
                )
            )
            continue
        role = uses.role.get(id(g), Role.REF)
        path = _path(g)
        verdict = _judge(path, role)
        raw = f"{g.module}.{g.name}"
        if raw != path:  # the spelling as written is judged too; the worse verdict wins
            other = _judge(raw, role) if _prefix_match(raw, _CRITICAL_PREFIXES) else None
            if other is not None and (verdict is None or other.severity > verdict.severity):
                verdict = other
        if verdict is None:
            continue
        via = uses.via.get(id(g))
        opcode = via.opcode if via is not None else g.opcode
        issues.append(
            Issue(
                verdict.rule,
                verdict.severity,
                f"pickle {_VERBS[role]} {path}"
                + ("" if verdict.rule == "pickle.unknown-global" else f": {verdict.reason}"),
                verdict.reason,
                path,
                opcode,
                via.offset if via is not None else g.offset,
                g.pickle_index,
                describe(via.args) if via is not None else "",
            )
        )
    issues.extend(anomaly_issues(trace.anomalies, trace.index))
    return issues


def _mark_args(uses: _Uses, func: Global, call: Call) -> list[Issue]:
    """Mark the arguments an allowlisted helper calls or instantiates; check state args."""
    path = _path(func)
    args = call.args if type(call.args) is tuple else ()
    roles = _ARG_ROLES.get(path)
    if roles is None and func.name.startswith("__pyx") and _PYX_UNPICKLE.fullmatch(func.name):
        roles = (Role.NEW,)
    if roles is not None:
        for value, role in zip(args, roles, strict=False):
            if role is not None:
                uses.mark(value, role, call)
    index = _STATE_ARGS.get(path)
    if index is not None and len(args) > index:
        return _dunder_issues(call, args[index])
    return []


def _dunder_issues(call: Call, state: Any) -> list[Issue]:
    keys = sorted(_dunder_keys(state))
    if not keys:
        return []
    return [
        Issue(
            "pickle.dunder-state",
            Severity.HIGH,
            f"pickle sets dunder attribute(s) {', '.join(keys[:5])} on an object",
            "setting __reduce__/__setstate__/__class__-like attributes redirects later calls",
            "dunder-state " + ",".join(keys[:5]),
            call.opcode,
            call.offset,
            call.pickle_index,
            describe(state),
        )
    ]


def _judge_mutation(call: Call) -> list[Issue]:
    target = call.func
    op = call.opcode
    issues: list[Issue] = []
    if isinstance(target, Global | PersistentRef):
        what = _path(target) if isinstance(target, Global) else "a persistent object"
        issues.append(
            Issue(
                "pickle.global-mutation",
                Severity.HIGH,
                f"pickle applies {op} to {what}",
                "it changes an object that outlives the load (a class, function, module "
                "attribute or loader-provided object)",
                f"{op} {what}",
                op,
                call.offset,
                call.pickle_index,
                describe(call.args),
            )
        )
    if op == "BUILD":
        issues.extend(_dunder_issues(call, call.args[0]))
    return issues


def anomaly_issues(anomalies: Iterable[Anomaly], pickle_index: int) -> list[Issue]:
    """Issues for the non-fatal anomalies of one pickle (frames, out-of-band buffers)."""
    out: list[Issue] = []
    for a in anomalies:
        if a.kind == "frame":
            out.append(
                Issue(
                    "pickle.frame-anomaly",
                    Severity.LOW,
                    "pickle framing is inconsistent",
                    a.message,
                    "frame",
                    "FRAME",
                    a.offset,
                    pickle_index,
                )
            )
        elif a.kind == "buffer":
            out.append(
                Issue(
                    "pickle.out-of-band-buffer",
                    Severity.LOW,
                    "pickle expects out-of-band buffers from its loader",
                    a.message,
                    "buffer",
                    "NEXT_BUFFER",
                    a.offset,
                    pickle_index,
                )
            )
    return out
