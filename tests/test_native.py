"""The fused CPU loss kernels (losses/csrc, losses/native.py): gradients, shapes, threads, loader.

Values against the float64 references are checked by the loss test modules, which run
every test on both backends (tests/conftest.py: loss_backend); this file covers what is
specific to the kernels.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import losses.sigmoid_focal as sigmoid_focal
from losses.fast import focal_functions, sigmoid_functions
from losses import build_loss, native

from conftest import load_native_kernels_or_skip
from test_focal_family import GRADCHECK_CASES, reference_per_sample

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ops():
    return load_native_kernels_or_skip()


def batch(rows, classes, seed=0, dtype=torch.float64, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(rows, classes, generator=generator, dtype=torch.float64) * scale).to(dtype)
    targets = torch.randint(0, classes, (rows,), generator=generator)
    return logits, targets


# ---- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma_pos, gamma_neg, gamma_hc, xi, eps", GRADCHECK_CASES)
def test_gradcheck_fused_focal_family(ops, gamma_pos, gamma_neg, gamma_hc, xi, eps):
    logits, targets = batch(6, 5, seed=4)
    logits.requires_grad_(True)
    for reduction in ("none", "mean", "sum"):

        def loss(z):
            return focal_functions.FusedFocalFamilyFunction.apply(
                z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction, ops
            )

        assert torch.autograd.gradcheck(loss, (logits,), eps=1e-6, atol=1e-8)


SIGMOID_CASES = [
    # (gamma, class gamma?, pos weight?, neg weight?): cb_sigmoid, cb_focal, efl and the odd ones.
    pytest.param(0.0, False, False, False, id="bce"),
    pytest.param(1.0, False, False, False, id="focal-gamma1"),
    pytest.param(2.0, False, True, True, id="focal-weighted"),
    pytest.param(0.5, False, False, True, id="focal-fractional"),
    pytest.param(None, True, True, True, id="efl-class-gammas"),
]


def sigmoid_arguments(gamma, class_gamma, pos_weight, neg_weight, rows, classes):
    generator = torch.Generator().manual_seed(7)
    gammas = torch.rand(classes, generator=generator, dtype=torch.float64) * 6 + 0.5
    return (
        gammas if class_gamma else gamma,
        torch.rand(rows, generator=generator, dtype=torch.float64) + 0.2 if pos_weight else None,
        torch.rand(1, classes, generator=generator, dtype=torch.float64) + 0.2 if neg_weight else None,
    )


@pytest.mark.parametrize("gamma, class_gamma, pos_weight, neg_weight", SIGMOID_CASES)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "pytorch"])
def test_gradcheck_sigmoid_focal_functions(ops, fused, gamma, class_gamma, pos_weight, neg_weight):
    logits, targets = batch(6, 5, seed=8)
    logits.requires_grad_(True)
    gamma, pos, neg = sigmoid_arguments(gamma, class_gamma, pos_weight, neg_weight, 6, 5)
    if fused:
        arguments = sigmoid_functions.fused_arguments(logits, gamma, pos, neg)

        def loss(z):
            return sigmoid_functions.FusedSigmoidFocalFunction.apply(z, targets, *arguments, None, ops)

    else:

        def loss(z):
            return sigmoid_functions.SigmoidFocalFunction.apply(z, targets, gamma, pos, neg, None)

    assert torch.autograd.gradcheck(loss, (logits,), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("gamma, class_gamma, pos_weight, neg_weight", SIGMOID_CASES)
def test_fused_sigmoid_collection_matches_pytorch_path(ops, gamma, class_gamma, pos_weight, neg_weight, monkeypatch):
    # The gradient sums EFL collects, from scale_rows_collect against the PyTorch Function's.
    logits, targets = batch(150, 29, seed=9)  # several of the collection's 64-row chunks
    gamma, pos, neg = sigmoid_arguments(gamma, class_gamma, pos_weight, neg_weight, 150, 29)
    upstream = torch.linspace(-1.5, 2.0, 150, dtype=torch.float64)  # signs differ: |G| is summed
    collected = {}
    results = {}
    for backend in ("require", "off"):
        monkeypatch.setenv(native.MODE_VARIABLE, backend)
        z = logits.clone().requires_grad_(True)

        def collect(t, target_abs, off_target_sums, backend=backend):
            collected[backend] = (t.clone(), target_abs.clone(), off_target_sums.clone())

        per_sample = sigmoid_focal.sigmoid_focal_per_sample(z, targets, gamma, pos, neg, collect)
        (grad,) = torch.autograd.grad((per_sample * upstream).sum(), z)
        results[backend] = (per_sample.detach(), grad)
    for fused, plain in zip(results["require"] + collected["require"], results["off"] + collected["off"]):
        assert torch.allclose(fused, plain, rtol=1e-9, atol=1e-12)
    # and by hand: |G| at the targets, and summed over the other rows per class
    grad = results["off"][1].abs()
    on_target = F.one_hot(targets, 29).bool()
    assert torch.allclose(collected["require"][1], grad[on_target], rtol=1e-12)
    assert torch.allclose(collected["require"][2], grad.masked_fill(on_target, 0).sum(0), rtol=1e-10)


def test_collection_keeps_small_off_target_sums_beside_a_large_target_gradient(ops):
    # Class 0 is row 0's target with gradient -1 and gets 1e-9 from each other row: summing
    # everything and subtracting the target afterwards would leave 0 in float32.
    grad = torch.tensor([[-1.0, 0.5], [1e-9, -0.25], [1e-9, -0.25]])
    targets = torch.tensor([0, 1, 1])
    scaled, target_abs, off_target = ops.scale_rows_collect(grad, torch.ones(3), targets)
    assert torch.equal(scaled, grad)
    assert torch.equal(target_abs, torch.tensor([1.0, 0.25, 0.25]))
    assert torch.allclose(off_target, torch.tensor([2e-9, 0.5]), rtol=1e-6)


# ---- shapes, tails, threads -------------------------------------------------------------------


@pytest.mark.parametrize("classes", [1, 2, 7, 8, 9, 16, 17, 33, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_any_row_length_matches_reference(ops, classes, dtype):
    # Rows shorter than, equal to and just past the vector width, targets at both ends.
    logits, targets = batch(11, classes, seed=classes, dtype=dtype)
    targets[0], targets[1] = 0, classes - 1
    tolerance = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 1e-6}
    z = logits.clone().requires_grad_(True)
    z_ref = logits.double().requires_grad_(True)
    mine = focal_functions.FusedFocalFamilyFunction.apply(z, targets, 2.0, 2.0, 2.0, 0.6, 0.1, "none", ops)
    ref = reference_per_sample(z_ref, targets, 2.0, 2.0, 2.0, 0.6, 0.1)
    assert torch.allclose(mine.double(), ref, **tolerance)
    upstream = torch.linspace(0.5, 1.5, 11, dtype=torch.float64)
    (grad,) = torch.autograd.grad((mine * upstream.to(dtype)).sum(), z)
    (grad_ref,) = torch.autograd.grad((ref * upstream).sum(), z_ref)
    assert torch.allclose(grad.double(), grad_ref, **tolerance)

    gammas = torch.linspace(0.5, 6.0, classes, dtype=dtype)
    weights = torch.linspace(0.2, 1.2, classes, dtype=dtype)
    fused, fused_grad = ops.sigmoid_focal(logits, targets, 0.0, gammas, None, weights, True)
    with torch.enable_grad():
        z_plain = logits.clone().requires_grad_(True)
        plain = sigmoid_functions.SigmoidFocalFunction.apply(z_plain, targets, gammas, None, weights.unsqueeze(0), None)
        (plain_grad,) = torch.autograd.grad(plain.sum(), z_plain)
    assert torch.allclose(fused, plain, **tolerance) and torch.allclose(fused_grad, plain_grad, **tolerance)


@pytest.mark.parametrize("gamma, class_gamma", [(0.0, None), (1.0, None), (2.0, None), (0.0, 0.3), (0.0, 3.7)])
def test_float32_sigmoid_terms_are_accurate_over_the_whole_range(ops, gamma, class_gamma):
    # Each non-target entry at x from -100 to 100 against the float64 kernel on the same
    # (float-representable) logits. Error model: a few ulps, plus 2 |gamma log s| ulps where
    # s^gamma = exp(gamma log s) rounds its exponent in float32 twice, forming log s and then
    # the product (each off by up to |gamma log s| 2^-24, as in any float32 pow built on exp).
    x = torch.linspace(-100, 100, 40001).double()
    rows = torch.stack([torch.full_like(x, 1000.0), x], 1)  # target column 0 at +1000 adds exactly 0
    targets = torch.zeros(x.numel(), dtype=torch.long)

    def run(dtype):
        # float-representable gammas, like the logits: both runs then raise s to the same power
        gammas = None if class_gamma is None else torch.tensor([2.0, class_gamma]).to(dtype)
        return ops.sigmoid_focal(rows.to(dtype), targets, gamma, gammas, None, None, True)

    (loss32, grad32), (loss64, grad64) = run(torch.float32), run(torch.float64)
    log_s = torch.nn.functional.logsigmoid(x)
    exponent = float(torch.tensor(class_gamma if class_gamma is not None else gamma)) * log_s.abs()
    allowed = (8 + 2 * exponent) * 2.0**-24
    tiny = torch.finfo(torch.float32).tiny * 1e6  # leave subnormal results out
    for got, want in ((loss32, loss64), (grad32[:, 1], grad64[:, 1])):
        normal = want.abs() > tiny
        relative = (got.double() - want).abs()[normal] / want.abs()[normal]
        assert (relative <= allowed[normal]).all(), float((relative / allowed[normal]).max())


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_softmax_losses_are_shift_invariant_in_float32(ops, eps):
    # Softmax ignores a common offset; so must the rounding. Logits on a 1/64 grid stay exact
    # when shifted by 10^4, so both calls see the same problem.
    logits, targets = batch(64, 1000, seed=16, dtype=torch.float32)
    logits = (logits * 64).round() / 64
    for gammas in ((0.0, 0.0, 0.0, 0.0), (2.0, 2.0, 2.0, 0.6), (0.0, 4.0, 2.0, 0.3)):
        plain, plain_grad = ops.softmax_focal(logits, targets, *gammas, eps, True)
        shifted, shifted_grad = ops.softmax_focal(logits + 1e4, targets, *gammas, eps, True)
        assert torch.allclose(shifted, plain, rtol=2e-6), (shifted - plain).abs().max()
        assert torch.allclose(shifted_grad, plain_grad, rtol=1e-5, atol=1e-9)


def test_results_do_not_depend_on_the_thread_count(ops):
    # Rows are independent and the collection sums each class's rows in order: bit-identical.
    logits, targets = batch(300, 257, seed=11, dtype=torch.float32)
    gammas = torch.linspace(2.0, 10.0, 257)
    upstream = torch.linspace(-1.0, 1.0, 300)
    threads = torch.get_num_threads()
    outputs = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            softmax = ops.softmax_focal(logits, targets, 0.0, 4.0, 2.0, 0.3, 0.1, True)
            sigmoid = ops.sigmoid_focal(logits, targets, 0.0, gammas, None, gammas, True)
            outputs.append([*softmax, *sigmoid, *ops.scale_rows_collect(sigmoid[1], upstream, targets)])
    finally:
        torch.set_num_threads(threads)
    for other in outputs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(outputs[0], other))


def test_non_contiguous_logits(ops):
    wide, targets = batch(9, 40, seed=12, dtype=torch.float32)
    view, targets = wide[:, ::2], targets % 20  # strided
    for name, params in (("cfl", {"label_smoothing": 0.1}), ("cb_focal", {"class_counts": list(range(1, 21))})):
        loss = build_loss(name, **params)
        assert torch.allclose(loss(view, targets), loss(view.contiguous(), targets), rtol=1e-6)


def test_nan_logit_gives_nan_loss_in_its_row_only(ops):
    logits, targets = batch(4, 13, seed=13)
    logits[2, 5] = float("nan")
    for loss, _ in (
        ops.softmax_focal(logits, targets, 2.0, 2.0, 2.0, 0.6, 0.1, True),
        ops.sigmoid_focal(logits, targets, 2.0, None, None, None, True),
    ):
        assert torch.isnan(loss[2]) and torch.isfinite(loss[[0, 1, 3]]).all()


def test_kernels_reject_bad_targets_instead_of_reading_past_a_row(ops):
    logits = torch.zeros(3, 4)
    for bad in (torch.tensor([0, 4, 1]), torch.tensor([0, -1, 1])):
        with pytest.raises(RuntimeError, match="out of range"):
            ops.softmax_focal(logits, bad, 0.0, 0.0, 0.0, 0.0, 0.1, False)
        with pytest.raises(RuntimeError, match="out of range"):
            ops.sigmoid_focal(logits, bad, 0.0, None, None, None, False)
    with pytest.raises(RuntimeError, match="int64"):
        ops.softmax_focal(logits, torch.tensor([0, 1, 2], dtype=torch.int32), 0.0, 0.0, 0.0, 0.0, 0.1, False)


def test_operator_registration_passes_opcheck(ops):
    # Schema, fake (torch.compile) kernels and dispatcher behaviour, as torch checks custom ops.
    opcheck = getattr(torch.library, "opcheck", None)
    if opcheck is None:
        pytest.skip("torch.library.opcheck needs torch >= 2.4")
    logits, targets = batch(5, 9, seed=14, dtype=torch.float32)
    gammas = torch.linspace(1.0, 3.0, 9)
    opcheck(ops.softmax_focal.default, (logits, targets, 2.0, 2.0, 2.0, 0.6, 0.1, True))
    opcheck(ops.softmax_focal.default, (logits, targets, 2.0, 2.0, 2.0, 0.6, 0.1, False))
    opcheck(ops.sigmoid_focal.default, (logits, targets, 0.0, gammas, torch.ones(5), gammas, True))
    opcheck(ops.sigmoid_focal.default, (logits, targets, 2.0, None, None, None, True))
    opcheck(ops.scale_rows_collect.default, (logits, torch.linspace(-1, 1, 5), targets))


# ---- which path runs ------------------------------------------------------------------------


def test_cpu_float_logits_take_the_fused_path_and_the_rest_do_not(ops, monkeypatch):
    monkeypatch.setenv(native.MODE_VARIABLE, "require")
    logits, targets = batch(4, 6, seed=15, dtype=torch.float32)
    z = logits.clone().requires_grad_(True)
    assert "Fused" in build_loss("cfl", label_smoothing=0.1)(z, targets).grad_fn.name()
    assert "Fused" in build_loss("focal")(z, targets).grad_fn.name()  # eps = 0 too
    assert "Fused" in sigmoid_focal.sigmoid_focal_per_sample(z, targets, 1.0).grad_fn.name()
    # plain cross-entropy stays torch's own kernel
    assert "Fused" not in build_loss("softmax")(z, targets).grad_fn.name()
    # bfloat16 is promoted to float32 first, so it takes the fused path as well
    half = logits.to(torch.bfloat16).requires_grad_(True)
    assert "Fused" in build_loss("asl", label_smoothing=0.1)(half, targets).grad_fn.name()
    # a weight of full (B, C) shape is not the kernel's: the PyTorch Function takes it
    full = sigmoid_focal.sigmoid_focal_per_sample(z, targets, 1.0, None, torch.rand(4, 6))
    assert full.grad_fn.name() == "SigmoidFocalFunctionBackward"
    assert native.cpu_kernels(torch.empty(2, 2, device="meta")) is None
    assert native.cpu_kernels(torch.empty(2, 2, dtype=torch.float16)) is None
    monkeypatch.setenv(native.MODE_VARIABLE, "off")
    assert build_loss("cfl", label_smoothing=0.1)(z, targets).grad_fn.name() == "FocalFamilyFunctionBackward"
    assert native.cpu_kernels(z) is None


def test_no_gradient_pass_when_no_graph_is_recorded(ops, monkeypatch):
    # Under no_grad (or for logits that need no gradient) the kernels are asked for the loss only.
    asked = []

    class Spy:
        def __getattr__(self, name):
            kernel = getattr(ops, name)
            return lambda *args: asked.append((name, args[-1])) or kernel(*args)

    monkeypatch.setattr(native, "cpu_kernels", lambda logits: Spy())
    logits, targets = batch(4, 6, seed=17, dtype=torch.float32)
    z = logits.clone().requires_grad_(True)
    cfl, cb_focal = build_loss("cfl", label_smoothing=0.1), build_loss("cb_focal", class_counts=[3, 1, 4, 1, 5, 9])
    with torch.no_grad():
        eval_values = cfl(z, targets), cb_focal(z, targets)
    cfl(logits, targets), cb_focal(logits, targets)
    assert asked == [("softmax_focal", False), ("sigmoid_focal", False)] * 2
    train_values = cfl(z, targets), cb_focal(z, targets)
    assert asked[-2:] == [("softmax_focal", True), ("sigmoid_focal", True)]
    assert all(torch.equal(a, b.detach()) for a, b in zip(eval_values, train_values))


def test_unknown_mode_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv(native.MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match="OLTR_NATIVE_LOSSES must be one of auto, off, require, got 'fast'"):
        build_loss("cfl", label_smoothing=0.1)(torch.zeros(2, 3), torch.tensor([0, 1]))


FAILED_BUILD = """
import warnings, torch
from losses import build_loss, native
z = torch.randn(4, 6, requires_grad=True); y = torch.tensor([0, 1, 2, 5])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    loss = build_loss("cfl", label_smoothing=0.1)(z, y)
    build_loss("cfl", label_smoothing=0.1)(z, y)
loss.backward()
print("path", loss.grad_fn.name())
print("warnings", sum("could not be built" in str(w.message) and "python -m losses --build" in str(w.message)
                      for w in caught))
"""


def _run_python(code, env_updates, tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "cache"), **env_updates}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_failed_build_falls_back_with_one_warning_or_fails_under_require(tmp_path):
    # No compiler (CXX points nowhere) in a fresh cache: auto warns once and uses PyTorch.
    broken = {"CXX": str(tmp_path / "no-such-compiler"), native.MODE_VARIABLE: "auto"}
    result = _run_python(FAILED_BUILD, broken, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "path FocalFamilyFunctionBackward" in result.stdout and "warnings 1" in result.stdout
    result = _run_python(FAILED_BUILD, {**broken, native.MODE_VARIABLE: "require"}, tmp_path)
    assert result.returncode != 0 and "NativeKernelsUnavailable" in result.stderr
    assert "OLTR_NATIVE_LOSSES=require" in result.stderr
    # a failed build leaves no library behind for the next process to trust
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_built_library_is_reused_by_the_next_process(ops):
    # The fixture built (or found) it in the default cache; a new process only loads it.
    code = "import torch; from losses import native; native.load(); print(native.library_path())"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, native.MODE_VARIABLE: "require"},
    )
    assert result.returncode == 0, result.stderr
    assert "compiling" not in result.stderr
    assert Path(result.stdout.strip()).is_file()


def test_python_dash_m_losses_lists_losses_and_builds(ops):
    result = subprocess.run(
        [sys.executable, "-m", "losses", "--build"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "cfl(gamma=2.0, gamma_hc=2.0, cyclical_factor=4.0" in result.stdout
    assert "(built)" in result.stdout and "loaded: torch.ops.oltr_losses" in result.stdout


PORTABLE_CHECK = """
import os, torch
from losses import build_loss, native
assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
generator = torch.Generator().manual_seed(0)
cases = [("softmax", {"label_smoothing": 0.1}), ("focal", {"label_smoothing": 0.1}), ("asl", {"label_smoothing": 0.1}),
         ("cfl", {"label_smoothing": 0.1}), ("casl", {"label_smoothing": 0.2, "gamma_neg": 3.3}), ("focal", {}),
         ("cb_sigmoid", {}), ("cb_focal", {"gamma": 0.5}), ("efl", {})]
for dtype in (torch.float64, torch.float32):
    logits = torch.randn(19, 13, generator=generator, dtype=dtype) * 3
    targets = torch.randint(0, 13, (19,), generator=generator)
    for name, params in cases:
        results = []
        for mode in ("require", "off"):
            os.environ[native.MODE_VARIABLE] = mode
            loss = build_loss(name, num_classes=13, class_counts=list(range(1, 14)), num_epochs=5, **params)
            if hasattr(loss, "set_progress"):
                loss.set_progress(0.1)
            z = logits.clone().requires_grad_(True)
            value = loss(z, targets)
            value.backward()
            results.append((value.detach(), z.grad, value.grad_fn.name()))
        (fused, fused_grad, path), (plain, plain_grad, _) = results
        assert "Fused" in path or name.startswith(("cb_", "efl")), path
        tolerance = 1e-10 if dtype == torch.float64 else 2e-5
        assert torch.allclose(fused, plain, rtol=tolerance), (name, dtype)
        assert torch.allclose(fused_grad, plain_grad, rtol=tolerance, atol=tolerance * 1e-2), (name, dtype)
print("portable build ok", native.library_path().name)
"""


@pytest.mark.slow
def test_portable_build_for_cpus_without_vector_extensions(ops):
    # What a CPU without AVX2 (or another architecture) builds: ATen's scalar Vectorized fallback,
    # forced here with ATEN_CPU_CAPABILITY=default; a separate library in the same cache.
    result = subprocess.run(
        [sys.executable, "-c", PORTABLE_CHECK], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "ATEN_CPU_CAPABILITY": "default", native.MODE_VARIABLE: "require"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "portable build ok oltr_losses_default_" in result.stdout


def test_python_dash_m_losses_shows_the_build_log_when_the_build_fails(tmp_path):
    compiler = tmp_path / "no-such-compiler"
    result = subprocess.run(
        [sys.executable, "-m", "losses", "--build"], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CXX": str(compiler), "TORCH_EXTENSIONS_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 1
    assert "softmax_focal.cpp" in result.stderr  # ninja's command lines: the whole log
    last = result.stderr.strip().splitlines()[-1]
    # the shell's complaint about the missing compiler, not ninja's closing "build stopped"
    assert last.startswith("error: the fused CPU kernels could not be built or loaded: RuntimeError: ")
    assert str(compiler) in last and "build stopped" not in last
