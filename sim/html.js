/* sim/html.js: draws the ladder of `tlsim report --html` (embedded in the
 * page by sim/html.c). The run's rows are the JSON in #data; everything is
 * drawn as SVG into #ladder. Trace text is only ever set with textContent
 * or as an attribute value, never parsed as markup. Loads nothing.
 *
 * #status gets data-arrows, data-packets, data-lost, data-ops, data-tls
 * (what is drawn) and data-errors (script errors caught here), which
 * tests/cli/report.sh reads from headless Chromium's --dump-dom. */
"use strict";
var tlsimErrors = [];

function tlsimShowErrors() {
  var st = document.getElementById("status");
  if (st === null) {
    return;
  }
  st.setAttribute("data-errors", String(tlsimErrors.length));
  if (tlsimErrors.length > 0) {
    st.className = "fail";
    st.textContent = "script errors: " + tlsimErrors.join(" | ");
  }
}

window.onerror = function (msg, src, line) {
  tlsimErrors.push(String(msg) + (line ? " (line " + line + ")" : ""));
  tlsimShowErrors();
  return false;
};
window.addEventListener("unhandledrejection", function (e) {
  tlsimErrors.push("unhandled rejection: " + String(e.reason));
  tlsimShowErrors();
});
(function () {
  var original = console.error;
  console.error = function () {
    tlsimErrors.push(Array.prototype.join.call(arguments, " "));
    tlsimShowErrors();
    return original.apply(console, arguments);
  };
})();

(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var svg = document.getElementById("ladder");
  var NS = svg.namespaceURI;
  var wrap = document.getElementById("wrap");
  var tip = document.getElementById("tip");
  var status = document.getElementById("status");
  var items = data.items;
  var lanes = data.lanes;
  var N = lanes.length;

  var GUT = 90;   /* time gutter */
  var Q = 330;    /* an operation-queue lane */
  var M = 560;    /* between two lifelines */
  var TOP = 46;   /* lane names */
  var COLORS = ["#00838f", "#8e24aa", "#1565c0", "#b26a00", "#2e7d32"];

  var zoom = 1;
  var filter = "";
  var show = { op: true, tls: true, state: false, log: true };

  /* Horizontal layout: the first endpoint's queue lane left of its
   * lifeline, every other endpoint's right of it. */
  var lifeX = [];
  var opqX = [];
  var x = GUT;
  for (var k = 0; k < N; k++) {
    if (k === 0) {
      opqX[k] = x;
      lifeX[k] = x + Q + 12;
      x = lifeX[k];
    } else {
      x += M;
      lifeX[k] = x;
      opqX[k] = x + 12;
      if (k < N - 1) {
        x = opqX[k] + Q;
      }
    }
  }
  var WIDTH = N === 0 ? GUT + M : N === 1 ? lifeX[0] + M : opqX[N - 1] + Q + 12;

  function ms(ns) {
    if (ns === null || ns < 0) {
      return "-";
    }
    var us = Math.floor((ns + 500) / 1000);
    var frac = String(us % 1000);
    while (frac.length < 3) {
      frac = "0" + frac;
    }
    return Math.floor(us / 1000) + "." + frac;
  }

  function v(x) {
    return x === null || x === undefined ? "NULL" : String(x);
  }

  /* The tooltip: every field of the row. */
  function describe(it) {
    var L = [];
    if (it.k === "p") {
      L.push("packet #" + it.id + " " + v(it.ptype) + ", " + v(it.src) + " \u2192 " + v(it.dst) +
             " on " + v(it.link) + " (" + v(it.proto) + ")");
      L.push("sent " + ms(it.t) + " ms" + (it.dl >= 0 ? ", arrives " + ms(it.dl) + " ms (after " +
             ms(it.dl - it.t) + " ms)" : ", never arrives"));
      L.push("size " + it.len + " bytes, fate " + v(it.fate) + (it.reason !== null ? " (" + it.reason + ")" : "") +
             (it.dup >= 0 ? ", copy of #" + it.dup : ""));
      if (it.frames !== null) {
        L.push("contents " + it.frames);
      }
      if (it.hs !== null) {
        L.push("sender's handshake state " + it.hs);
      }
      if (it.sub.length > 0) {
        L.push("packets in it:");
        it.sub.forEach(function (s) {
          L.push("  #" + s.id + " " + v(s.ptype) + (s.pn >= 0 ? " pn=" + s.pn : "") +
                 (s.space !== null ? " (space " + s.space + ")" : "") + " " + s.len + "B: " + v(s.frames));
          if (s.hs !== null && s.hs !== it.hs) {
            L.push("    sender's handshake state " + s.hs);
          }
        });
        if (it.more > 0) {
          L.push("  (" + it.more + " more)");
        }
      }
    } else if (it.k === "o") {
      L.push("operation " + it.id + " " + v(it.type) + " on " + v(it.node) + " at " + ms(it.t) + " ms");
      L.push("cause " + v(it.ck) + (it.ci >= 0 ? " " + it.ci : ""));
      it.steps.forEach(function (s) {
        L.push("  " + s[0] + ", queue depth after: " + s[1]);
      });
      if (it.detail !== null) {
        L.push("detail " + it.detail);
      }
    } else if (it.k === "t") {
      L.push("tls " + v(it.ev) + " on " + v(it.node) + " at " + ms(it.t) + " ms");
      L.push("level " + v(it.level) + ", direction " + v(it.dir) + ", code " +
             (it.code >= 0 ? it.code + " (0x" + it.code.toString(16) + ")" : "NULL"));
      if (it.detail !== null) {
        L.push("detail " + it.detail);
      }
    } else if (it.k === "g") {
      L.push("log of " + v(it.node) + " at " + ms(it.t) + " ms");
      L.push(v(it.raw));
    } else {
      L.push("expectation " + (it.ok ? "held" : "FAILED") + " at " + ms(it.t) + " ms, " + v(it.loc));
      L.push(v(it.msg) + (it.detail !== null ? ": " + it.detail : ""));
    }
    return L.join("\n");
  }

  items.forEach(function (it, i) {
    it.i = i;
    it.search = (it.text + " " + v(it.node) + " " + describe(it)).toLowerCase();
  });
  /* The operation that received each packet, to end its arrow there. */
  var recvOf = {};
  items.forEach(function (it, i) {
    if (it.k === "o" && it.ck === "packet" && it.ci >= 0) {
      var key = it.ci + "@" + it.node;
      if (!(key in recvOf)) {
        recvOf[key] = i;
      }
    }
  });

  function visible(it) {
    if (it.k === "o" && !show.op) {
      return false;
    }
    if (it.k === "t") {
      var state = it.ev === "state" || it.ev === "keylog";
      if (state ? !show.state : !show.tls) {
        return false;
      }
    }
    if (it.k === "g" && !show.log) {
      return false;
    }
    return filter === "" || it.search.indexOf(filter) >= 0;
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var a in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, a)) {
        e.setAttribute(a, String(attrs[a]));
      }
    }
    if (parent) {
      parent.appendChild(e);
    }
    return e;
  }

  function txt(parent, x, y, s, anchor, cls) {
    var t = el("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    if (cls) {
      t.setAttribute("class", cls);
    }
    t.textContent = s;
    return t;
  }

  /* Extra space for virtual time passing between two rows. */
  function gap(dtNs) {
    return Math.min(48, 4 * Math.log2(1 + dtNs / 1e6)) * zoom;
  }

  function render() {
    var frac = wrap.scrollHeight > 0 ? wrap.scrollTop / wrap.scrollHeight : 0;
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
    var rowH = 18 * zoom;
    var texts = rowH >= 9;
    var vis = items.filter(visible);
    var ys = [];
    var yOf = {};
    var y = TOP;
    var lastT = null;
    vis.forEach(function (it, j) {
      if (lastT !== null && it.t > lastT) {
        y += gap(it.t - lastT);
      }
      y += rowH;
      ys[j] = y;
      yOf[it.i] = y;
      lastT = it.t;
    });
    var bottom = y + 2 * rowH;
    var height = bottom + 20;
    /* The y of the first row at or after |t|. */
    function yAt(t) {
      var lo = 0;
      var hi = vis.length;
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (vis[mid].t < t) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      return lo < vis.length ? ys[lo] : bottom;
    }

    var back = el("g", { "class": "back" }, svg);
    var rows = el("g", { "class": "rows" }, svg);
    var arrows = el("g", { "class": "arrows" }, svg);
    for (var k = 0; k < N; k++) {
      el("rect", { "class": "opq", x: opqX[k], y: TOP - 8, width: Q, height: bottom - TOP + 8 }, back);
      el("line", { "class": "life", x1: lifeX[k], y1: TOP - 8, x2: lifeX[k], y2: bottom }, back);
      txt(back, lifeX[k], 18, lanes[k], "middle", "lane-name").style.fill = COLORS[k % 5];
      txt(back, opqX[k] + Q / 2, 34, lanes[k] + " operation queue", "middle", "time");
    }
    txt(back, GUT - 8, 34, "ms", "end", "time");
    var lastShown = null;
    var counts = { arrows: 0, packets: 0, lost: 0, ops: 0, tls: 0 };

    vis.forEach(function (it, j) {
      var yy = ys[j];
      var tm = ms(it.t);
      if (texts && tm !== lastShown) {
        txt(back, GUT - 8, yy - 4, tm, "end", "time");
        lastShown = tm;
      }
      if (it.k === "p") {
        drawPacket(arrows, it, yy);
        counts.arrows++;
        counts.packets += 1 + it.sub.length;
        if (it.fate === "lost") {
          counts.lost++;
        }
      } else if (it.k === "o" && it.l >= 0) {
        drawOp(rows, it, yy);
        counts.ops++;
      } else if (it.k === "t" && it.l >= 0) {
        drawTls(rows, it, yy);
        counts.tls++;
      } else {
        drawNote(rows, it, yy);
      }
    });

    function drawPacket(parent, it, yy) {
      var lost = it.fate === "lost";
      var cls = "arrow" + (lost ? " lost" : "") + (it.fate === "duplicated" ? " dup" : "") +
                (it.fate === "corrupted" ? " corrupt" : "");
      var g = el("g", { "class": cls, "data-i": it.i }, parent);
      var s = it.s;
      var d = it.d;
      var y1 = yy - 5;
      if (s < 0 || d < 0 || s === d) {
        txt(g, N > 0 ? lifeX[0] + 8 : GUT + 8, y1, v(it.src) + " \u2192 " + v(it.dst) + ": " + it.text);
        return;
      }
      var color = COLORS[s % 5];
      var x1 = lifeX[s];
      var x2 = lifeX[d];
      var y2;
      if (lost) {
        x2 = (x1 + x2) / 2;
        y2 = y1 + rowH * 0.8;
      } else {
        var r = recvOf[it.id + "@" + it.dst];
        y2 = r !== undefined && r in yOf ? yOf[r] - 5 : yAt(it.dl) - 5;
        if (y2 < y1) {
          y2 = y1;
        }
      }
      el("line", { "class": "hit", x1: x1, y1: y1, x2: x2, y2: y2 }, g);
      el("line", { x1: x1, y1: y1, x2: x2, y2: y2 }, g).style.stroke = color;
      if (lost) {
        el("path", { "class": "xmark", d: "M" + (x2 - 5) + " " + (y2 - 5) + "l10 10M" + (x2 - 5) + " " +
                     (y2 + 5) + "l10 -10" }, g);
      } else {
        var dx = x2 - x1;
        var dy = y2 - y1;
        var len = Math.sqrt(dx * dx + dy * dy) || 1;
        var ux = dx / len;
        var uy = dy / len;
        var bx = x2 - 9 * ux;
        var by = y2 - 9 * uy;
        var head = el("path", { d: "M" + x2 + " " + y2 + "L" + (bx - 4 * uy) + " " + (by + 4 * ux) + "L" +
                                (bx + 4 * uy) + " " + (by - 4 * ux) + "Z" }, g);
        head.style.fill = color;
        head.style.stroke = color;
      }
      if (texts) {
        var right = x2 > x1;
        txt(g, x1 + (right ? 8 : -8), y1 - 3, it.text + (it.dl >= 0 ? " \u2192" + ms(it.dl) : ""),
            right ? "start" : "end").style.fill = lost ? "#c62828" : color;
      }
    }

    function drawOp(parent, it, yy) {
      var front = false;
      var drop = false;
      it.steps.forEach(function (s) {
        front = front || s[0] === "enqueue_front";
        drop = drop || s[0] === "drop";
      });
      var g = el("g", { "class": "row op" + (front ? " front" : "") + (drop ? " drop" : ""), "data-i": it.i },
                 parent);
      var x0 = opqX[it.l];
      var h = Math.max(3, rowH - 4);
      el("rect", { "class": "bg", x: x0 + 2, y: yy - h - 1, width: Q - 4, height: h, rx: 2 }, g);
      var depth = it.steps.length > 0 ? it.steps[it.steps.length - 1][1] : 0;
      el("rect", { "class": "depth", x: x0 + Q - 4 - Math.min(40, 4 * depth), y: yy - 4,
                   width: Math.min(40, 4 * depth), height: 2 }, g);
      if (texts) {
        txt(g, x0 + 6, yy - 5, it.text);
      }
    }

    function side(l, g, yy, s) {
      var last = N >= 2 && l === N - 1;
      if (texts) {
        txt(g, lifeX[l] + (last ? -9 : 9), yy - 5, s, last ? "end" : "start");
      }
    }

    function drawTls(parent, it, yy) {
      var ev = it.ev || "";
      var bad = /^(alert|close_sent|close_received|handshake_failed|reset|deadline|transport_params)/.test(ev) ||
                ((ev === "eof" || ev === "verify_done") && it.code > 0);
      var cls = "row tls" + (bad ? " bad" : "") + (/^handshake_(done|confirmed)$/.test(ev) ? " done" : "") +
                (ev === "state" || ev === "keylog" ? " state" : "");
      var g = el("g", { "class": cls, "data-i": it.i }, parent);
      el("circle", { cx: lifeX[it.l], cy: yy - 9, r: 3.5 }, g);
      side(it.l, g, yy, it.text);
    }

    function drawNote(parent, it, yy) {
      var cls = it.k === "c" ? "row check" : it.l >= 0 ? "row log" : "row note";
      var g = el("g", { "class": cls, "data-i": it.i }, parent);
      if (it.l >= 0) {
        el("circle", { cx: lifeX[it.l], cy: yy - 9, r: 2.5, fill: "#1565c0" }, g);
        side(it.l, g, yy, "\u00bb " + it.text);
      } else if (texts) {
        txt(g, N > 0 ? lifeX[0] + 9 : GUT + 8, yy - 5, (it.node !== null ? it.node + ": " : "") + it.text);
      }
    }

    svg.setAttribute("width", WIDTH);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + height);
    wrap.scrollTop = frac * wrap.scrollHeight;

    var st = status;
    st.setAttribute("data-arrows", String(counts.arrows));
    st.setAttribute("data-packets", String(counts.packets));
    st.setAttribute("data-lost", String(counts.lost));
    st.setAttribute("data-ops", String(counts.ops));
    st.setAttribute("data-tls", String(counts.tls));
    st.setAttribute("data-errors", String(tlsimErrors.length));
    if (tlsimErrors.length === 0) {
      st.className = "";
      st.textContent = "showing " + vis.length + " of " + items.length + " rows: " + counts.arrows +
                       " arrows (" + counts.packets + " packets, " + counts.lost + " lost), " + counts.ops +
                       " operation rows, " + counts.tls + " tls rows; zoom " + Math.round(zoom * 100) + "%";
    }
  }

  /* Hover details. */
  function hideTip() {
    tip.hidden = true;
  }
  svg.addEventListener("mousemove", function (e) {
    var g = e.target.closest ? e.target.closest("[data-i]") : null;
    if (g === null) {
      hideTip();
      return;
    }
    tip.textContent = describe(items[Number(g.getAttribute("data-i"))]);
    tip.hidden = false;
    var tx = e.clientX + 14;
    var ty = e.clientY + 14;
    if (tx + tip.offsetWidth > window.innerWidth) {
      tx = Math.max(0, e.clientX - tip.offsetWidth - 14);
    }
    if (ty + tip.offsetHeight > window.innerHeight) {
      ty = Math.max(0, e.clientY - tip.offsetHeight - 14);
    }
    tip.style.left = tx + "px";
    tip.style.top = ty + "px";
  });
  svg.addEventListener("mouseleave", hideTip);

  /* Zoom: buttons, + and - keys, Ctrl+wheel. */
  function setZoom(z) {
    zoom = Math.max(0.25, Math.min(8, z));
    render();
  }
  document.getElementById("zin").addEventListener("click", function () { setZoom(zoom * 1.25); });
  document.getElementById("zout").addEventListener("click", function () { setZoom(zoom / 1.25); });
  document.getElementById("zreset").addEventListener("click", function () { setZoom(1); });
  wrap.addEventListener("wheel", function (e) {
    if (e.ctrlKey) {
      e.preventDefault();
      setZoom(zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1));
    }
  }, { passive: false });
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "INPUT") {
      return;
    }
    if (e.key === "+" || e.key === "=") {
      setZoom(zoom * 1.25);
    } else if (e.key === "-") {
      setZoom(zoom / 1.25);
    }
  });

  /* The filter box and the row kinds. */
  var timer = null;
  document.getElementById("filter").addEventListener("input", function (e) {
    var value = e.target.value.toLowerCase();
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(function () {
      filter = value;
      render();
    }, 120);
  });
  ["op", "tls", "state", "log"].forEach(function (kind) {
    var box = document.getElementById("show-" + kind);
    box.checked = show[kind];
    box.addEventListener("change", function () {
      show[kind] = box.checked;
      render();
    });
  });

  /* A link can carry a view: #filter=TEXT&zoom=N. */
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var eq = kv.indexOf("=");
    var value;
    try {
      value = decodeURIComponent(kv.slice(eq + 1));
    } catch (e) {
      return;
    }
    if (eq > 0 && kv.slice(0, eq) === "filter") {
      filter = value.toLowerCase();
      document.getElementById("filter").value = value;
    } else if (eq > 0 && kv.slice(0, eq) === "zoom" && Number(value) > 0) {
      zoom = Math.max(0.25, Math.min(8, Number(value)));
    }
  });
  render();
})();
