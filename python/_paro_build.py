"""A minimal PEP 517 build backend for the pure-Python paro package.

pip builds packages in an isolated environment into which it installs the build requirements from
an index; a backend with no requirements, in the source tree, builds with no network at all. The
wheel holds the paro/ package and, when PARO_BUNDLE_LIBS names built libparo_runtime.so /
libparo_stats.so files (colon-separated), those libraries in paro/lib/ (the first place the
package looks for them, docs/pytorch.md).
"""
import base64
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

HERE = Path(__file__).resolve().parent


def _project():
    if tomllib:
        return tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    # Enough of pyproject.toml for this file's own [project] table: name, version, description.
    out = {}
    for line in (HERE / "pyproject.toml").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("name", "version", "description", "requires-python"):
            out[key.strip()] = value.split("#")[0].strip().strip('"')
    out["dependencies"] = ["numpy", "h5py"]
    return out


def _files():
    """(path in the wheel, bytes) of every file the wheel carries."""
    for path in sorted((HERE / "paro").rglob("*.py")):
        yield path.relative_to(HERE).as_posix(), path.read_bytes()
    for lib in filter(None, os.environ.get("PARO_BUNDLE_LIBS", "").split(":")):
        yield "paro/lib/" + Path(lib).name, Path(lib).read_bytes()


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    tag = "py3-none-any" if not os.environ.get("PARO_BUNDLE_LIBS") else "py3-none-linux_x86_64"
    dist = f"{p['name']}-{p['version']}"
    info = f"{dist}.dist-info"
    metadata = [f"Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
                f"Summary: {p['description']}", f"Requires-Python: {p['requires-python']}"]
    metadata += [f"Requires-Dist: {d}" for d in p["dependencies"]]
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: paro _paro_build\nRoot-Is-Purelib: true\nTag: {tag}\n"
    files = list(_files()) + [(f"{info}/METADATA", ("\n".join(metadata) + "\n").encode()),
                              (f"{info}/WHEEL", wheel_meta.encode())]
    name = f"{dist}-{tag}.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as whl:
        record = []
        for path, data in files:
            whl.writestr(path, data)
            record.append(_record_line(path, data))
        record.append(f"{info}/RECORD,,")
        whl.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    dist = f"{p['name']}-{p['version']}"
    name = f"{dist}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as tar:
        for path in ["pyproject.toml", "_paro_build.py"] + [f for f, _ in _files() if f.startswith("paro/")]:
            data = (HERE / path).read_bytes()
            ti = tarfile.TarInfo(f"{dist}/{path}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return name
