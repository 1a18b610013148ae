"""Escape attempts from an untrusted ``.gt`` file: each is refused statically, with a code and
a location, before anything runs, and none of them has any effect (the marker file that each
would create, or the command each would run, never happens), whether the file is checked, loaded
or its function called."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.ops.pyallow import NAMESPACES, PYTHON_NAMES, DEFAULT
from gtdsl.cli import main

# (name, imports, body using MARK, the path the attempt would create, expected code)
ATTEMPTS = [
    ("cond_system", "import torch", "s = torch.os.system\n    torch.cond(True, s, s, "
     "(\"touch MARK\",))", "GT1012"),
    ("os_system_attr", "import torch", "torch.os.system(\"touch MARK\")", "GT1012"),
    ("os_environ", "import torch", "e = torch.os.environ", "GT1012"),
    ("torch_save_call", "import torch", "torch.save(x, \"MARK\")", "GT1012"),
    ("torch_save_import", "from torch import save", "save(x, \"MARK\")", "GT1004"),
    ("torch_save_as", "from torch import save as keep", "keep(x, \"MARK\")", "GT1004"),
    ("torch_load_pickle", "import torch", "torch.load(\"MARK\", weights_only=False)",
     "GT1012"),
    ("serialization_load", "import torch", "torch.serialization.load(\"MARK\")", "GT1012"),
    ("from_torch_os", "from torch import os", "os.system(\"touch MARK\")", "GT1004"),
    ("import_os", "import os", "os.system(\"touch MARK\")", "GT1004"),
    ("import_subprocess", "import subprocess", "subprocess.run([\"touch\", \"MARK\"])",
     "GT1004"),
    ("from_os_system", "from os import system", "system(\"touch MARK\")", "GT1004"),
    ("import_torch_os_as", "import torch.os as o", "o.system(\"touch MARK\")", "GT1004"),
    ("import_builtins", "import builtins", "builtins.open(\"MARK\", \"w\")", "GT1004"),
    ("import_pathlib", "import pathlib", "pathlib.Path(\"MARK\").touch()", "GT1004"),
    ("from_torch_cond", "from torch import cond", "cond(True, x, x, ())", "GT1004"),
    ("while_loop", "import torch", "torch.while_loop(x, x, (x,))", "GT1012"),
    ("vmap", "import torch", "y = torch.vmap(x)", "GT1012"),
    ("func_call", "import torch", "torch.func.functional_call(x, x, (x,))", "GT1012"),
    ("autograd_grad", "import torch", "torch.autograd.grad(x, x)", "GT1012"),
    ("hub_load", "import torch", "torch.hub.load(\"MARK\", \"m\")", "GT1012"),
    ("cpp_extension", "import torch",
     "torch.utils.cpp_extension.load_inline(\"MARK\", \"\")", "GT1012"),
    ("jit_load", "import torch", "torch.jit.load(\"MARK\")", "GT1012"),
    ("compile", "import torch", "y = torch.compile(x)", "GT1012"),
    ("ops_namespace", "import torch", "y = torch.ops.aten.add(x, x)", "GT1012"),
    ("library", "import torch", "torch.library.define(\"MARK\", \"\")", "GT1012"),
    ("private_C", "import torch", "torch._C._set_grad_enabled(False)", "GT1012"),
    ("manual_seed", "import torch", "torch.manual_seed(0)", "GT1012"),
    ("set_default_dtype", "import torch", "torch.set_default_dtype(x)", "GT1012"),
    ("multiprocessing", "import torch", "torch.multiprocessing.spawn(x)", "GT1012"),
    ("distributed", "import torch", "torch.distributed.init_process_group(\"MARK\")",
     "GT1012"),
    ("functional_callable", "import torch.nn.functional as F",
     "F.triplet_margin_with_distance_loss(x, x, x, distance_function=x)", "GT1012"),
    ("functional_torch", "import torch.nn.functional as F",
     "F.torch.os.system(\"touch MARK\")", "GT1012"),
    ("nn_module", "import torch", "m = torch.nn.Module()", "GT1012"),
    ("tensor_class_method", "import torch", "h = torch.Tensor.register_hook", "GT1012"),
    ("math_loader", "import math", "l = math.__loader__", "GT1012"),
    ("math_factorial_dos", "from math import factorial", "n = factorial(10 ** 9)", "GT1004"),
    ("dunder_class", "", "g = u.__class__.__init__.__globals__", "GT1012"),
    ("dunder_self", "", "s = u.tolist.__self__", "GT1012"),
    ("register_hook", "", "x.register_hook(x)", "GT1011"),
    ("eval", "", "eval(\"__import__('os').system('touch MARK')\")", "GT1001"),
    ("exec", "", "exec(\"open('MARK', 'w')\")", "GT1001"),
    ("open", "", "open(\"MARK\", \"w\")", "GT1001"),
    ("dunder_import", "", "__import__(\"os\").system(\"touch MARK\")", "GT1001"),
    ("getattr_builtin", "import torch", "getattr(torch, \"save\")(x, \"MARK\")", "GT2025"),
    ("module_as_value", "import torch", "t = torch\n    t.save(x, \"MARK\")", "GT2024"),
]


def _source(imports: str, body: str, mark: Path) -> str:
    body = body.replace("MARK", str(mark))
    return f"{imports}\n\n\ndef f(x: f32[n], u) -> f32[n]:\n    {body}\n    return x\n"


def _check(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["check", str(path)])
    return code, out.getvalue()


def test_the_table_is_big_enough() -> None:
    assert len(ATTEMPTS) >= 30
    assert len({a[0] for a in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("name,imports,body,code", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_escape_attempt_is_refused_before_anything_runs(
        name: str, imports: str, body: str, code: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mark = tmp_path / "MARKER"
    path = tmp_path / f"{name}.gt"
    path.write_text(_source(imports, body, mark))
    status, text = _check(path)
    assert status == 1, text
    assert f"error[{code}]" in text, text
    assert f"--> {path}:" in text, text
    assert "Traceback" not in text
    with pytest.raises(gtdsl.TypeCheckError, match=code):
        gtdsl.load(path)
    for backend in ("torch", "interpret"):
        with pytest.raises(gtdsl.TypeCheckError):
            gtdsl.load(path, backend=backend).f(torch.ones(2), None)
    assert not mark.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


ALLOWED = [
    ("functional_attr", "import torch", "torch.nn.functional.gelu(x)",
     lambda x: torch.nn.functional.gelu(x)),
    ("functional_alias", "import torch.nn.functional as F", "F.silu(x)",
     lambda x: torch.nn.functional.silu(x)),
    ("from_nn_import", "from torch.nn import functional as F", "F.softplus(x)",
     lambda x: torch.nn.functional.softplus(x)),
    ("math_value", "import math\nimport torch", "torch.full_like(x, math.pi)",
     lambda x: torch.full_like(x, torch.pi)),
    ("from_math_value", "from math import tau\nfrom torch import full_like",
     "full_like(x, tau)", lambda x: torch.full_like(x, 2 * torch.pi)),
    ("dtype_value", "import torch", "torch.ones_like(x, dtype=torch.float32) * x",
     lambda x: x),
    ("linalg", "import torch", "torch.linalg.solve(torch.eye(5) * 2.0, x)", lambda x: x / 2),
    ("special", "from torch.special import expit", "expit(x)", torch.sigmoid),
    ("math_constant_typed", "import math", "x * math.pi - math.e", lambda x: x * math.pi
     - math.e),
    ("negated_constant", "import torch\nfrom math import inf", "torch.clamp(x, -inf, 1.0)",
     lambda x: x.clamp(max=1.0)),
    ("public_attr_of_unchecked", "", "x * u.real", lambda x: x * 2.0),
]


@pytest.mark.parametrize("name,imports,expr,oracle", ALLOWED, ids=[a[0] for a in ALLOWED])
@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_allowlisted_names_run(name: str, imports: str, expr: str, oracle, backend: str,
                               tmp_path: Path) -> None:
    path = tmp_path / f"{name}.gt"
    path.write_text(f"{imports}\n\n\ndef f(x: f32[n], u) -> f32[n]:\n    return {expr}\n")
    x = torch.randn(5)
    got = gtdsl.load(path, backend=backend).f(x, torch.full((5,), 2.0))
    torch.testing.assert_close(got, oracle(x))


def test_every_allowlisted_name_is_a_pure_function_or_value() -> None:
    """The list names functions and values, never modules, and every one resolves."""
    import types

    assert len(PYTHON_NAMES) > 300
    for name in sorted(PYTHON_NAMES):
        obj = DEFAULT.resolve(name) if not name.startswith("math.") or hasattr(
            __import__("math"), name[5:]) else None
        assert not isinstance(obj, types.ModuleType), name
        assert not name.split(".")[-1].startswith("_"), name
    for dangerous in ("torch.save", "torch.load", "torch.cond", "torch.while_loop",
                      "torch.vmap", "torch.compile", "torch.manual_seed", "torch.os",
                      "torch.from_file", "torch.set_default_dtype", "torch.hub",
                      "torch.nn.functional.triplet_margin_with_distance_loss",
                      "math.factorial"):
        assert dangerous not in PYTHON_NAMES
    assert all(not n.startswith("_") for ns in NAMESPACES for n in ns.split("."))


def test_ir_naming_anything_else_never_runs() -> None:
    """The runtime checks each extern again: IR naming a name off the list is a bug report,
    not a call."""
    from gtdsl.diagnostics import InternalError
    from gtdsl.runtime.interp import resolve_extern

    with pytest.raises(InternalError):
        resolve_extern("torch.save", DEFAULT)
    with pytest.raises(InternalError):
        resolve_extern("os.system", DEFAULT)
    assert resolve_extern("torch.nn.functional.gelu", DEFAULT) is torch.nn.functional.gelu


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_imported_module_that_is_not_a_regular_file_is_refused(kind: str, tmp_path: Path,
                                                               monkeypatch) -> None:
    import os
    import signal

    monkeypatch.chdir(tmp_path)
    if kind == "fifo":
        os.mkfifo(tmp_path / "lib.gt")
    else:
        os.symlink("/dev/zero", tmp_path / "lib.gt")
    path = tmp_path / "m.gt"
    path.write_text("from lib import f\n\n\ndef g(x: f32[n]) -> f32[n]:\n    return f(x)\n")
    signal.alarm(20)  # a hang fails the test instead of stalling the suite
    try:
        status, text = _check(path)
    finally:
        signal.alarm(0)
    assert status == 1
    assert "error[GT0901]" in text and "not a regular file" in text, text


def test_a_long_chain_of_imports_is_refused_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    from gtdsl.check.env import MAX_IMPORT_DEPTH

    monkeypatch.chdir(tmp_path)
    n = 3 * MAX_IMPORT_DEPTH
    for i in range(n):
        (tmp_path / f"m{i}.gt").write_text(
            f"from m{i + 1} import f as h\n\n\ndef f(x: f32[n]) -> f32[n]:\n    return h(x)\n"
            if i + 1 < n else "def f(x: f32[n]) -> f32[n]:\n    return x\n")
    status, text = _check(tmp_path / "m0.gt")
    assert status == 1 and "error[GT0015]" in text and "Traceback" not in text, text
    ok = tmp_path / f"m{n - MAX_IMPORT_DEPTH + 1}.gt"  # a chain within the limit checks
    status, text = _check(ok)
    assert status == 0, text


WRITES = [  # calls through which an allowlisted function would write into its arguments
    ("out_keyword", "torch.add(w, 100.0, out=w)"),
    ("inplace_keyword", "F.relu(w, inplace=True)"),
    ("inplace_positional", "F.relu(w, True)"),
    ("inplace_unknown", "F.hardtanh(w, -1.0, 1.0, b)"),
    ("dropout_inplace", "F.dropout(w, 0.5, False, True)"),
    ("embedding_max_norm", "F.embedding(i, w2, None, 0.001)"),
    ("embedding_max_norm_keyword", "F.embedding(i, w2, max_norm=1.0)"),
    ("batch_norm_training", "F.batch_norm(w2, w, w, training=True)"),
    ("batch_norm_training_positional", "F.batch_norm(w2, w, w, None, None, True)"),
    ("instance_norm", "F.instance_norm(w2, w, w)"),
]


@pytest.mark.parametrize("name,call", WRITES, ids=[w[0] for w in WRITES])
def test_writing_into_the_callers_tensors_is_refused(name: str, call: str,
                                                     tmp_path: Path) -> None:
    path = tmp_path / f"{name}.gt"
    path.write_text("import torch\nimport torch.nn.functional as F\n\n\n"
                    "def f(w: f32[n], w2: f32[n, n], i: i64[n], b: bool) -> f32[n]:\n"
                    f"    y = {call}\n    return w\n")
    status, text = _check(path)
    assert status == 1 and "error[GT1012]" in text and "Traceback" not in text, text


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_the_same_functions_without_writing_arguments_leave_the_callers_tensors_alone(
        backend: str, tmp_path: Path) -> None:
    path = tmp_path / "pure.gt"
    path.write_text("import torch\nimport torch.nn.functional as F\n\n\n"
                    "def f(w: f32[n], w2: f32[n, n], i: i64[n], v: f32[n]) -> f32[n]:\n"
                    "    a = torch.add(w, 100.0)\n    r = F.relu(w, False)\n"
                    "    e = F.embedding(i, w2, max_norm=None)\n"
                    "    bn = F.batch_norm(w2, w, v, training=False)\n"
                    "    return a + r + e.sum(0) + bn.sum(0)\n")
    w, w2, i = torch.randn(3), torch.randn(3, 3), torch.tensor([0, 2, 1])
    v = torch.rand(3) + 0.5
    before = (w.clone(), w2.clone())
    got = gtdsl.load(path, backend=backend).f(w, w2, i, v)
    assert torch.equal(w, before[0]) and torch.equal(w2, before[1])
    want = (w + 100.0) + torch.relu(w) + w2[i].sum(0) + torch.nn.functional.batch_norm(
        w2, w, v).sum(0)
    torch.testing.assert_close(got, want)


RUNAWAY = [  # values known only at run time that would run for hours or fill memory
    ("power_tower", "b = torch.finfo(torch.float32).bits\n    c = b ** b ** b", "`pow`"),
    ("repeated_squaring", "c = torch.finfo(torch.float32).bits\n    for j in range(60):\n"
     "        c = c * c", "`mul`"),
    ("long_loop", "for j in range(n ** 12):\n        x = x + 1.0", "`range`"),
    ("shape_power", "k = x.shape[0]\n    c = k ** k ** k", "`pow`"),
]


@pytest.mark.parametrize("backend", ["torch", "interpret"])
@pytest.mark.parametrize("name,body,op", RUNAWAY, ids=[r[0] for r in RUNAWAY])
def test_runaway_numbers_and_loops_are_refused_at_run_time(name: str, body: str, op: str,
                                                           backend: str, tmp_path: Path) -> None:
    import signal

    path = tmp_path / f"{name}.gt"
    path.write_text(f"import torch\n\n\ndef f(x: f32[n]) -> f32[n]:\n    {body}\n    return x\n")
    signal.alarm(30)
    try:
        with pytest.raises(gtdsl.CastError) as err:
            gtdsl.load(path, backend=backend).f(torch.ones(9))
    finally:
        signal.alarm(0)
    assert err.value.diagnostics[0].code == "GT3005" and op in str(err.value)


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_integer_powers_and_products_within_the_limit_are_pythons(backend: str,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "ok.gt"
    path.write_text("def f(k: int, m: int):\n    return k ** m * (k * m) + 2 ** -k\n")
    f = gtdsl.load(path, backend=backend).f
    for k, m in [(3, 5), (2, 500), (-7, 3), (10, 0)]:
        assert f(k, m) == k ** m * (k * m) + 2 ** -k
