import importlib

import pytest

import asymloss
from asymloss._validation import check_number, unknown_name_error


def test_version_and_lazy_submodules():
    assert asymloss.__version__
    for name in ("theory", "noise", "data", "models", "train", "sweep", "report"):
        assert getattr(asymloss, name) is importlib.import_module(f"asymloss.{name}")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asymloss.nope


def test_validation_messages_name_argument_value_and_bounds():
    with pytest.raises(ValueError, match=r"a must be > 1; got 0.9"):
        check_number("a", 0.9, gt=1)
    with pytest.raises(TypeError, match="q must be a real number"):
        check_number("q", "x", gt=0)
    err = unknown_name_error("loss", "agc", ["agce", "aul", "ael", "ce"])
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    assert "'agce'" in str(err) and "Did you mean" in str(err)


def test_atomic_writes_replace_whole_files_with_ordinary_permissions(tmp_path):
    import os

    from asymloss._io import atomic_path, atomic_write_json, read_json

    target = tmp_path / "sub" / "r.json"
    atomic_write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert read_json(target) == {"a": 1}  # the old content survives a failed write
    assert [p.name for p in target.parent.iterdir()] == ["r.json"]  # no temporary left behind
