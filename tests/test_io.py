"""Atomic writers and provenance sidecars (tmsnet.io.atomic, tmsnet.io.provenance)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.exceptions import InputFileNotFoundError, OutputNotWritableError
from tmsnet.io import atomic
from tmsnet.io.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_nifti,
    atomic_write_text,
    atomic_write_tsv,
    ensure_output_dir,
    json_compatible,
)
from tmsnet.io.provenance import (
    file_sha256,
    make_sidecar,
    sidecar_path_for,
    software_versions,
)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- ensure_output_dir


def test_ensure_output_dir_creates_parents(tmp_path):
    out = ensure_output_dir(tmp_path / "a" / "b" / "c")
    assert out.is_dir() and out.is_absolute()
    assert _listing(out) == []  # the write probe is removed


def test_ensure_output_dir_under_a_regular_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputNotWritableError, match="output folder") as info:
        ensure_output_dir(blocker / "out")
    assert str(blocker) in str(info.value)
    with pytest.raises(OutputNotWritableError, match="a file with that name exists"):
        ensure_output_dir(blocker)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders anyway")
def test_ensure_output_dir_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputNotWritableError, match="not writable"):
            ensure_output_dir(ro)
    finally:
        ro.chmod(stat.S_IRWXU)


# -------------------------------------------------------------------- atomic writers


def test_text_and_bytes_roundtrip_leave_no_temp(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo\nworld\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01\x02")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\nworld\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\x02"
    assert _listing(tmp_path) == ["a.txt", "b.bin"]


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_json_converts_numpy_paths_and_nan(tmp_path):
    obj = {
        "int": np.int64(3),
        "float": np.float32(0.5),
        "bool": np.bool_(True),
        "array": np.arange(3),
        "nan": float("nan"),
        "inf": np.float64(np.inf),
        "nested": [np.nan, {"p": Path("/x/y.nii.gz")}],
        "tuple": (1, 2),
    }
    path = atomic_write_json(tmp_path / "x.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert text.startswith('{\n  "int": 3')  # indent 2
    assert text.endswith("}\n")
    loaded = json.loads(text)
    assert loaded == {
        "int": 3, "float": 0.5, "bool": True, "array": [0, 1, 2], "nan": None, "inf": None,
        "nested": [None, {"p": "/x/y.nii.gz"}], "tuple": [1, 2],
    }


def test_json_is_deterministic(tmp_path):
    obj = {"b": [1.5, np.float64(2.25)], "a": {"z": 1, "y": None}}
    first = atomic_write_json(tmp_path / "1.json", obj).read_bytes()
    second = atomic_write_json(tmp_path / "2.json", obj).read_bytes()
    assert first == second


def test_tsv_uses_tabs_and_na(tmp_path):
    df = pd.DataFrame({"name": ["a", "b"], "x": [1.5, np.nan], "n": [1, 2]})
    path = atomic_write_tsv(tmp_path / "t.tsv", df)
    assert path.read_text() == "name\tx\tn\na\t1.5\t1\nb\tn/a\t2\n"
    back = pd.read_csv(path, sep="\t", na_values=["n/a"])
    assert np.isnan(back.loc[1, "x"])


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
def test_nifti_roundtrip_and_format(tmp_path, ext):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    path = atomic_write_nifti(tmp_path / f"map{ext}", img)
    head = path.read_bytes()[:2]
    assert (head == b"\x1f\x8b") == (ext == ".nii.gz")
    back = nib.load(path)
    np.testing.assert_array_equal(back.get_fdata(), data)
    np.testing.assert_allclose(back.affine, img.affine)
    assert img.get_filename() is None  # the caller's image is not repointed
    assert _listing(tmp_path) == [f"map{ext}"]


def test_nifti_gz_is_bit_identical(tmp_path):
    img = nib.Nifti1Image(np.ones((3, 3, 3), np.float32), np.eye(4))
    a = atomic_write_nifti(tmp_path / "a.nii.gz", img).read_bytes()
    b = atomic_write_nifti(tmp_path / "b.nii.gz", img).read_bytes()
    assert a == b
    assert gzip.decompress(a)  # valid gzip


def test_nifti_requires_nifti_suffix(tmp_path):
    img = nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4))
    with pytest.raises(ValueError, match=".nii.gz"):
        atomic_write_nifti(tmp_path / "map.img", img)


class _FailingFrame(pd.DataFrame):
    """A table whose serialisation fails half-way."""

    def to_csv(self, fh, **kwargs):  # noqa: D102
        fh.write("partial\tcontent\n")
        raise RuntimeError("serializer failed midway")


def test_failed_tsv_write_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "t.tsv"
    atomic_write_tsv(path, pd.DataFrame({"a": [1]}))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="midway"):
        atomic_write_tsv(path, _FailingFrame({"a": [2]}))
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["t.tsv"]


def test_failed_json_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"old": 1})

    def broken_dump(obj, fh, **kwargs):
        fh.write('{"new": ')
        raise TypeError("not serialisable")

    monkeypatch.setattr(atomic.json, "dump", broken_dump)
    with pytest.raises(TypeError):
        atomic_write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert _listing(tmp_path) == ["x.json"]


class _ExplodingArray:
    """Array-like whose data cannot be read (a proxy failing mid-save)."""

    shape = (4, 4, 4)
    ndim = 3
    dtype = np.dtype(np.float32)

    def __array__(self, dtype=None, copy=None):
        raise OSError(5, "Input/output error")


def test_failed_nifti_write_removes_temp_and_maps_oserror(tmp_path):
    path = tmp_path / "map.nii.gz"
    good = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    atomic_write_nifti(path, good)
    before = path.read_bytes()
    bad = nib.Nifti1Image(_ExplodingArray(), np.eye(4))
    with pytest.raises(OutputNotWritableError):
        atomic_write_nifti(path, bad)
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["map.nii.gz"]


def test_write_into_missing_folder_is_output_error(tmp_path):
    with pytest.raises(OutputNotWritableError, match="Check that the folder"):
        atomic_write_text(tmp_path / "missing" / "a.txt", "x")


def test_json_compatible_plain_types():
    assert json_compatible({1: {2, 1}}) == {"1": [1, 2]}
    assert json_compatible(np.float32(np.nan)) is None
    assert json_compatible(object.__new__(type("Thing", (), {"__str__": lambda s: "t"}))) == "t"


# ------------------------------------------------------------------------ provenance


def test_file_sha256_matches_hashlib_and_is_cached(tmp_path):
    path = tmp_path / "f.bin"
    content = os.urandom(3 * (1 << 20) + 17)  # several 1 MiB chunks
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    # Same size and mtime -> cached digest (the file is not read again).
    st = path.stat()
    path.write_bytes(b"\x00" * len(content))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    # A changed mtime invalidates the cache.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert file_sha256(path) == hashlib.sha256(b"\x00" * len(content)).hexdigest()


def test_file_sha256_missing(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        file_sha256(tmp_path / "nope")


def test_software_versions(monkeypatch):
    versions = software_versions()
    for key in ("python", "tmsnet", "numpy", "scipy", "pandas", "nibabel", "nilearn",
                "scikit-learn", "matplotlib"):
        assert isinstance(versions[key], str) and versions[key]
    from tmsnet.io import provenance

    monkeypatch.setattr(provenance, "SOFTWARE_PACKAGES", ("surely-not-a-package-xyz",))
    assert software_versions()["surely-not-a-package-xyz"] == "not installed"


def test_make_sidecar(tmp_path):
    bold = tmp_path / "bold.nii.gz"
    bold.write_bytes(b"abc")
    sidecar = make_sidecar(
        description="A map.",
        parameters={"fwhm": np.float64(6.0), "band": (0.01, 0.1), "nan": np.nan},
        inputs={"bold": bold, "mask": None},
        space="MNI152NLin2009cAsym",
        extra={"Units": "r"},
    )
    assert list(sidecar)[:6] == ["Description", "GeneratedBy", "Space", "Parameters",
                                 "Sources", "SoftwareVersions"]
    assert sidecar["GeneratedBy"][0]["Name"] == "tmsnet"
    assert sidecar["Sources"]["bold"] == {
        "path": str(bold.absolute()), "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert sidecar["Sources"]["mask"] is None
    assert sidecar["Parameters"] == {"fwhm": 6.0, "band": [0.01, 0.1], "nan": None}
    assert sidecar["Units"] == "r"
    # No time stamps: identical calls give identical JSON.
    again = make_sidecar(description="A map.",
                         parameters={"fwhm": 6.0, "band": [0.01, 0.1], "nan": None},
                         inputs={"bold": bold, "mask": None}, space="MNI152NLin2009cAsym",
                         extra={"Units": "r"})
    assert json.dumps(sidecar) == json.dumps(again)
    json.dumps(sidecar, allow_nan=False)


def test_make_sidecar_errors(tmp_path):
    with pytest.raises(InputFileNotFoundError):
        make_sidecar(description="d", parameters={}, inputs={"bold": tmp_path / "x"},
                     space=None)
    with pytest.raises(ValueError, match="reserved"):
        make_sidecar(description="d", parameters={}, inputs={}, space=None,
                     extra={"Space": "x"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.nii.gz", "x.json"),
        ("x.nii", "x.json"),
        ("x.tsv", "x.json"),
        ("sub-01_space-MNI_markers.tsv", "sub-01_space-MNI_markers.json"),
        ("sub-01_report.html", "sub-01_report.json"),
        ("a.b.unknown", "a.b.json"),
    ],
)
def test_sidecar_path_for(tmp_path, name, expected):
    assert sidecar_path_for(tmp_path / name) == tmp_path / expected


def test_sidecar_path_for_json_is_error():
    with pytest.raises(ValueError, match="JSON"):
        sidecar_path_for("x.json")
