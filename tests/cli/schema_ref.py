"""Independent reading of schemas/*.json with h5py: the oracle of the mutation tests.

`violations(path)` checks a paro-dump, paro-pattern or paro-stats file against the layout schema its
root attributes name, in the vocabulary of schemas/README.md, and returns the violations found (an
empty list: the file is valid). It shares no code with paro's checker (lib/core/paro/schema_check.cpp)
and reads through h5py, so a file paro accepts while this finds a violation is invalid input
accepted, and the other way round a rule one of them gets wrong.
Usage as a command: schema_ref.py SCHEMA_DIR FILE... (prints the violations, exit 1 if any)."""
import json
import os
import re
import sys

import h5py
import numpy as np

MAX_STRING_BYTES = 16 * 1024  # docs/security.md: longer strings are refused
FORMATS = {("paro-dump", 1): "paro-dump-v1.json", ("paro-stats", 1): "paro-stats-v1.json",
           ("paro-pattern", 1): "paro-pattern-v1.json", ("paro-pattern", 2): "paro-pattern-v2.json"}


class Expr:
    """+ - * and ceiling '/', parentheses, integers and symbols; None when a symbol is unbound."""

    def __init__(self, text, symbols):
        self.tokens = re.findall(r"\d+|[A-Za-z_][A-Za-z_0-9]*|[-+*/()]", text)
        self.symbols, self.at = symbols, 0

    def value(self):
        v = self.sum()
        return v if self.at == len(self.tokens) else None

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def sum(self):
        v = self.product()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.at]
            self.at += 1
            r = self.product()
            v = None if v is None or r is None else v + r if op == "+" else v - r
        return v

    def product(self):
        v = self.atom()
        while self.peek() in ("*", "/"):
            op = self.tokens[self.at]
            self.at += 1
            r = self.atom()
            if v is None or r is None or (op == "/" and r <= 0):
                v = None
            else:
                v = v * r if op == "*" else -(-v // r)
        return v

    def atom(self):
        t = self.peek()
        self.at += 1
        if t == "(":
            v = self.sum()
            self.at += 1
            return v
        if t is not None and t.isdigit():
            return int(t)
        return self.symbols.get(t)


def plain_string(tid):
    """Whether a string type is C's one-byte character string apart from size, character set and
    padding (a corrupted file can change the character type underneath)."""
    ref = h5py.h5t.C_S1.copy()
    ref.set_size(h5py.h5t.VARIABLE if tid.is_variable_str() else tid.get_size())
    ref.set_cset(tid.get_cset())
    ref.set_strpad(tid.get_strpad())
    return ref == tid


def type_class(dtype, tid):
    if isinstance(tid, h5py.h5t.TypeStringID):
        return "string" if plain_string(tid) else "other"
    if isinstance(tid, (h5py.h5t.TypeIntegerID, h5py.h5t.TypeFloatID)):
        # HDF5's rule for atomic types: the value's bits lie inside the element
        if tid.get_precision() == 0 or tid.get_offset() + tid.get_precision() > 8 * tid.get_size():
            return "other"
    return {"i": "integer", "u": "integer", "f": "float"}.get(dtype.kind, "other")


def as_text(value, vlen):
    """A string value as paro reads it: fixed-length strings end at their first NUL, variable-length
    ones may hold none."""
    b = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    if not vlen:
        b = b.split(b"\0", 1)[0]
    elif b"\0" in b:
        raise ValueError("holds a NUL byte")
    if len(b) > MAX_STRING_BYTES:
        raise ValueError(f"is a string of {len(b)} bytes")
    return b.decode("utf-8", errors="surrogateescape")


class Checker:
    def __init__(self, f, schema):
        self.f, self.schema, self.sym, self.out = f, schema, {}, []

    def violation(self, where, what):
        self.out.append(f"{where}: {what}")

    def bind(self, name, value, where):
        if name not in self.sym:
            self.sym[name] = value
        elif self.sym[name] != value:
            self.violation(where, f"{name} = {value} disagrees with {self.sym[name]}")

    def run(self):
        self.attributes(self.f, "/", self.schema.get("attributes", {}), "")
        for name, expr in self.schema.get("let", {}).items():
            v = Expr(expr, self.sym).value()
            if v is not None:
                self.bind(name, v, f"derived {name}")
        for obj in self.schema.get("objects", []):
            if "each" in obj:
                parent = self.f.get(obj["each"])
                if isinstance(parent, h5py.Group):
                    for member in parent:
                        self.one(obj, obj["path"].replace("{l}", member), member)
            else:
                self.one(obj, obj["path"], "")
        return self.out

    def values_ok(self, where, spec, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        if spec.get("finite") and not np.all(np.isfinite(values)):
            return self.violation(where, "holds NaN or Inf")
        with np.errstate(invalid="ignore"):
            if "minimum" in spec and np.any(values < spec["minimum"]):
                return self.violation(where, "below the minimum")
            if "exclusive_minimum" in spec and not np.all(values > spec["exclusive_minimum"]):
                return self.violation(where, "not above the exclusive minimum")
            if "maximum" in spec and np.any(values > spec["maximum"]):
                return self.violation(where, "above the maximum")
        enum = spec.get("enum")
        if enum and isinstance(enum[0], (int, float)) and not np.all(np.isin(values, enum)):
            self.violation(where, f"value not one of {enum}")

    def attributes(self, obj, obj_path, specs, layer):
        for name, spec in specs.items():
            where = ("" if obj_path == "/" else obj_path + " ") + "attribute " + name
            if name not in obj.attrs:
                if spec.get("required"):
                    self.violation(where, "missing")
                elif "default" in spec and "bind" in spec:
                    self.bind(spec["bind"][0], spec["default"], where)
                continue
            try:
                aid = obj.attrs.get_id(name)
                kind = type_class(aid.dtype, aid.get_type())
                raw = obj.attrs[name]
            except (OSError, KeyError, TypeError, ValueError) as e:
                self.violation(where, f"cannot be read ({e})")
                continue
            want = spec.get("type", "string")
            shape = spec.get("shape")
            values = np.asarray(raw, dtype=object if kind == "string" else None).ravel()
            if want == "string":
                if kind != "string":
                    self.violation(where, f"is {kind}, expected a string")
                    continue
                vlen = h5py.check_string_dtype(aid.dtype) is not None and h5py.check_string_dtype(aid.dtype).length is None
                try:
                    texts = [as_text(v, vlen) for v in values]
                except ValueError as e:
                    self.violation(where, str(e))
                    continue
                if not shape and len(texts) != 1:
                    self.violation(where, "must be a single string")
                    continue
                if shape and isinstance(shape[0], int) and len(texts) != shape[0]:
                    self.violation(where, f"holds {len(texts)} strings, expected {shape[0]}")
                for t in texts:
                    if "enum" in spec and t not in spec["enum"]:
                        self.violation(where, f"{t!r} is not one of {spec['enum']}")
                    if spec.get("json") and t:  # empty: none
                        try:  # JSON text is UTF-8 (RFC 8259)
                            json.loads(t.encode("utf-8", "surrogateescape").decode("utf-8"))
                        except ValueError:
                            self.violation(where, "is not valid JSON")
                if spec.get("unique") and len(set(texts)) != len(texts):
                    self.violation(where, "has repeated entries")
                continue
            if kind != "integer" and not (want == "float" and kind == "float"):
                self.violation(where, f"is {kind}, expected {want}")
                continue
            if shape is not None and (not shape or isinstance(shape[0], int)) and len(values) != (shape or [1])[0]:
                self.violation(where, f"holds {len(values)} values")
                continue
            self.values_ok(where, spec, values)
            for sym, v in zip(spec.get("bind", []), values):
                self.bind(sym.replace("{l}", layer), int(v), where)

    def one(self, obj, path, layer):
        kind = obj.get("kind", "dataset")
        node = None
        if path in self.f:  # the link; the object behind it may still be broken
            try:
                node = self.f[path]
            except (KeyError, OSError, ValueError) as e:
                return self.violation(path, f"cannot be opened ({e})")
        if node is None:
            required = obj.get("required", False)
            if "required_unless" in obj:
                required = obj["required_unless"].replace("{l}", layer) not in self.f
            if "required_with" in obj:
                required = obj["required_with"].replace("{l}", layer) in self.f
            if required:
                self.violation(path, "missing")
            return
        beside = [p.replace("{l}", layer) for p in obj.get("forbidden_with", [])]
        if any(p in self.f for p in beside):
            self.violation(path, "is not allowed beside " + next(p for p in beside if p in self.f))
        if kind == "group":
            if not isinstance(node, h5py.Group):
                return self.violation(path, "is not a group")
            self.attributes(node, path, obj.get("attributes", {}), layer)
            if obj.get("members") == "decimal":
                names = list(node)
                if len(names) < obj.get("min_members", 0):
                    self.violation(path, "holds no members")
                for n in names:
                    if not re.fullmatch(r"0|[1-9][0-9]{0,8}", n) or int(n) >= len(names):
                        self.violation(f"{path}/{n}", "unexpected member")
                if "member_count" in obj:
                    self.bind(obj["member_count"], len(names), path)
            return
        if not isinstance(node, h5py.Dataset):
            return self.violation(path, "is not a dataset")
        kind = type_class(node.dtype, node.id.get_type())
        if obj.get("type") and kind not in obj["type"]:
            return self.violation(path, f"is {kind}, expected {obj['type']}")
        if "bytes" in obj and node.dtype.itemsize not in obj["bytes"]:
            self.violation(path, f"has {node.dtype.itemsize}-byte elements")
        before = len(self.out)
        shape = obj.get("shape")
        if shape is not None:
            if len(shape) != len(node.shape):
                self.violation(path, f"has {len(node.shape)} dimensions, expected {len(shape)}")
            else:
                for i, (want, got) in enumerate(zip(shape, node.shape)):
                    if isinstance(want, int):
                        if want != got:
                            self.violation(path, f"dimension {i} is {got}, expected {want}")
                        continue
                    e = want.replace("{l}", layer)
                    if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", e):
                        self.bind(e, got, path)
                    else:
                        v = Expr(e, self.sym).value()
                        if v is not None and v != got:
                            self.violation(path, f"dimension {i} is {got}, expected {e} = {v}")
        if len(self.out) != before:
            return
        if node.id.get_storage_size() == 0 and node.shape and 0 not in node.shape:
            return self.violation(path, "holds no data (never written)")
        if node.size:
            try:  # every value must be readable, checked or not
                data = node[()]
            except (OSError, ValueError, TypeError) as e:
                return self.violation(path, f"cannot be read ({e})")
            if any(k in obj for k in ("finite", "minimum", "maximum", "enum")):
                self.values_ok(path, obj, data)
            if len(self.out) == before and obj.get("row_sum"):
                sums = np.asarray(data, dtype=np.float64).sum(-1)
                if np.any(~(np.abs(sums - 1) <= 0.25)):
                    self.violation(path, "a row does not sum to 1")
            if len(self.out) == before and obj.get("nonzero_per_box") and data.ndim >= 3:
                flat = np.asarray(data).reshape(data.shape[0] * data.shape[1], -1)
                if np.any(np.all(flat == 0, axis=1)):
                    self.violation(path, "a block is all zeros")


def pattern_rules(f):
    """The pattern reader's rules beyond the schema (docs/formats.md, "Consistency")."""
    out = []
    b = np.asarray(f["slots/boundaries"][()], dtype=np.float64)
    if b.size < 2 or b[0] != 0 or b[-1] != 1 or np.any(~(np.diff(b) > 0)):
        out.append("/slots/boundaries: must run from 0 to 1, strictly increasing")
    opts = as_text(f.attrs["options"], h5py.check_string_dtype(f.attrs.get_id("options").dtype).length is None)
    if opts:
        depth, deepest, instr, esc = 0, 0, False, False
        for ch in opts:
            if instr:
                esc, instr = (not esc and ch == "\\"), (instr if esc or ch != '"' else False)
                continue
            if ch == '"': instr = True
            elif ch in "[{": depth += 1; deepest = max(deepest, depth)
            elif ch in "]}": depth -= 1
        if deepest > 16 or not isinstance(json.loads(opts), dict):
            out.append("attribute options: not a JSON object of depth at most 16")
    nb = int(np.asarray(f.attrs["tiles_per_side"]).ravel()[0])
    for l in f["layers"]:
        g = f["layers"][l]
        if f["layers"].get(l, getlink=True).__class__ is not h5py.HardLink:
            out.append(f"/layers/{l}: is a link")
            continue
        if "metrics" not in g["scores"].attrs or len(g["scores"].attrs["metrics"]) != g["scores"].shape[2]:
            out.append(f"/layers/{l}/scores: columns do not match its metrics")
        m, d = g["masks"][()], np.asarray(g["density"][()], dtype=np.float64)
        for t in range(m.shape[0]):
            for h in range(m.shape[1]):
                kept = int(np.unpackbits(m[t, h], bitorder="little")[:nb * nb].sum())
                if int(np.floor(d[t, h] * nb * nb + 0.5)) != kept:
                    out.append(f"/layers/{l}/density: slot {t} head {h} disagrees with its mask")
    return out


def violations(path, schema_dir):
    """The file's violations (empty: valid); an unreadable file or an unknown format is one."""
    try:
        with h5py.File(path, "r") as f:
            try:
                fmt = as_text(f.attrs["paro_format"], h5py.check_string_dtype(f.attrs.get_id("paro_format").dtype).length is None)
                version = int(np.asarray(f.attrs["paro_version"]).ravel()[0])
            except (KeyError, ValueError, TypeError, OSError, IndexError, AttributeError) as e:
                return [f"root: no readable paro_format / paro_version ({e})"]
            name = FORMATS.get((fmt, version))
            if name is None:
                return [f"root: unknown format {fmt!r} version {version}"]
            with open(os.path.join(schema_dir, name)) as s:
                schema = json.load(s)
            out = Checker(f, schema).run()
            if not out and fmt == "paro-pattern":
                out = pattern_rules(f)
            return out
    except Exception as e:  # h5py raises many types on a broken file: each is a finding, not a crash
        return [f"h5py cannot read it: {type(e).__name__}: {str(e)[:200]}"]


if __name__ == "__main__":
    bad = 0
    for p in sys.argv[2:]:
        v = violations(p, sys.argv[1])
        bad += bool(v)
        print(f"{p}: {len(v)} violation(s)" + "".join(f"\n  {x}" for x in v))
    sys.exit(1 if bad else 0)
