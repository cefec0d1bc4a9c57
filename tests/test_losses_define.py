"""One definition per loss (docs/adding-a-loss.md): everything is derived from the declaration."""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import asymloss
from asymloss import functional as AF
from asymloss.losses import get_definition, list_losses
from asymloss.losses._define import DEFINITIONS
from asymloss.losses.modules import CLASSES

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-loss.md"


def _doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "docs/adding-a-loss.md has one runnable example"
    return blocks[0]


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_the_docs_example_runs_and_its_loss_is_right_to_float64():
    check = textwrap.dedent("""
        import torch, inspect
        from asymloss.losses import list_losses
        z = torch.randn(16, 7, dtype=torch.float64, requires_grad=True)
        t = torch.randint(0, 7, (16,))
        v = asymloss.functional.half_squared(z, t, scale=3.0, reduction="sum")
        ref = (1.5 * (1 - torch.softmax(z, 1).gather(1, t[:, None]).squeeze(1)) ** 2).sum()
        g, = torch.autograd.grad(v, z)
        gr, = torch.autograd.grad(ref, z)
        assert abs(v.item() - ref.item()) < 1e-12, (v, ref)
        assert (g - gr).abs().max() < 1e-12
        assert "half_squared" in list_losses()
        sig = inspect.signature(asymloss.functional.half_squared)
        assert sig.parameters["scale"].default == 1.0 and sig.parameters["scale"].kind.name == "KEYWORD_ONLY"
        assert "Squared error" in asymloss.functional.half_squared.__doc__
        print("ok")
    """)
    out = _run(_doc_example() + check)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_a_new_spelling_that_names_another_loss_is_refused():
    code = textwrap.dedent("""
        from asymloss.losses import Real, loss, list_losses
        try:
            @loss("mine", cls="Mine", kind="active", aliases=("cross_entropy",))
            def mine(b):
                return -b.logp_y()
        except ValueError as exc:
            print(exc)
        assert "mine" not in list_losses()
        try:
            @loss("mine2", cls="Mine2", kind="active", params=dict(q=Real(-1.0, gt=0)))
            def mine2(b, q):
                return -b.logp_y()
        except ValueError as exc:
            print(exc)
    """)
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = out.stdout.strip().splitlines()
    assert "'mine'" in first and "already name" in first and "'ce'" in first
    assert second == "q must be > 0; got -1.0."


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_function_module_and_registry_agree_with_the_declaration(name):
    d = get_definition(name)
    cls = CLASSES[name]
    assert cls.definition is d and cls.__name__ == d.cls_name and cls.kind == d.kind
    assert asymloss.create_loss(name).hparams() == {k: p.default for k, p in d.params.items()} or d.module
    if d.kernel is not None:
        fn = getattr(AF, d.func_name)
        sig = inspect.signature(fn)
        hp = [p for p in sig.parameters.values() if p.name not in ("input", "target", "weight", "ignore_index",
                                                                   "reduction")]
        assert [(p.name, p.default) for p in hp] == [(k, p.default) for k, p in d.params.items()]
        assert fn.__doc__ == d.doc
    for k, p in d.params.items():                       # each declared constraint is enforced
        bad = {"bool": 1, "int": 1.5, "real": "x"}[p.kind]
        with pytest.raises(TypeError, match=k):
            asymloss.create_loss(name, **{k: bad})
        if p.gt is not None or p.ge is not None:
            low = (p.gt if p.gt is not None else p.ge) - 1
            with pytest.raises(ValueError, match=rf"^{k} must be"):
                asymloss.create_loss(name, **{k: low})


def test_no_loss_is_classified_by_a_name_list():
    import asymloss.theory._resolve as R

    assert not hasattr(R, "_NOT_POINTWISE")
    pointwise = {n for n, d in DEFINITIONS.items() if d.pointwise}
    assert {"ce", "agce", "aul", "ael", "gce", "sce", "mae", "taylor_ce"} <= pointwise
    assert not {"nce", "nfl", "js", "ldr_kl", "logit_clip", "nce+agce"} & pointwise
    for n in pointwise:  # ℓ(p_y) is exactly what the theory sees: same value on two simplex points
        res = R.resolve_loss(n, {})
        assert res.pointwise is not None, n
    # a declared ratio is the theory's closed form
    assert asymloss.theory.asymmetry_ratio("agce", a=0.6, q=0.6).value == pytest.approx((1.6 / 0.6) ** -0.4)


def test_keywords_of_a_combination_come_from_its_parts():
    d = get_definition("anl_fl")
    assert list(d.params) == ["alpha", "beta", "gamma", "detach", "min_prob"]
    m = asymloss.create_loss("anl_fl", gamma=0.3)
    assert m.active.gamma == m.passive.gamma == 0.3       # tied: one keyword, both parts
    m.gamma = 0.7
    assert m.active.gamma == m.passive.gamma == 0.7
    with pytest.raises(ValueError, match="min_prob must be"):
        asymloss.ANLFL(min_prob=2.0)
    with pytest.raises(TypeError, match="positional"):
        asymloss.AGCE(0.6, 0.6, 1.0)
    assert asymloss.AGCE(4, 0.2).hparams() == {"a": 4.0, "q": 0.2}


def test_every_preset_is_validated_by_the_declarations():
    from asymloss.losses.presets import PRESETS

    for preset, losses in PRESETS.items():
        for name in losses:
            asymloss.losses.get_preset(preset, name)   # raises on a value outside its constraint
    assert len(list_losses()) == len(DEFINITIONS)


def test_sce_special_cases_equal_the_sum_of_their_terms():
    z = torch.randn(9, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (9,))
    for kw in ({"eps": 0.0}, {"alpha": 0.0}, {"beta": 0.0}, {}):
        hp = {"alpha": 0.1, "beta": 1.0, "eps": 1e-7, **kw}
        ref = hp["alpha"] * AF.ce(z, y, reduction="none") + hp["beta"] * AF.rce(z, y, eps=hp["eps"], reduction="none")
        torch.testing.assert_close(AF.sce(z, y, reduction="none", **kw), ref, rtol=1e-12, atol=1e-12)
