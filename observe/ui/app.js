"use strict";
// The operator's page: polls /api/cluster once a second and draws it.
// No libraries, nothing fetched from outside this process.

const $ = (id) => document.getElementById(id);

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function drawChart(svg, values) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const nums = values.filter((v) => v !== null);
  const max = Math.max(1, ...nums);
  const w = 600, h = 120, n = values.length;
  let points = [];
  const lines = [];
  values.forEach((v, i) => {
    if (v === null) { if (points.length) lines.push(points); points = []; return; }
    const x = n > 1 ? (i / (n - 1)) * w : w;
    points.push(x.toFixed(1) + "," + (h - (v / max) * (h - 4)).toFixed(1));
  });
  if (points.length) lines.push(points);
  for (const p of lines) {
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", p.join(" "));
    svg.appendChild(pl);
  }
  return max;
}

function render(v) {
  $("self").textContent = v.kind + " " + v.self;
  $("leader").textContent = v.leader || "none";
  $("leader").className = "big" + (v.leader ? "" : " bad");
  $("term").textContent = v.term;
  $("alarms").textContent = v.alarms;
  $("alarms").className = "big" + (v.alarms > 0 ? " bad" : "");

  const body = $("members").tBodies[0];
  body.replaceChildren();
  for (const m of v.members || []) {
    const tr = document.createElement("tr");
    tr.dataset.id = m.id;
    tr.dataset.role = m.role;
    if (m.role === "leader") tr.className = "leader";
    if (m.role === "unreachable") tr.className = "unreachable";
    cell(tr, m.id);
    cell(tr, m.role);
    for (const k of ["term", "commit", "applied", "lag", "last"]) cell(tr, m.role === "unreachable" ? "–" : m[k]);
    cell(tr, m.addr || "");
    if (m.role === "unreachable") cell(tr, "–");
    else cell(tr, m.disk_alarm ? "ALARM" : "ok", m.disk_alarm ? "bad" : "ok");
    body.appendChild(tr);
  }

  const shards = v.shards || [];
  $("shards").hidden = shards.length === 0;
  const sb = $("shard-table").tBodies[0];
  sb.replaceChildren();
  for (const sh of shards) {
    const tr = document.createElement("tr");
    tr.dataset.id = sh.id;
    tr.dataset.leader = sh.leader || "";
    if (!sh.leader) tr.className = "unreachable";
    cell(tr, sh.id);
    cell(tr, sh.customers);
    cell(tr, sh.leader || "none", sh.leader ? "" : "bad");
    cell(tr, sh.epoch);
    cell(tr, (sh.replicas || []).map((r) =>
      r.id + (r.voter ? "" : " (non-voter)") + " " + r.role +
      (r.role === "unreachable" ? "" : " " + r.applied + (r.lag ? " lag " + r.lag : ""))).join(", "));
    cell(tr, sh.max_lag, sh.max_lag > 1000 ? "bad" : "");
    sb.appendChild(tr);
  }

  const orders = v.series.orders_per_second || [];
  const p99 = v.series.p99_ms || [];
  $("rate").textContent = orders.length ? Math.round(orders[orders.length - 1]) : "–";
  $("orders-caption").textContent = v.orders_source;
  $("orders-max").textContent = "max " + Math.round(drawChart($("orders-chart"), orders)) + "/s";
  $("p99-max").textContent = "max " + drawChart($("p99-chart"), p99).toFixed(1) + " ms";

  if (v.balancer) {
    $("balancer").hidden = false;
    const b = v.balancer;
    $("hit-rate").textContent = (b.hit_rate * 100).toFixed(1) + "%";
    $("hits").textContent = b.cache_hits;
    $("misses").textContent = b.cache_misses;
    const bb = $("backends").tBodies[0];
    bb.replaceChildren();
    for (const be of b.backends || []) {
      const tr = document.createElement("tr");
      cell(tr, be.id || "?");
      cell(tr, be.addr);
      cell(tr, be.up ? "up" : "down", be.up ? "ok" : "bad");
      cell(tr, be.leader ? "leader" : "");
      bb.appendChild(tr);
    }
  }

  const ev = $("events");
  ev.replaceChildren();
  for (const e of (v.events || []).slice().reverse()) {
    const li = document.createElement("li");
    const t = new Date(e.at).toLocaleTimeString();
    li.append(t + " term " + e.term + ": ");
    const s = document.createElement("strong");
    s.textContent = e.leader || "no leader";
    li.appendChild(s);
    ev.appendChild(li);
  }
  $("updated").textContent = "updated " + new Date(v.at).toLocaleTimeString();
  $("updated").className = "muted";
}

async function poll() {
  try {
    const r = await fetch("/api/cluster", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()));
    render(await r.json());
  } catch (e) {
    // Not an error of the page: the process may be restarting.
    $("updated").textContent = "cannot reach this process: " + e.message;
    $("updated").className = "bad";
  }
  setTimeout(poll, 1000);
}

poll();
