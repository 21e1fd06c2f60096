"""The pickle policy: allowlist, denylist and call rules; the whole pickle corpus end to end."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from tests.supplychain.corpus import pickles as corpus
from tests.supplychain.corpus.pickles import A

from warden.assess.finding import Severity
from warden.supplychain.pickles.rules import (
    CALLABLES,
    Role,
    evaluate,
    judge_global,
    resolve,
)
from warden.supplychain.pickles.vm import PickleMachine
from warden.supplychain.scanner import scan_bytes


def issues_of(data: bytes) -> list[tuple[str, Severity, str]]:
    trace = PickleMachine(io.BytesIO(data), size=len(data)).run()
    return [(i.rule, i.severity, i.key) for i in evaluate([trace])]


# --- judge_global -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("torch._utils._rebuild_tensor_v2", Role.CALL),
        ("torch._utils._rebuild_parameter", Role.CALL),
        ("torch._tensor._rebuild_from_type_v2", Role.CALL),
        ("collections.OrderedDict", Role.CALL),
        ("numpy.core.multiarray._reconstruct", Role.CALL),
        ("numpy._core.multiarray._reconstruct", Role.CALL),
        ("numpy._core.multiarray.scalar", Role.CALL),
        ("numpy.dtype", Role.CALL),
        ("_codecs.encode", Role.CALL),
        ("copyreg._reconstructor", Role.CALL),
        ("builtins.set", Role.CALL),
        ("joblib.numpy_pickle.NumpyArrayWrapper", Role.NEW),
        ("sklearn.tree._tree.Tree", Role.CALL),
        ("torch.FloatStorage", Role.REF),
        ("torch.bfloat16", Role.REF),
        ("numpy.ndarray", Role.NEW),
        ("sklearn.linear_model._logistic.LogisticRegression", Role.NEW),
        ("sklearn.calibration._SigmoidCalibration", Role.NEW),
        ("scipy.sparse._csr.csr_matrix", Role.NEW),
        ("torch.nn.modules.linear.Linear", Role.NEW),
        ("numpy.random.bit_generator.__pyx_unpickle_SeedSequence", Role.CALL),
    ],
)
def test_allowed(path: str, role: Role) -> None:
    assert judge_global(path, role) is None


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "posix.system",
        "nt.system",
        "os.path.join",
        "_posixsubprocess.fork_exec",
        "subprocess.Popen",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "sys.modules",
        "shutil.rmtree",
        "socket.socket",
        "runpy.run_path",
        "pty.spawn",
        "importlib.import_module",
        "pkgutil.resolve_name",
        "code.InteractiveInterpreter",
        "ctypes.CDLL",
        "pickle.loads",
        "_pickle.loads",
        "marshal.loads",
        "types.FunctionType",
        "functools.partial",
        "operator.attrgetter",
        "_operator.methodcaller",
        "webbrowser.open",
        "http.client.HTTPConnection",
        "urllib.request.urlopen",
        "requests.get",
        "asyncio.subprocess.create_subprocess_shell",
        "multiprocessing.Process",
        "pip.main",
        "pip._internal.cli.main.main",
        "venv.create",
        "pydoc.pipepager",
        "cProfile.run",
        "profile.runctx",
        "pdb.run",
        "bdb.Bdb",
        "timeit.timeit",
        "torch.load",
        "torch.serialization.load",
        "torch.hub.load",
        "torch._C._nn",
        "torch._dynamo.eval_frame",
        "torch._jit_internal.x",
        "torch._utils._import_dotted_name",
        "torch._utils.os.system",
        "numpy.load",
        "numpy.testing.x",
        "numpy.f2py.compile",
        "joblib.load",
        "dill.loads",
        "cloudpickle.loads",
        "tensorflow.io.gfile.GFile",
        "keras.models.load_model",
        "io.open",
        "_io.FileIO",
        "codecs.open",
        "_codecs.decode",
        "collections.os.system",
        "sklearn.utils.__builtins__.eval",
        "mypkg.subprocess.run",
    ],
)
def test_denied_critical(path: str) -> None:
    verdict = judge_global(path, Role.REF)
    assert verdict is not None and verdict.rule == "pickle.dangerous-global"
    assert verdict.severity == Severity.CRITICAL, verdict


@pytest.mark.parametrize(
    ("module", "name", "path"),
    [
        ("__builtin__", "eval", "builtins.eval"),
        ("__builtins__", "exec", "builtins.exec"),
        ("__builtin__", "set", "builtins.set"),
        ("__builtin__", "xrange", "builtins.range"),
        ("__builtin__", "reduce", "functools.reduce"),
        ("copy_reg", "_reconstructor", "copyreg._reconstructor"),
        ("cPickle", "loads", "pickle.loads"),
        ("commands", "getoutput", "subprocess.getoutput"),
        ("urllib2", "urlopen", "urllib.request.urlopen"),
    ],
)
def test_python2_spellings_resolve(module: str, name: str, path: str) -> None:
    assert resolve(module, name) == path


def test_unknown_globals_by_role() -> None:
    ref = judge_global("mypkg.models.Net", Role.REF)
    new = judge_global("mypkg.models.Net", Role.NEW)
    call = judge_global("mypkg.models.build", Role.CALL)
    assert ref is not None and (ref.rule, ref.severity) == (
        "pickle.unknown-global",
        Severity.MEDIUM,
    )
    assert new is not None and new.severity == Severity.HIGH
    assert call is not None and call.severity == Severity.HIGH


def test_namespace_classes_are_not_callable() -> None:
    assert judge_global("sklearn.linear_model.LogisticRegression", Role.NEW) is None
    verdict = judge_global("sklearn.linear_model.LogisticRegression", Role.CALL)
    assert verdict is not None and verdict.severity == Severity.HIGH
    lower = judge_global("sklearn.datasets.fetch_openml", Role.REF)
    assert lower is not None and lower.rule == "pickle.dangerous-global"


def test_high_tier_and_builtins() -> None:
    for path in ("builtins.print", "tempfile.mkstemp", "zipfile.ZipFile", "copyreg.add_extension"):
        verdict = judge_global(path, Role.CALL)
        assert verdict is not None and verdict.severity >= Severity.HIGH, path


def test_allowlist_has_no_denied_entry() -> None:
    # every allowlisted callable is exempt only by exact name; none is a module prefix
    assert all("." in path for path in CALLABLES)
    assert "torch.load" not in CALLABLES and "os.system" not in CALLABLES


# --- call rules ---------------------------------------------------------------------------


def test_reference_versus_call_severity() -> None:
    ref = issues_of(A.proto(4) + A.sglob("mypkg", "thing") + b".")
    call = issues_of(A.proto(4) + A.call(A.sglob("mypkg", "thing")) + b".")
    assert ref == [("pickle.unknown-global", Severity.MEDIUM, "mypkg.thing")]
    assert call == [("pickle.unknown-global", Severity.HIGH, "mypkg.thing")]


def test_indirect_call() -> None:
    data = A.proto(4) + A.call(A.call(A.sglob("collections", "OrderedDict"))) + b"."
    rules = {rule for rule, _, _ in issues_of(data)}
    assert rules == {"pickle.indirect-call"}


def test_helpers_that_call_their_arguments() -> None:
    dd = A.proto(4) + A.call(A.sglob("collections", "defaultdict"), A.sglob("os", "system")) + b"."
    assert ("pickle.dangerous-global", Severity.CRITICAL, "os.system") in issues_of(dd)
    ok = A.call(A.sglob("collections", "defaultdict"), A.sglob("builtins", "list"))
    assert issues_of(A.proto(4) + ok + b".") == []
    rec = A.call(
        A.sglob("copyreg", "_reconstructor"),
        A.sglob("mypkg", "Model"),
        A.sglob("builtins", "object"),
        b"N",
    )
    assert issues_of(A.proto(4) + rec + b".") == [
        ("pickle.unknown-global", Severity.HIGH, "mypkg.Model")
    ]
    rebuild = A.call(
        A.sglob("torch._tensor", "_rebuild_from_type_v2"),
        A.sglob("mypkg", "make"),
        A.sglob("torch", "Tensor"),
        b")",
        b"}",
    )
    assert issues_of(A.proto(4) + rebuild + b".") == [
        ("pickle.unknown-global", Severity.HIGH, "mypkg.make")
    ]


def test_mutating_globals() -> None:
    build = A.proto(4) + A.sglob("collections", "OrderedDict") + b"}" + b"b."
    appends = A.proto(4) + A.sglob("sys", "path") + b"(" + A.u("/tmp/evil") + b"e."
    assert ("pickle.global-mutation", Severity.HIGH, "BUILD collections.OrderedDict") in issues_of(
        build
    )
    rules = {rule for rule, _, _ in issues_of(appends)}
    assert rules == {"pickle.global-mutation", "pickle.dangerous-global"}


def test_dunder_state() -> None:
    data = (
        A.proto(2)
        + A.call(A.glob("collections", "OrderedDict"))
        + b"N}"
        + A.u("__reduce__")
        + b"Ns\x86b."
    )
    assert issues_of(data) == [("pickle.dunder-state", Severity.HIGH, "dunder-state __reduce__")]


def test_extension_codes_and_persistent_ids() -> None:
    assert issues_of(b"\x82\x07.") == [("pickle.extension-code", Severity.HIGH, "extension 7")]
    assert issues_of(b"Pabc\n.") == [("pickle.persistent-id", Severity.LOW, "persistent-id")]
    torch_pid = A.tup(
        A.u("storage"), A.sglob("torch", "FloatStorage"), A.u("0"), A.u("cpu"), b"K\x06"
    )
    assert issues_of(A.proto(2) + torch_pid + b"Q.") == []


# --- the corpus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "PWNED"


def test_corpus_has_enough_malicious_samples(marker: Path) -> None:
    samples = corpus.malicious(str(marker))
    assert len(samples) >= 30
    assert all(key.startswith("pickle-") for key in samples)
    assert len(set(samples.values())) == len(samples)


def test_every_malicious_sample_is_high_or_worse(marker: Path) -> None:
    missed = {}
    for key, data in corpus.malicious(str(marker)).items():
        scan = scan_bytes(data, key)
        if scan.worst is None or scan.worst < Severity.HIGH:
            missed[key] = [(f.id, str(f.severity)) for f in scan.findings]
    assert missed == {}
    assert not marker.exists()


def test_every_benign_sample_is_clean() -> None:
    noisy = {}
    for key, data in corpus.benign().items():
        if data.startswith(b"PK"):  # zip checkpoints: the archive scanner's job; scan data.pkl
            data = corpus.torch_member(data)
        scan = scan_bytes(data, key)
        if scan.findings:
            noisy[key] = [(f.id, f.title) for f in scan.findings]
    assert noisy == {}


def test_benign_corpus_covers_the_libraries() -> None:
    keys = set(corpus.benign())
    for part in ("torch-state-dict", "torch-legacy", "torch-optimizer", "joblib-", "-z.joblib"):
        assert any(part in k for k in keys), part
    assert any(k.endswith(".npy") for k in keys)


def test_importing_the_scanner_stays_light() -> None:
    code = (
        "import sys\n"
        "import warden.supplychain.formats.pickle, warden.supplychain.formats.numpy\n"
        "import warden.supplychain.pickles.vm, warden.supplychain.pickles.rules\n"
        "heavy = [m for m in ('torch', 'sklearn', 'joblib', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
