"""Downloads against a local HTTP server on loopback serving files in the real formats (no network)."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from asymloss.data import ChecksumError, DownloadError, download, load
from asymloss.data.download import MIRROR_ENV, Resource, fetch, mirror_urls
from test_data_formats import (
    assert_matches,
    cifar10_members,
    fake_cifar,
    fake_mnist,
    patch_spec,
    resources_with,
    write_mnist_dir,
    write_tar_gz,
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1 (free port); yields (base URL, served folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("progress", [False, True])
def test_download_mnist_success(tmp_path, server, monkeypatch, progress):
    base, www = server
    arrays = fake_mnist(seed=11)
    md5 = write_mnist_dir(www / "mnist", arrays)
    patch_spec(monkeypatch, "mnist", resources=resources_with(md5, "mnist"))
    monkeypatch.setenv(MIRROR_ENV, base)
    root = tmp_path / "root"
    ds = load("mnist", root=root, download=True, progress=progress)
    assert_matches(ds, arrays)
    assert _leftovers(root / "mnist") == sorted(md5)  # the four files, no temporaries
    for name in md5:
        assert (root / "mnist" / name).read_bytes() == (www / "mnist" / name).read_bytes()
    # second load: read from disk, the server is not needed
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")
    assert_matches(load("mnist", root=root, download=True), arrays)


def test_download_cifar10_with_mirror_argument(tmp_path, server, monkeypatch):
    base, www = server
    arrays = fake_cifar(12, n_train=10, n_test=5, k=10)
    md5 = write_tar_gz(www / "cifar10" / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_members(arrays))
    patch_spec(monkeypatch, "cifar10", resources=resources_with({"cifar-10-python.tar.gz": md5}, "cifar10"))
    dest = download("cifar10", root=tmp_path / "r", mirrors=[base], progress=False)
    assert dest == tmp_path / "r" / "cifar10" and _leftovers(dest) == ["cifar-10-python.tar.gz"]
    assert_matches(load("cifar10", root=tmp_path / "r"), arrays)


def test_download_checksum_mismatch_leaves_nothing(tmp_path, server, monkeypatch):
    base, www = server
    md5 = write_mnist_dir(www / "mnist", fake_mnist(seed=13))
    wrong = dict(md5, **{"train-images-idx3-ubyte.gz": "0" * 32})
    patch_spec(monkeypatch, "mnist", resources=resources_with(wrong, "mnist"))
    monkeypatch.setenv(MIRROR_ENV, base)
    with pytest.raises(ChecksumError) as e:
        load("mnist", root=tmp_path / "root", download=True, progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "0" * 32 in msg and md5["train-images-idx3-ubyte.gz"] in msg
    assert "train-images-idx3-ubyte.gz" not in _leftovers(tmp_path / "root" / "mnist")
    assert not [n for n in _leftovers(tmp_path / "root" / "mnist") if n.endswith(".tmp")]


def test_mirrors_tried_in_order(tmp_path, server):
    base, www = server
    (www / "good").mkdir()
    (www / "bad").mkdir()
    (www / "good" / "f.bin").write_bytes(b"payload")
    (www / "bad" / "f.bin").write_bytes(b"tampered")
    import hashlib

    res = [Resource("f.bin", hashlib.md5(b"payload").hexdigest())]
    # first mirror refuses connections, second serves a wrong file, third delivers
    bases = ["http://127.0.0.1:9", f"{base}/bad", f"{base}/missing", f"{base}/good"]
    (path,) = fetch(res, tmp_path / "d", bases, progress=False)
    assert path.read_bytes() == b"payload" and _leftovers(tmp_path / "d") == ["f.bin"]


def test_server_down_gives_offline_instructions(tmp_path, server, monkeypatch):
    base, _ = server
    monkeypatch.setenv(MIRROR_ENV, base)
    root = tmp_path / "root"
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound but not listening: connection refused
    try:
        monkeypatch.setenv(MIRROR_ENV, dead)
        with pytest.raises(DownloadError) as e:
            load("fashion-mnist", root=root, download=True, progress=False)
    finally:
        s.close()
    msg = str(e.value)
    assert f"{dead}/fashion-mnist/train-images-idx3-ubyte.gz" in msg
    assert "offline" in msg and str(root / "fashion-mnist") in msg
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "fashion_mnist.npz"):
        assert name in msg
    assert not [n for n in _leftovers(root / "fashion-mnist") if n.endswith(".gz")]


def test_http_404_is_a_download_error(tmp_path, server, monkeypatch):
    base, _ = server
    with pytest.raises(DownloadError, match="404|Not Found"):
        download("cifar100", root=tmp_path, mirrors=[base], progress=False)
    assert _leftovers(tmp_path / "cifar100") == []


def test_existing_corrupt_file_is_not_replaced(tmp_path, server, monkeypatch):
    base, www = server
    md5 = write_mnist_dir(www / "mnist", fake_mnist(seed=14))
    patch_spec(monkeypatch, "mnist", resources=resources_with(md5, "mnist"))
    (tmp_path / "mnist").mkdir()
    bad = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"junk")
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.gz: expected md5"):
        download("mnist", root=tmp_path, mirrors=[base], progress=False)
    assert bad.read_bytes() == b"junk"


def test_mirror_urls(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert mirror_urls(("https://a/x/", "http://b/"), "mnist") == ["https://a/x", "http://b"]
    monkeypatch.setenv(MIRROR_ENV, "http://m/data/")
    assert mirror_urls(("https://a/",), "cifar10") == ["http://m/data/cifar10"]
    assert mirror_urls(("https://a/",), "cifar10", ["file:///srv/"]) == ["file:///srv/cifar10"]


def test_canonical_sources():
    from asymloss.data.registry import DATASETS

    assert DATASETS["cifar10"].resources[0] == Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
    assert DATASETS["cifar100"].resources[0] == Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")
    assert DATASETS["cifar10"].mirrors == ("https://www.cs.toronto.edu/~kriz/",)
    assert DATASETS["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert DATASETS["fashion-mnist"].mirrors == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
