"""paro.capi against the C headers, so the ctypes mirror cannot drift.

A C program generated from paro.capi.STRUCTS, compiled with the real headers, prints each struct's
size and each field's offset and size; enum constants and API versions likewise. Function
declarations are parsed from the headers: the same names, argument counts and argument kinds
(pointer, integer, floating point, struct by value). Then the built libraries load through the
package's search order with every signature declared.
Usage: python3 test_capi_mirror.py SOURCE_DIR BUILD_DIR   (exit 0: all agree)
"""
import ctypes as C
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

source, build = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(source / "python"))
os.environ["PARO_BUILD_DIR"] = str(build)
from paro import capi, load_runtime, load_stats  # noqa: E402

failures = []
headers = [source / "kernels/runtime/paro_runtime.h", source / "kernels/stats/paro_stats.h"]
ENUMS = {"PARO_OK": capi.OK, "PARO_ERROR_INVALID_ARGUMENT": capi.ERROR_INVALID_ARGUMENT,
         "PARO_ERROR_UNSUPPORTED": capi.ERROR_UNSUPPORTED, "PARO_ERROR_NO_GPU": capi.ERROR_NO_GPU,
         "PARO_ERROR_CUDA": capi.ERROR_CUDA, "PARO_ERROR_OUT_OF_MEMORY": capi.ERROR_OUT_OF_MEMORY,
         "PARO_ERROR_FILE": capi.ERROR_FILE, "PARO_FLOAT32": capi.FLOAT32, "PARO_FLOAT16": capi.FLOAT16,
         "PARO_BFLOAT16": capi.BFLOAT16, "PARO_PV_INT8": capi.PV_INT8, "PARO_PV_FP16": capi.PV_FP16,
         "PARO_PV_FP8_E4M3": capi.PV_FP8_E4M3, "PARO_STAGE_QUANTIZE": capi.STAGE_QUANTIZE,
         "PARO_STAGE_ATTENTION": capi.STAGE_ATTENTION, "PARO_STAGE_ALL": capi.STAGE_ALL,
         "PARO_RUNTIME_API_VERSION": capi.RUNTIME_API_VERSION, "PARO_STATS_API_VERSION": capi.STATS_API_VERSION}
ENUMS.update({f"PARO_ORDER_{name}": i for i, name in enumerate(capi.ORDER_NAMES)})

# 1. Layouts and constants, from the compiler.
lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "paro_runtime.h"', '#include "paro_stats.h"',
         "int main(void) {"]
for cname, cls in capi.STRUCTS.items():
    lines.append(f'  printf("{cname} . %zu %zu\\n", sizeof({cname}), (size_t)0);')
    for field, _ in cls._fields_:
        lines.append(f'  printf("{cname} {field} %zu %zu\\n", offsetof({cname}, {field}), '
                     f'sizeof((({cname}*)0)->{field}));')
for name in ENUMS:
    lines.append(f'  printf("const {name} %ld 0\\n", (long){name});')
lines.append("  return 0;\n}")
with tempfile.TemporaryDirectory() as tmp:
    src, exe = Path(tmp) / "layout.c", Path(tmp) / "layout"
    src.write_text("\n".join(lines))
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, str(src), "-o", str(exe)] + [f"-I{h.parent}" for h in headers], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
for line in out.splitlines():
    name, field, a, b = line.split()
    a, b = int(a), int(b)
    if name == "const":
        if ENUMS[field] != a:
            failures.append(f"{field}: C {a}, paro.capi {ENUMS[field]}")
        continue
    cls = capi.STRUCTS[name]
    if field == ".":
        if C.sizeof(cls) != a:
            failures.append(f"sizeof({name}): C {a}, ctypes {C.sizeof(cls)}")
        continue
    desc = getattr(cls, field)
    if (desc.offset, desc.size) != (a, b):
        failures.append(f"{name}.{field}: C offset {a} size {b}, ctypes offset {desc.offset} size {desc.size}")
for cname, cls in capi.STRUCTS.items():  # fields the mirror lacks
    body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (cname, cname),
                     "".join(h.read_text() for h in headers), re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    declared = re.findall(r"(\w+)(?:\[\d+\])?\s*[,;]", body)
    mirrored = [f for f, _ in cls._fields_]
    if declared != mirrored:
        failures.append(f"{cname}: header fields {declared}, mirror {mirrored}")

# 2. Function declarations.
def kind(c_type):
    c_type = c_type.strip()
    if "*" in c_type:
        return "pointer"
    if c_type in ("float", "double"):
        return "float"
    if c_type.startswith("paro_tensor") or c_type.startswith("paro_stats_buffers"):
        return "struct"
    return "integer"

def ctypes_kind(t):
    if t is None:
        return "void"
    if isinstance(t, type) and issubclass(t, C.Structure):
        return "struct"
    if t in (C.c_float, C.c_double):
        return "float"
    if t in (C.c_void_p, C.c_char_p) or (isinstance(t, type) and issubclass(t, C._Pointer)):
        return "pointer"
    return "integer"

text = re.sub(r"/\*.*?\*/", "", "".join(h.read_text() for h in headers), flags=re.S)
declared = {}
for ret, name, args in re.findall(r"PARO_API\s+([\w\s\*]+?)\s*\b(paro_\w+)\s*\(([^)]*)\)\s*;", text):
    params = [] if args.strip() in ("", "void") else [re.sub(r"\b\w+$", "", a.strip()) for a in args.split(",")]
    declared[name] = ("void" if ret.strip() == "void" else kind(ret), [kind(p) for p in params])
mirror = {**capi.RUNTIME_FUNCTIONS, **capi.STATS_FUNCTIONS}
for name in sorted(set(declared) | set(mirror)):
    if name not in mirror or name not in declared:
        failures.append(f"{name}: {'missing in paro.capi' if name not in mirror else 'not in the headers'}")
        continue
    restype, argtypes = mirror[name]
    got = (ctypes_kind(restype), [ctypes_kind(a) for a in argtypes])
    if got != declared[name]:
        failures.append(f"{name}: header {declared[name]}, mirror {got}")

# 3. The built libraries load with every signature (no GPU needed for these calls).
for load, which in ((load_runtime, "runtime"), (load_stats, "stats")):
    if not (build / f"libparo_{which}.so").is_file():
        print(f"libparo_{which}.so not built (no CUDA here): load check skipped")
        continue
    lib = load()
    if which == "runtime" and lib.paro_status_string(capi.ERROR_NO_GPU) in (None, b""):
        failures.append("paro_status_string returned nothing")

# 4. The runtime's Python side without a GPU (needs torch): errors before any C call.
try:
    import torch
except ImportError:
    torch = None
if torch is not None and not torch.cuda.is_available():
    import paro
    from paro import runtime

    def raises(error, words, fn):
        try:
            fn()
        except error as e:
            if words not in str(e):
                failures.append(f"{words!r} not in {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"expected {error.__name__} with {words!r}, got {type(e).__name__}: {e}")
        else:
            failures.append(f"expected {error.__name__} with {words!r}: no error")

    assert "kernel_name" in paro.__all__ and issubclass(paro.NoGpuError, RuntimeError)
    if (build / "libparo_runtime.so").is_file():
        # paro_device_check says PARO_ERROR_NO_GPU here: kernel_name() must say so, not name a kernel.
        count = C.c_int(0)
        if load_runtime().paro_device_check(C.byref(count)) == capi.ERROR_NO_GPU:
            raises(paro.NoGpuError, "paro_device_check", paro.kernel_name)
    raises(paro.NoGpuError, "needs a CUDA GPU", lambda: paro.Plan("unused.h5"))
    raises(paro.NoGpuError, "needs a CUDA GPU", lambda: paro.Plan("unused.h5", device=0))
    raises(paro.NoGpuError, "needs a CUDA GPU", lambda: paro.Plan.from_arrays((1, 8, 8), 0, [0], None))

    calls = []

    class Stub:  # a library recording every call: none may happen for a refused argument
        def __getattr__(self, name):
            return lambda *a: calls.append(name) or capi.OK

    plan = runtime.Plan.__new__(runtime.Plan)
    plan.lib, plan.pattern, plan.device, plan._workspaces = Stub(), None, torch.device("cpu"), {}
    plan.handle, plan.tokens, plan.layers, plan.slots, plan.heads = C.c_void_p(1), 256, 2, 1, 2
    plan.id = 10 ** 6
    runtime._PLANS[plan.id] = plan
    q = torch.randn(1, 2, 256, 64)
    for label, args, error, words in [
            ("short k", (q, q[:, :, :10], q), ValueError, "k has shape"),
            ("k of one head", (q, q[:, :1], q), ValueError, "k has shape"),
            ("v fp64", (q, q, q.double()), TypeError, "v has dtype"),
            ("int q", (q.long(), q.long(), q.long()), TypeError, "torch.float16"),
            ("CPU tensors", (q, q, q), ValueError, "CUDA")]:
        raises(error, words, lambda: paro.attention(*args, plan, 0, slot=0))
    raises(TypeError, "paro.Plan", lambda: paro.attention(q, q, q, "p.h5", 0, slot=0))
    raises(TypeError, "paro.Plan", lambda: paro.apply("x.h5", 50))
    raises(ValueError, "num_steps", lambda: paro.apply(plan, None))
    raises(ValueError, "needs a plan loaded from a pattern file", lambda: paro.apply(plan, 50))
    raises(ValueError, "scale must be", lambda: paro.attention(q, q, q, plan, 0, slot=0, scale=-1.0))
    raises(ValueError, "head dim 32", lambda: paro.attention(*(q[..., :32],) * 3, plan, 0, slot=0))
    if calls:
        failures.append(f"C calls reached with refused arguments: {calls}")
    plan.handle = None
    raises(ValueError, "closed", lambda: paro.attention(q, q, q, plan, 0, slot=0))
    raises(ValueError, "closed", lambda: paro.apply(plan, 50))
    del runtime._PLANS[plan.id]

print("\n".join(failures) if failures else
      f"paro.capi agrees with the headers: {len(capi.STRUCTS)} structs, {len(ENUMS)} constants, {len(mirror)} functions")
sys.exit(1 if failures else 0)
