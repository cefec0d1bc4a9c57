"""The dataset registry: names -> loaders, the on-disk layout and the normalisation constants.

On-disk layout under the data root (``root`` argument, else ``$ASYMLOSS_DATA``, else
``~/.cache/asymloss``; see :func:`asymloss._paths.data_root`)::

    <root>/mnist/           train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
                            t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz   (or un-gzipped)
    <root>/fashion-mnist/   the same four Fashion-MNIST file names
    <root>/cifar10/         cifar-10-python.tar.gz   (or the extracted cifar-10-batches-py/)
    <root>/cifar100/        cifar-100-python.tar.gz  (or the extracted cifar-100-python/)
    <root>/mnist.npz  <root>/fashion_mnist.npz  <root>/cifar10_jpeg.npz   offline copies
                            (the files of ../shared/datasets; pointing root there just works)

torchvision's layout is accepted too: ``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/`` and the
CIFAR archives or folders directly in ``<root>``. The original files come first: when they are
present they are used (checksums verified); else the offline ``.npz`` copy; else, with
``download=True``, the originals are downloaded into the layout above; else
:class:`DatasetNotFoundError` says what to put where.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .._datasets import DATASET_ALIASES
from .._paths import data_root
from .._validation import unknown_name_error
from ._dataset import ImageDataset, stratified_indices
from .download import ChecksumError, DatasetNotFoundError, Resource, fetch, mirror_urls, verify_md5
from .readers import FormatError, gunzip_if_needed, parse_idx, read_cifar, read_image_folder, read_npz

__all__ = ["load", "list_datasets", "download", "DATASETS", "DatasetSpec", "JPEG_NOTE"]

JPEG_NOTE = (
    "JPEG-degraded copy of CIFAR-10 (cifar10_jpeg.npz: JPEG quality 75, 4:2:0; PSNR about 30 dB "
    "against the originals): results are not comparable to published CIFAR-10 numbers"
)

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
    "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale "
    "willow_tree wolf woman worm".split()
)
CIFAR100_COARSE = tuple(
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices "
    "household_furniture insects large_carnivores large_man-made_outdoor_things "
    "large_natural_outdoor_scenes large_omnivores_and_herbivores medium_mammals "
    "non-insect_invertebrates people reptiles small_mammals trees vehicles_1 vehicles_2".split()
)

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, check, download and describe one built-in dataset."""

    name: str
    title: str
    kind: str  # "idx" | "cifar10" | "cifar100"
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: str  # <root>/<folder>/ holds the original files
    alt_folders: tuple[str, ...]  # other accepted places (torchvision's layout), relative to root
    resources: tuple[Resource, ...]  # the published files with their MD5s
    mirrors: tuple[str, ...]  # canonical base URLs, tried in order
    members: tuple[Resource, ...] = ()  # CIFAR: the files of the extracted folder with their MD5s
    extracted: str = ""  # CIFAR: name of the extracted folder
    content: tuple[tuple[str, str], ...] = ()  # IDX: sha256 of each uncompressed file
    offline: str = ""  # file name of the offline npz copy in <root>
    offline_sha256: str = ""  # sha256 of that file (../shared/datasets/MANIFEST.md)
    offline_note: str = ""
    homepage: str = ""


# Normalisation constants (per channel, [0, 1] pixel units), all over the training images:
#  - MNIST 0.1307 / 0.3081: the customary values (torchvision/PyTorch examples); mnist.npz gives
#    0.13066 / 0.30811.
#  - Fashion-MNIST 0.2860 / 0.3530: computed over the 60,000 training images of fashion_mnist.npz
#    (0.28604 / 0.35302; the exact original files).
#  - CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616): mean and population std of all
#    training pixels of the original CIFAR-10 (the values widely published, e.g. in the
#    PyTorch forums and many CIFAR repos). Not the per-image-std variant (0.2023, 0.1994, 0.2010).
#    The lossless train images 0-3999 give (0.4916, 0.4818, 0.4447) / (0.2471, 0.2440, 0.2625);
#    the JPEG copy gives (0.4913, 0.4821, 0.4465) / (0.2452, 0.2428, 0.2606); we keep the
#    original constants for both so that models see the same preprocessing.
#  - CIFAR-100 (0.5071, 0.4865, 0.4409) / (0.2673, 0.2564, 0.2762): same definition, the values
#    widely published for the original training set (not recomputable here: no images offline).
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        kind="idx",
        classes=MNIST_CLASSES,
        mean=(0.1307,),
        std=(0.3081,),
        folder="mnist",
        alt_folders=("MNIST/raw",),
        resources=(
            Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        content=(
            ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        ),
        offline="mnist.npz",
        offline_sha256="366ed534da853e9b241d5a8abf2d34216a9adc8d83131578ff7b855ff635777d",
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        kind="idx",
        classes=FASHION_CLASSES,
        mean=(0.2860,),
        std=(0.3530,),
        folder="fashion-mnist",
        alt_folders=("FashionMNIST/raw",),
        resources=(
            Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        content=(
            ("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        ),
        offline="fashion_mnist.npz",
        offline_sha256="14460df40b2998a23f7e130153d2c2e70f915a8696c8c8101d8253e6d8ce5c09",
        homepage="https://github.com/zalandoresearch/fashion-mnist (Debian: package dataset-fashion-mnist)",
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        kind="cifar10",
        classes=CIFAR10_CLASSES,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        folder="cifar10",
        alt_folders=("",),
        resources=(Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        members=(
            Resource("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            Resource("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            Resource("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            Resource("data_batch_4", "634d18415352ddfa80567beed471001a"),
            Resource("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            Resource("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
        extracted="cifar-10-batches-py",
        offline="cifar10_jpeg.npz",
        offline_sha256="412852faa7f599d5f8d576894309fba9ac21eba952eb190025773d5f08d23d59",
        offline_note=JPEG_NOTE,
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        title="CIFAR-100",
        kind="cifar100",
        classes=CIFAR100_CLASSES,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        folder="cifar100",
        alt_folders=("",),
        resources=(Resource("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        members=(
            Resource("train", "16019d7e3df5f24257cddd939b257f8d"),
            Resource("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        ),
        extracted="cifar-100-python",
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
}

_ALIASES = {k: v for k, v in DATASET_ALIASES.items() if v in DATASETS}

DIGITS_FILE = "digits.npz"  # shipped in this package; provenance and licence in digits.README
DIGITS_TEST_FRACTION = 0.2
DIGITS_SEED = 0


def list_datasets() -> list[str]:
    """Registered names; ``npz:<path>`` and ``folder:<path>`` take a path after the colon."""
    return [*DATASETS, "digits", "npz:<path>", "folder:<path>"]


# ---------------------------------------------------------------------------------------------
# conversion helpers
# ---------------------------------------------------------------------------------------------
def _nchw(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) NumPy -> contiguous uint8 (N, C, H, W) tensor (one copy)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    return t.contiguous()


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of uint8 (N, C, H, W) images, in [0, 1] units (float64)."""
    c = x.shape[1]
    flat = x.transpose(0, 1).reshape(c, -1).to(torch.float64) / 255.0
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1, correction=0).tolist())


def _make(name, arrays, classes, mean=None, std=None, note="", source="", **extra) -> ImageDataset:
    x_train, x_test = _nchw(arrays["x_train"]), _nchw(arrays["x_test"])
    for split, x in (("training", x_train), ("test", x_test)):
        if x.shape[0] == 0:
            raise FormatError(f"{source or name}: the {split} set holds no images; a dataset needs both.")
    if mean is None:
        mean, std = _channel_stats(x_train)
    return ImageDataset(
        name=name,
        x_train=x_train,
        y_train=_labels(arrays["y_train"]),
        x_test=x_test,
        y_test=_labels(arrays["y_test"]),
        classes=tuple(classes),
        mean=mean,
        std=std,
        note=note,
        source=source,
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# built-in datasets
# ---------------------------------------------------------------------------------------------
def _instructions(spec: DatasetSpec, root: Path) -> str:
    files = ", ".join(f"{r.filename} (md5 {r.md5})" for r in spec.resources)
    text = f"put {files} into {root / spec.folder} (from {spec.homepage or spec.mirrors[0]})"
    if spec.offline:
        text += f", or the offline copy {spec.offline} into {root} (../shared/datasets holds one)"
    return text + "."


def _idx_dir(spec: DatasetSpec, root: Path) -> Path | None:
    """The first candidate folder holding all four IDX files (gzipped or not)."""
    for sub in (spec.folder, *spec.alt_folders):
        d = root / sub
        if all((d / f).is_file() or (d / f[:-3]).is_file() for f in IDX_FILES):
            return d
    return None


def _idx_bytes(spec: DatasetSpec, d: Path, fname: str) -> bytes:
    """The uncompressed, verified bytes of IDX file ``fname`` (``*.gz`` name) from folder ``d``.

    A ``.gz`` file must have the published MD5, or else (a re-compressed copy, e.g. Debian's
    ``dataset-fashion-mnist``) uncompressed contents with the known SHA-256. An un-gzipped file
    must have the known SHA-256. A mismatch raises :class:`ChecksumError` naming the file.
    """
    md5 = {r.filename: r.md5 for r in spec.resources}[fname]
    sha = dict(spec.content).get(fname[:-3])
    gz = d / fname
    if gz.is_file():
        blob = gz.read_bytes()
        actual_md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        try:
            raw = gunzip_if_needed(blob, gz)
        except FormatError as e:  # a damaged download: say that the checksum differs too
            if actual_md5 == md5:
                raise
            raise ChecksumError(
                f"{e} Its md5 is {actual_md5}, not the published {md5}: the file is truncated or corrupt; "
                "delete it and download it again."
            ) from e
        if actual_md5 == md5:
            return raw
        actual_sha = hashlib.sha256(raw).hexdigest()
        if sha is not None and actual_sha == sha:
            return raw
        raise ChecksumError(
            f"checksum mismatch for {gz}: expected md5 {md5}"
            + (f" (or uncompressed sha256 {sha})" if sha else "")
            + f", got md5 {actual_md5} (uncompressed sha256 {actual_sha}). The file is corrupt or not "
            "the published one; delete it and download it again."
        )
    path = d / fname[:-3]
    raw = path.read_bytes()
    if sha is not None:
        actual_sha = hashlib.sha256(raw).hexdigest()
        if actual_sha != sha:
            raise ChecksumError(
                f"checksum mismatch for {path}: expected sha256 {sha}, got {actual_sha}. The file is "
                "corrupt or not the published one; delete it and download it again."
            )
    return raw


def _read_idx_dir(spec: DatasetSpec, d: Path, root: Path) -> ImageDataset:
    arrays = {}
    for key, fname, ndim in (
        ("x_train", IDX_FILES[0], 3),
        ("y_train", IDX_FILES[1], 1),
        ("x_test", IDX_FILES[2], 3),
        ("y_test", IDX_FILES[3], 1),
    ):
        where = d / fname if (d / fname).is_file() else d / fname[:-3]
        arrays[key] = parse_idx(_idx_bytes(spec, d, fname), where, expect_ndim=ndim)
    for split in ("train", "test"):
        if arrays[f"x_{split}"].dtype != np.uint8 or arrays[f"x_{split}"].shape[0] != arrays[f"y_{split}"].shape[0]:
            raise FormatError(
                f"{d}: {split} images {arrays[f'x_{split}'].dtype} {arrays[f'x_{split}'].shape} do not match "
                f"{arrays[f'y_{split}'].shape[0]} labels."
            )
    return _make(spec.name, arrays, spec.classes, spec.mean, spec.std, source=f"{_rel(d, root)} (IDX)")


def _cifar_source(spec: DatasetSpec, root: Path) -> Path | None:
    for sub in (spec.folder, *spec.alt_folders):
        d = root / sub
        if (d / spec.resources[0].filename).is_file():
            return d / spec.resources[0].filename
        if (d / spec.extracted).is_dir():
            return d / spec.extracted
    return None


def _read_cifar(spec: DatasetSpec, path: Path, root: Path) -> ImageDataset:
    if path.is_dir():
        for m in spec.members:
            if (path / m.filename).is_file():
                verify_md5(path / m.filename, m.md5)
    else:
        verify_md5(path, spec.resources[0].md5)
    c100 = spec.kind == "cifar100"
    arrays = read_cifar(path, cifar100=c100)
    classes = arrays["classes"] or spec.classes
    extra = {}
    if c100:
        extra = {
            "y_train_coarse": _labels(arrays["y_train_coarse"]),
            "y_test_coarse": _labels(arrays["y_test_coarse"]),
            "coarse_classes": arrays["coarse_classes"] or CIFAR100_COARSE,
        }
    return _make(spec.name, arrays, classes, spec.mean, spec.std, source=_rel(path, root), **extra)


def _rel(p: Path, root: Path) -> str:
    try:
        return str(p.relative_to(root)) or "."
    except ValueError:
        return str(p)


def _find_original(spec: DatasetSpec, root: Path):
    if spec.kind == "idx":
        d = _idx_dir(spec, root)
        return (lambda: _read_idx_dir(spec, d, root)) if d is not None else None
    path = _cifar_source(spec, root)
    return (lambda: _read_cifar(spec, path, root)) if path is not None else None


def _load_offline(spec: DatasetSpec, root: Path) -> ImageDataset:
    path = root / spec.offline
    try:
        arrays = read_npz(path)
    except FormatError as e:
        raise _damaged_offline_copy(spec, path, e) from e
    note = spec.offline_note
    src = f"{spec.offline} (offline copy{'' if note else ', exact'})"
    return _make(spec.name, arrays, spec.classes, spec.mean, spec.std, note=note, source=src)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _damaged_offline_copy(spec: DatasetSpec, path: Path, error: FormatError) -> ValueError:
    """The error for an offline copy that cannot be read: does the file have the known checksum?"""
    if not spec.offline_sha256:
        return error
    actual = _sha256(path)
    if actual != spec.offline_sha256:
        return ChecksumError(
            f"{error} Its sha256 is {actual}, not the expected {spec.offline_sha256} of the offline copy "
            f"{spec.offline}: the file is truncated or corrupt. Copy it again (../shared/datasets holds one) "
            f"or delete it."
        )
    return FormatError(
        f"{error} Its sha256 matches the expected one ({spec.offline_sha256}), so the file is intact: "
        "this NumPy cannot read it (check the installation)."
    )


def download(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    mirrors: list[str] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download the original files of ``name`` into ``<root>/<folder>/`` and return that folder.

    Each file is streamed to a temporary file beside its destination, its MD5 compared with the
    published one, and only then renamed into place. ``mirrors`` (or ``$ASYMLOSS_MIRROR``)
    replaces the canonical URLs with base URLs laid out like the data root
    (``<mirror>/<folder>/<file>``). Raises :class:`DownloadError` when no mirror delivers a file.

    >>> asymloss.data.download("mnist")  # doctest: +SKIP
    PosixPath('~/.cache/asymloss/mnist')
    """
    spec = _spec(name)
    root = data_root(root)
    dest = root / spec.folder
    bases = mirror_urls(spec.mirrors, spec.folder, mirrors)
    fetch(spec.resources, dest, bases, progress=progress, timeout=timeout, instead=_instructions(spec, root))
    return dest


def _spec(name: str) -> DatasetSpec:
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in DATASETS:
        raise unknown_name_error("dataset", str(name), [*DATASETS, "digits"])
    return DATASETS[key]


def _load_builtin(spec: DatasetSpec, root: Path, download_: bool, progress: bool) -> ImageDataset:
    reader = _find_original(spec, root)
    if reader is not None:
        return reader()
    if spec.offline and (root / spec.offline).is_file():
        return _load_offline(spec, root)
    if download_:
        download(spec.name, root, progress=progress)
        reader = _find_original(spec, root)
        assert reader is not None  # fetch() either delivered every file or raised
        return reader()
    partial = ""
    if spec.kind == "cifar100" and (root / "cifar100_test_labels.npz").is_file():
        partial = (
            "(cifar100_test_labels.npz in the root holds only the test labels and 20 test images; "
            "it cannot stand in for CIFAR-100.) "
        )
    raise DatasetNotFoundError(
        f"{spec.title} not found in the data root {root}. {partial}Either {_instructions(spec, root)} "
        f"Or call load({spec.name!r}, download=True) on a machine with network access. "
        "The data root is the root argument, else $ASYMLOSS_DATA, else ~/.cache/asymloss."
    )


# ---------------------------------------------------------------------------------------------
# digits (no download), npz:, folder:
# ---------------------------------------------------------------------------------------------
def _load_digits() -> ImageDataset:
    """The UCI handwritten digits that scikit-learn bundles (shipped with asymloss as
    ``asymloss/data/digits.npz``, see ``digits.README``): 1797 8x8 images, stratified 80/20 split
    with seed 0."""
    from importlib.resources import files

    with files(__package__).joinpath(DIGITS_FILE).open("rb") as f, np.load(f, allow_pickle=False) as z:
        images, target = z["images"], z["target"]
    x = np.rint(images.astype(np.float64) * (255.0 / 16.0)).astype(np.uint8)  # values 0..16 -> 0..255
    y = target.astype(np.int64)
    test = stratified_indices(y, int(round(DIGITS_TEST_FRACTION * len(y))), seed=DIGITS_SEED)
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    arrays = {"x_train": x[~mask], "y_train": y[~mask], "x_test": x[mask], "y_test": y[mask]}
    return _make(
        "digits",
        arrays,
        MNIST_CLASSES,
        source=f"{DIGITS_FILE} (UCI digits as bundled with scikit-learn; stratified 80/20 split, seed 0)",
    )


def _load_npz(path: str) -> ImageDataset:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFoundError(f"npz dataset file not found: {p} (name 'npz:<path>' needs an existing .npz).")
    try:
        arrays = read_npz(p)
    except FormatError as e:
        raise FormatError(f"{e} No checksum is known for a user's .npz file, so asymloss cannot tell whether "
                          "it was damaged or written wrongly; write it again with numpy.savez.") from e
    k = int(max(arrays["y_train"].max(initial=0), arrays["y_test"].max(initial=0))) + 1
    classes = arrays.get("classes") or tuple(str(i) for i in range(k))
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise FormatError(f"{p}: y_{split} has labels outside [0, {len(classes)}).")
    return _make(f"npz:{path}", arrays, classes, source=str(p))


def _load_folder(path: str) -> ImageDataset:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DatasetNotFoundError(f"image folder not found: {p} (name 'folder:<path>' needs <path>/train/<class>/ and <path>/test/<class>/).")
    arrays = read_image_folder(p)
    return _make(f"folder:{path}", arrays, arrays["classes"], source=str(p))


_PREFIXED: dict[str, Callable[[str], ImageDataset]] = {"npz": _load_npz, "folder": _load_folder}


def load(name: str, root: str | os.PathLike | None = None, download: bool = False, *, progress: bool = True) -> ImageDataset:
    """Load a dataset into memory as an :class:`ImageDataset` (uint8 NCHW images, int64 labels).

    Args:
        name: one of :func:`list_datasets`: ``mnist``, ``fashion-mnist``, ``cifar10``,
            ``cifar100``, ``digits`` (scikit-learn's 8x8 digits, no download), ``npz:<path>``
            (arrays ``x_train, y_train, x_test, y_test``; HW or HWC uint8 images) or
            ``folder:<path>`` (``<path>/{train,test}/<class>/<image>``).
        root: data root (else ``$ASYMLOSS_DATA``, else ``~/.cache/asymloss``); see the module
            docstring for the layout. Ignored by ``digits``, ``npz:`` and ``folder:``.
        download: fetch the original files (checksums verified) when neither they nor the
            offline copy are in the root.
        progress: show a progress bar while downloading.

    Returns:
        ImageDataset; ``note`` is non-empty for degraded copies (CIFAR-10 JPEG) and must be
        reported with any result.

    >>> ds = load("digits")
    >>> tuple(ds.x_train.shape), ds.num_classes
    ((1438, 1, 8, 8), 10)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a dataset name (str); got {name!r} ({type(name).__name__}).")
    prefix, sep, rest = name.partition(":")
    if sep and prefix.lower() in _PREFIXED:
        if not rest:
            raise ValueError(f"name {name!r} needs a path after the colon, e.g. '{prefix.lower()}:data/my_set'.")
        return _PREFIXED[prefix.lower()](rest)
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False; got {download!r}.")
    if name.lower() == "digits":
        return _load_digits()
    if name.lower() not in DATASETS and name.lower() not in _ALIASES:
        raise unknown_name_error("dataset", name, list_datasets())
    return _load_builtin(_spec(name), data_root(root), download, progress)
