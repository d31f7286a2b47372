// natrium live dashboard. Polls ./dashboard/data once a second and draws
// with plain canvas. Everything that comes from clients (names, subjects,
// addresses) is put into the page with textContent only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let sortKey = "msgs_per_s";
let sortDesc = true;
let lastConns = [];
let selectedCid = null;
let polls = 0;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function human(n) {
  if (n === null || n === undefined) return "–";
  const units = ["", "k", "M", "G", "T"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + units[i];
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
}

function dur(ns) {
  if (ns === null || ns === undefined) return "–";
  if (ns < 1e3) return ns + " ns";
  if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 1 : 0) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms";
  return (ns / 1e9).toFixed(1) + " s";
}

function ago(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return (d ? d + "d" : "") + (d || h ? h + "h" : "") + (d || h || m ? m + "m" : "") + s + "s";
}

function fit(canvas) {
  const r = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * r) || canvas.height !== Math.round(h * r)) {
    canvas.width = Math.round(w * r);
    canvas.height = Math.round(h * r);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(r, 0, 0, r, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return [ctx, w, h];
}

// Line chart of `lines` ([{values, color, max?}]) over the last 300 s.
function lineChart(canvas, lines, fmt) {
  const [ctx, w, h] = fit(canvas);
  const pad = 4, left = 46;
  ctx.strokeStyle = css("--line");
  ctx.fillStyle = css("--mute");
  ctx.font = "11px system-ui, sans-serif";
  const shared = Math.max(1, ...lines.filter((l) => !l.own).flatMap((l) => l.values));
  for (const frac of [0, 0.5, 1]) {
    const y = pad + (h - 2 * pad) * (1 - frac);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(fmt(shared * frac), 2, y + 4);
  }
  for (const l of lines) {
    const max = l.own ? Math.max(1, ...l.values) : shared;
    const n = l.values.length;
    ctx.strokeStyle = l.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    l.values.forEach((v, i) => {
      const x = left + (w - left) * (300 - n + i) / 299;
      const y = pad + (h - 2 * pad) * (1 - v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

// Latency by percentile, both axes logarithmic (as the project's benchmarks
// plot it): x = 1/(1-p) from 50% to 99.99%, y = latency.
function latencyChart(canvas, buckets) {
  const [ctx, w, h] = fit(canvas);
  const total = buckets.reduce((a, b) => a + b, 0);
  ctx.fillStyle = css("--mute");
  ctx.font = "11px system-ui, sans-serif";
  if (total === 0) { ctx.fillText("no samples yet", 50, h / 2); return; }
  const pts = [];
  for (const p of [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999]) {
    const rank = Math.max(1, Math.ceil(total * p));
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i];
      if (seen >= rank) { pts.push([p, Math.pow(2, i + 1)]); break; }
    }
  }
  const left = 50, pad = 14;
  const ymin = Math.log10(Math.min(...pts.map((q) => q[1])) / 2);
  const ymax = Math.log10(Math.max(...pts.map((q) => q[1])) * 2);
  const xOf = (p) => left + (w - left - 8) * Math.log10(1 / (1 - p)) / 4;
  const yOf = (v) => pad + (h - 2 * pad) * (1 - (Math.log10(v) - ymin) / (ymax - ymin));
  ctx.strokeStyle = css("--line");
  for (let d = Math.ceil(ymin); d <= ymax; d++) {
    const y = yOf(Math.pow(10, d));
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText(dur(Math.pow(10, d)), 2, y + 4);
  }
  for (const [p, label] of [[0.5, "50%"], [0.9, "90%"], [0.99, "99%"], [0.999, "99.9%"], [0.9999, "99.99%"]]) {
    ctx.fillText(label, Math.min(xOf(p) - 10, w - 40), h - 2);
  }
  ctx.strokeStyle = css("--a");
  ctx.lineWidth = 2;
  ctx.beginPath();
  pts.forEach(([p, v], i) => { if (i === 0) ctx.moveTo(xOf(p), yOf(v)); else ctx.lineTo(xOf(p), yOf(v)); });
  ctx.stroke();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(tbody, rows, build) {
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = document.createElement("tr");
    build(tr, r);
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

function drawConns() {
  const rows = lastConns.slice().sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const c = typeof x === "string" ? x.localeCompare(y) : x - y;
    return sortDesc ? -c : c;
  });
  fill($("conn-table").tBodies[0], rows, (tr, c) => {
    tr.className = "click";
    tr.dataset.cid = c.cid;
    cell(tr, c.cid);
    cell(tr, c.name);
    cell(tr, c.addr);
    cell(tr, human(c.msgs_per_s), "num");
    cell(tr, c.subscriptions, "num");
    cell(tr, bytes(c.pending_bytes), "num");
    cell(tr, dur(c.rtt_us * 1000), "num");
    tr.addEventListener("click", () => showSubs(c.cid, c.name));
  });
}

async function showSubs(cid, name) {
  selectedCid = cid;
  $("subs-panel").classList.remove("hidden");
  $("subs-of").textContent = "cid " + cid + (name ? " (" + name + ")" : "");
  const r = await fetch("./connz?cid=" + encodeURIComponent(cid) + "&subs=detail");
  const z = await r.json();
  const subs = (z.connections && z.connections[0] && z.connections[0].subscriptions_list_detail) || [];
  fill($("subs-table").tBodies[0], subs, (tr, s) => {
    cell(tr, s.subject);
    cell(tr, s.qgroup || "");
    cell(tr, s.sid);
    cell(tr, human(s.msgs), "num");
  });
}

function render(d) {
  const s = d.server;
  $("srv-name").textContent = s.server_name;
  $("srv-version").textContent = s.version;
  $("srv-uptime").textContent = ago(s.now_ms - s.start_ms);
  $("srv-config").textContent = s.config_file || "(none)";
  $("srv-reload").textContent = new Date(s.config_load_ms).toLocaleString();
  const last = d.series[d.series.length - 1] || {};
  $("in-msgs").textContent = human(last.in_msgs || 0);
  $("out-msgs").textContent = human(last.out_msgs || 0);
  $("in-bytes").textContent = bytes(last.in_bytes || 0);
  $("out-bytes").textContent = bytes(last.out_bytes || 0);
  $("conns").textContent = last.connections || 0;
  $("subs").textContent = last.subscriptions || 0;
  $("slow").textContent = last.slow_consumers || 0;
  const col = (k) => d.series.map((p) => p[k]);
  lineChart($("chart-msgs"), [{ values: col("in_msgs"), color: css("--a") }, { values: col("out_msgs"), color: css("--b") }], human);
  lineChart($("chart-bytes"), [{ values: col("in_bytes"), color: css("--a") }, { values: col("out_bytes"), color: css("--b") }], bytes);
  lineChart($("chart-conns"), [{ values: col("connections"), color: css("--a") }, { values: col("subscriptions"), color: css("--c"), own: true }], human);
  const l = d.latency;
  $("p50").textContent = dur(l.p50_ns);
  $("p99").textContent = dur(l.p99_ns);
  $("p999").textContent = dur(l.p999_ns);
  $("latency-what").textContent = l.what + "; 1 publish in " + l.sample_every + ", " + human(l.count) + " samples; power-of-two buckets (upper bounds)";
  latencyChart($("chart-latency"), l.buckets);
  lastConns = d.connections;
  drawConns();
  // Halved every second, a steady count is about twice the sampled rate.
  fill($("subject-table").tBodies[0], d.subjects, (tr, x) => {
    cell(tr, x.subject + (x.truncated ? "…" : ""));
    cell(tr, human((x.count * d.subjects_sample_every) / 2), "num");
  });
  $("subjects-what").textContent = "1 publish in " + d.subjects_sample_every + " sampled into a " + "space-saving sketch; rates are estimates";
  fill($("closed-table").tBodies[0], d.closed, (tr, c) => {
    cell(tr, new Date(c.stop).toLocaleTimeString());
    cell(tr, c.cid);
    cell(tr, c.name);
    cell(tr, c.reason, c.reason.startsWith("Slow Consumer") ? "slow" : "");
  });
  polls++;
  document.body.dataset.polls = polls;
  document.body.dataset.inMsgs = last.in_msgs || 0;
  document.body.dataset.points = d.series.length;
}

async function optional() {
  try {
    const leafz = await (await fetch("./leafz")).json();
    const leafs = leafz.leafs || [];
    $("leaf-section").classList.toggle("hidden", leafs.length === 0);
    fill($("leaf-table").tBodies[0], leafs, (tr, x) => {
      cell(tr, x.name || "");
      cell(tr, (x.ip || "") + ":" + (x.port || ""));
      cell(tr, x.account || "");
      cell(tr, human(x.in_msgs || 0), "num");
      cell(tr, human(x.out_msgs || 0), "num");
    });
    const accz = await (await fetch("./accountz")).json();
    // $G and the system account always exist: shown once others are configured.
    const configured = (accz.accounts || []).filter((a) => a !== "$G" && a !== accz.system_account);
    $("account-section").classList.toggle("hidden", configured.length === 0);
    if (configured.length > 0) {
      const statz = await (await fetch("./accstatz?unused=1")).json();
      fill($("account-table").tBodies[0], statz.account_statz || [], (tr, a) => {
        cell(tr, a.acc || "");
        cell(tr, human(a.conns || 0), "num");
        cell(tr, human(a.leafnodes || 0), "num");
        cell(tr, human(a.num_subscriptions || 0), "num");
        cell(tr, human((a.received || {}).msgs || 0), "num");
        cell(tr, human((a.sent || {}).msgs || 0), "num");
      });
    }
  } catch (e) {
    // Optional sections stay hidden.
  }
}

async function poll() {
  try {
    const r = await fetch("./dashboard/data", { cache: "no-store" });
    render(await r.json());
    $("status").textContent = "";
  } catch (e) {
    $("status").textContent = "· server unreachable";
  }
}

for (const th of document.querySelectorAll("#conn-table th")) {
  th.addEventListener("click", () => {
    const k = th.dataset.key;
    if (k === sortKey) sortDesc = !sortDesc; else { sortKey = k; sortDesc = k !== "name" && k !== "addr"; }
    for (const o of document.querySelectorAll("#conn-table th")) o.classList.toggle("sorted", o === th);
    drawConns();
  });
}

poll();
optional();
setInterval(poll, 1000);
setInterval(optional, 5000);
