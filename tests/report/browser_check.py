#!/usr/bin/python3
"""Renders a `paro report` directory in headless Chromium and checks it the way a person would see it.

usage: browser_check.py REPORT_DIR INSPECT_JSON [--chromium /usr/bin/chromium] [--screenshot OUT.png]
                        [--expect-heads-detail N] [--min-images N]

Checks:
  1. the page (as written) logs nothing to the console: no uncaught error, no console.error;
  2. in a copy of the page with a probe script, after load: every <img> loaded (naturalWidth > 0),
     no error event fired, the "All heads" table sorts when its header is clicked, and hovering the
     order map shows head 0:0's order;
  3. every image file is a PNG that is not blank (pixel standard deviation > 0);
  4. the numbers in the rendered DOM match `paro inspect PATTERN --json`: grid, text tokens, tile size,
     overall density, and each head's order and per-slot density;
  5. a full-page screenshot is taken and is not blank;
  6. with --hostile TEXT (strings of the files set to markup that would run script: see
     report_browser.sh): no script of theirs ran (window.__pwned unset) and TEXT shows as text;
  7. layout and scales as rendered: each head's panels (tile mass maps, a mask per slot) fill rows of
     equal panels, all on one row up to six; the recall scales start at 0.9 or lower and below the
     lowest recall, end at 1; the density scale spans 0 to at least the largest density; the
     low-recall warning shows exactly when a mask's recall is below --warn-recall (default 0.9).
Exit status 0 when all pass, 1 otherwise (each failure printed), 77 when Chromium is missing.
"""
import argparse
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--hide-scrollbars", "--mute-audio"]

PROBE = r"""<script>
window.__paroErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__paroErrors.push(t && t.tagName ? ('failed to load ' + t.tagName + ' ' + (t.src || t.href)) : String(e.message));
}, true);
(function () { var ce = console.error; console.error = function () {
  window.__paroErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0); })
                .map(function (i) { return i.getAttribute('src'); });
  var sorted = null;
  var tbl = document.getElementById('heads-table');
  if (tbl) {
    var th = Array.prototype.filter.call(tbl.tHead.rows[0].cells, function (c) { return /recall per slot/.test(c.textContent); })[0];
    th.click();
    var idx = Array.prototype.indexOf.call(tbl.tHead.rows[0].cells, th);
    var v = Array.prototype.map.call(tbl.tBodies[0].rows, function (r) { return parseFloat(r.cells[idx].getAttribute('data-v')); });
    sorted = v.every(function (x, i) { return i === 0 || v[i - 1] <= x; });
    th.click();
    var w = Array.prototype.map.call(tbl.tBodies[0].rows, function (r) { return parseFloat(r.cells[idx].getAttribute('data-v')); });
    sorted = sorted && w.every(function (x, i) { return i === 0 || w[i - 1] >= x; });
    th.click();  // back to ascending; the DOM is read below in any order
    var oth = Array.prototype.filter.call(tbl.tHead.rows[0].cells, function (c) { return c.textContent.trim() === 'order'; })[0];
    oth.click();
    var oi = Array.prototype.indexOf.call(tbl.tHead.rows[0].cells, oth);
    var names = Array.prototype.map.call(tbl.tBodies[0].rows, function (r) { return r.cells[oi].textContent.trim(); });
    sorted = sorted && names.every(function (x, i) { return i === 0 || names[i - 1] <= x; });
  }
  var tip = null, hm = document.querySelector('img.hm');
  if (hm) {
    var r = hm.getBoundingClientRect();
    hm.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 1, clientY: r.top + 1, bubbles: true}));
    tip = document.getElementById('tip').textContent;
  }
  // Panel rows of each head: distinct tops of its figures; colour scales: end values and label.
  var panels = Array.prototype.map.call(document.querySelectorAll('.figs.panels'), function (d) {
    var tops = Array.prototype.map.call(d.children, function (f) { return Math.round(f.getBoundingClientRect().top); });
    return {n: d.children.length, rows: tops.filter(function (t, i) { return tops.indexOf(t) === i; }).length,
            cols: parseInt(getComputedStyle(d).getPropertyValue('--cols'), 10)};
  });
  var scales = Array.prototype.map.call(document.querySelectorAll('.cb'), function (c) {
    var s = c.querySelectorAll('span');
    return [s[0].textContent, s[1].textContent, s[2].textContent];
  });
  var low = document.getElementById('low-recall');
  var pre = document.createElement('pre');
  pre.id = 'paro-probe';
  pre.textContent = JSON.stringify({images: imgs.length, bad: bad, errors: window.__paroErrors, sorted: sorted, tip: tip,
                                    panels: panels, scales: scales, low_recall: low ? low.textContent : null,
                                    pwned: window.__pwned === undefined ? null : String(window.__pwned)});
  document.body.appendChild(pre);
});
</script>"""


class Dom(html.parser.HTMLParser):
    """Collects the text of elements by id, the all-heads table rows and <img> sources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.by_id, self.rows, self.imgs = {}, [], []
        self.shown = []  # text outside <script> and <style>
        self._stack = []  # (tag, id, cls, textbuf)
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
            return
        if tag == "tr" and "data-l" in a:
            self._row = {"l": int(a["data-l"]), "h": int(a["data-h"])}
        self._stack.append([tag, a.get("id"), a.get("class", ""), []])

    def handle_endtag(self, tag):
        while self._stack:
            t, id_, cls, buf = self._stack.pop()
            text = "".join(buf)
            if self._stack:
                self._stack[-1][3].append(text)
            if id_:
                self.by_id[id_] = text
            if self._row is not None and t == "td":
                if "order" in cls.split():
                    self._row["order"] = text.strip()
                if "density" in cls.split():
                    self._row["density"] = [float(x) for x in text.split()]
            if t == "tr" and self._row is not None:
                self.rows.append(self._row)
                self._row = None
            if t == tag:
                break

    def handle_data(self, data):
        if self._stack:
            self._stack[-1][3].append(data)
        if not self._stack or self._stack[-1][0] not in ("script", "style"):
            self.shown.append(data)


def run_chromium(chromium, args, timeout=120):
    with tempfile.TemporaryDirectory(prefix="paro_chromium_") as ud:
        cmd = [chromium] + FLAGS + ["--user-data-dir=" + ud] + args
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr


def png_stats(path):
    from PIL import Image  # python3-pil, a dependency of python3-matplotlib
    import numpy as np
    with Image.open(path) as im:
        fmt = im.format
        a = np.asarray(im.convert("RGB"), dtype=np.float64)
    return fmt, a.shape[1], a.shape[0], float(a.std())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report_dir")
    ap.add_argument("inspect_json")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--screenshot")
    ap.add_argument("--window", default="1400,3000")
    ap.add_argument("--min-images", type=int, default=1)
    ap.add_argument("--hostile", help="text that must show literally on the page, never run")
    ap.add_argument("--warn-recall", type=float, default=0.9, help="the report's --warn-recall")
    args = ap.parse_args()

    if not (os.path.isfile(args.chromium) and os.access(args.chromium, os.X_OK)) and not shutil.which(args.chromium):
        print(f"SKIP: {args.chromium} not found (scripts/setup.sh installs Debian's chromium)")
        return 77

    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            print("FAIL:", what)

    rep = os.path.abspath(args.report_dir)
    index = os.path.join(rep, "index.html")
    with open(args.inspect_json) as f:
        ins = json.load(f)

    # 1 + 5: the page as written; console must stay silent. Screenshot at the same time.
    shot = args.screenshot or os.path.join(tempfile.gettempdir(), f"paro_report_{os.getpid()}.png")
    rc, _, err = run_chromium(args.chromium, ["--enable-logging=stderr", "--v=0", "--window-size=" + args.window,
                                              "--virtual-time-budget=10000", "--screenshot=" + shot,
                                              "file://" + index])
    check(rc == 0, f"chromium --screenshot exited {rc}: {err[-2000:]}")
    console = [l for l in err.splitlines() if ":CONSOLE" in l]
    check(not console, "console output from the page: " + " | ".join(console))
    if os.path.exists(shot):
        fmt, w, h, sd = png_stats(shot)
        check(fmt == "PNG" and sd > 5, f"screenshot {shot} looks blank (std {sd:.2f})")
        print(f"screenshot: {shot} ({w}x{h})")
    else:
        check(False, "no screenshot was written")

    # 2: a probed copy, DOM dumped after load.
    with open(index, encoding="utf-8") as f:
        page = f.read()
    probe_path = os.path.join(rep, "probe-check.html")
    with open(probe_path, "w", encoding="utf-8") as f:
        f.write(page.replace("<head>", "<head>" + PROBE, 1))
    try:
        rc, dom_text, err = run_chromium(args.chromium, ["--dump-dom", "--virtual-time-budget=10000",
                                                         "--window-size=" + args.window, "file://" + probe_path])
    finally:
        os.remove(probe_path)
    check(rc == 0, f"chromium --dump-dom exited {rc}")
    dom = Dom()
    dom.feed(dom_text)
    probe = json.loads(dom.by_id.get("paro-probe", "null") or "null")
    check(probe is not None, "the probe script did not run (no #paro-probe in the DOM)")
    if probe:
        check(probe["images"] >= args.min_images, f"{probe['images']} images on the page, expected >= {args.min_images}")
        check(not probe["bad"], f"images that did not load: {probe['bad']}")
        check(not probe["errors"], f"errors while loading: {probe['errors']}")
        check(probe.get("pwned") is None, f"a string from the files ran as script (window.__pwned = {probe.get('pwned')})")
        if args.hostile:
            check(args.hostile in "".join(dom.shown), f"the hostile string {args.hostile!r} is not shown as text")
        check(probe["sorted"] is True, "clicking the 'recall per slot' or 'order' header did not sort the table")
        want = f"layer 0  head 0\norder {ins['layers'][0]['heads'][0]['order']}"
        check((probe.get("tip") or "").startswith(want),
              f"hovering the order map shows {probe.get('tip')!r}, expected it to start with {want!r}")
        recalls = [r for layer in ins["layers"] for head in layer["heads"] for r in head["recall"]]
        densities = [d for layer in ins["layers"] for head in layer["heads"] for d in head["density"]]
        for p in probe["panels"]:
            want_rows = -(-p["n"] // p["cols"])
            check(p["cols"] <= 6 and p["rows"] == want_rows and (p["n"] > 6 or p["cols"] == p["n"]),
                  f"a head's {p['n']} panels lie on {p['rows']} rows of {p['cols']} columns")
        for lo, hi, label in probe["scales"]:
            if label == "attention mass kept":  # the per-slot recall the JSON holds
                check(float(lo) <= min(0.9, min(recalls)) + 1e-9 and hi == "1", f"recall scale {lo}..{hi}")
            if label == "min sample recall":  # per sample: not in the JSON
                check(float(lo) <= 0.9 and hi == "1", f"min sample recall scale {lo}..{hi}")
            if label == "fraction of tiles kept":
                check(float(lo) == 0 and float(hi) >= max(densities) - 1e-9, f"density scale {lo}..{hi}")
        check(any(s[2] == "attention mass kept" for s in probe["scales"]), "no recall colour scale")
        low = any(r < args.warn_recall for r in recalls)
        check((probe["low_recall"] is not None) == low,
              f"low-recall warning {'missing' if low else 'shown'} (lowest recall {min(recalls):.4f})")
        n_fail = len(failures)
        print(f"browser: {probe['images']} images on the page" +
              (", all loaded, no errors, table sorts, hover read-out works" if n_fail == 0 else ""))

    # 3: every image file is a real, non-blank PNG.
    srcs = sorted(set(dom.imgs))
    for src in srcs:
        check(not re.match(r"^[a-z]+:", src), f"image {src} is not a relative path")
        path = os.path.join(rep, src)
        if not os.path.isfile(path):
            check(False, f"image {src} missing")
            continue
        fmt, w, h, sd = png_stats(path)
        check(fmt == "PNG", f"{src} is {fmt}, not PNG")
        check(sd > 0, f"{src} is blank (one color)")
    print(f"images: {len(srcs)} files, all PNG, none blank" if not failures else f"images: {len(srcs)} files")

    # 4: numbers against paro inspect --json.
    g = [int(x) for x in re.findall(r"\d+", dom.by_id.get("sum-grid", ""))]
    check(g == ins["grid"], f"grid shown {g}, inspect says {ins['grid']}")
    check(int(dom.by_id.get("sum-text-tokens", "-1")) == ins["text_tokens"], "text tokens differ")
    b = [int(x) for x in re.findall(r"\d+", dom.by_id.get("sum-block", ""))]
    check(b == ins["block_size"], f"tile size shown {b}, inspect says {ins['block_size']}")
    dens = [d for layer in ins["layers"] for head in layer["heads"] for d in head["density"]]
    overall = sum(dens) / len(dens)
    shown = float(dom.by_id.get("sum-density", "nan"))
    check(abs(shown - overall) <= 5e-5, f"overall density shown {shown}, inspect gives {overall:.6f}")
    rows = {(r["l"], r["h"]): r for r in dom.rows}
    n_heads = sum(len(layer["heads"]) for layer in ins["layers"])
    check(len(rows) == n_heads, f"{len(rows)} head rows shown, inspect lists {n_heads}")
    mism = 0
    for l, layer in enumerate(ins["layers"]):
        for h, head in enumerate(layer["heads"]):
            r = rows.get((l, h))
            if r is None:
                check(False, f"head {l}:{h} missing from the table")
                continue
            if r.get("order") != head["order"]:
                mism += 1
                check(False, f"head {l}:{h}: order shown {r.get('order')}, inspect says {head['order']}")
            d = r.get("density", [])
            if len(d) != len(head["density"]) or any(abs(x - y) > 5e-5 for x, y in zip(d, head["density"])):
                mism += 1
                check(False, f"head {l}:{h}: density shown {d}, inspect says {head['density']}")
    print(f"numbers: grid, text tokens, tile size, overall density and {n_heads} heads' order and density match "
          f"paro inspect --json" if mism == 0 else f"numbers: {mism} mismatches")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("browser check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
