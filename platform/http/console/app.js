// Fjord web console: a single page over the admin JSON API (docs/admin-api.md).
//
// No framework and no build step on purpose: the admin server embeds this
// file in the binary, so what is here is what runs. Each page is one render
// function that fetches once (one or two API calls, never one per
// partition), builds its HTML as a string and sets it in one go; with
// 1 000 partitions that is far cheaper than creating nodes one by one.
//
// Every figure carries a stable `data-testid`, and numbers also carry their
// raw value in `data-value` (the text is formatted for people), so the
// Playwright tests in tests/interop/test_console.py compare exact values.
"use strict";

const API = "/api/v1";

// ---------------------------------------------------------------- helpers

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
}

// A path segment in a hash link; group ids may contain any character.
function seg(v) {
  return encodeURIComponent(v);
}

function fmtInt(n) {
  return typeof n === "number" && Number.isFinite(n) ? n.toLocaleString("en-US") : "–";
}

function fmtRate(r) {
  if (typeof r !== "number" || !Number.isFinite(r)) return "–";
  return (r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1)) + "/s";
}

function fmtBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
}

function isoTime(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "–";
  try { return new Date(ms).toISOString(); } catch (_) { return String(ms); }
}

// A number cell: formatted text, exact value in data-value.
function num(testid, n, text) {
  const shown = text ?? fmtInt(n);
  return `<span data-testid="${esc(testid)}" data-value="${esc(n ?? "")}">${esc(shown)}</span>`;
}

function txt(testid, v) {
  return `<span data-testid="${esc(testid)}">${esc(v)}</span>`;
}

function list(a) {
  return Array.isArray(a) ? a.join(", ") : "";
}

// A pipeline's source or sink may be a string (a topic) or an object
// ({topic} or {connector}); show whichever it is.
function describeEndpoint(s) {
  if (s == null) return "–";
  if (typeof s === "string") return s;
  if (s.topic) return s.topic;
  if (s.connector) return "connector " + (s.connector.plugin ?? s.connector);
  if (s.name) return s.name;
  return JSON.stringify(s);
}

class ApiError extends Error {
  constructor(path, status, body) {
    super(`${path}: ${status} ${body && body.error ? body.error : ""}`.trim());
    this.status = status;
  }
}

// Every call says it is the console's: a 401 then carries no Basic
// challenge (the browser's own password dialog), and the console shows its
// login form instead (docs/security.md, "Console login").
const CONSOLE = { "X-Fjord-Console": "1" };

async function api(path) {
  const res = await fetch(API + path, { headers: { Accept: "application/json", ...CONSOLE } });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON: keep null */ }
  if (res.status === 401) showLogin(body && body.error);
  if (!res.ok) throw new ApiError(path, res.status, body);
  return body;
}

// The admin API refuses a change without a JSON content type (what a form
// on another site could send): see docs/security.md.
async function apiPost(path) {
  const res = await fetch(API + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...CONSOLE },
  });
  if (res.status === 401) showLogin();
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (_) { /* keep null */ }
    throw new ApiError(path, res.status, body);
  }
}

// ---------------------------------------------------------------- routing

const main = () => document.getElementById("main");

// Bumped on every navigation: a fetch that returns after the user left the
// page sees a stale generation and drops its result instead of drawing over
// the new page, and the old page's poll loop stops.
let generation = 0;

const routes = [
  [/^\/?$/, "overview", renderOverview],
  [/^\/topics\/?$/, "topics", renderTopics],
  [/^\/topics\/(.+)$/, "topics", renderTopic],
  [/^\/groups\/?$/, "groups", renderGroups],
  [/^\/groups\/(.+)$/, "groups", renderGroup],
  [/^\/pipelines\/?$/, "pipelines", renderPipelines],
  [/^\/pipelines\/(.+)$/, "pipelines", renderPipeline],
];

async function route() {
  const gen = ++generation;
  const path = location.hash.replace(/^#/, "") || "/";
  for (const [re, nav, render] of routes) {
    const m = path.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    const arg = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    // Measured around the whole route (fetch + HTML + layout of the first
    // render), exposed for the tests' page-speed budget.
    const t0 = performance.now();
    try {
      await render(arg, gen);
    } catch (e) {
      if (gen === generation) showError(e);
    }
    if (gen === generation) {
      window.__lastRenderMs = performance.now() - t0;
      window.__lastRoute = path;
      main().dataset.rendered = path;
    }
    return;
  }
  main().innerHTML = `<h1>Not found</h1><p>No page at <code>${esc(path)}</code>.</p>`;
}

function showError(e) {
  const notFound = e instanceof ApiError && e.status === 404;
  main().innerHTML = `<div class="error" data-testid="error">${
    notFound ? "Not found: " : "Could not load: "}${esc(e.message)}</div>`;
}

function setStatus(text, bad) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.classList.toggle("bad", !!bad);
}

// Calls `tick` every `ms` until the page changes; the next tick is scheduled
// after the previous one finished so slow answers never pile up.
function poll(gen, ms, tick) {
  const loop = async () => {
    if (gen !== generation) return;
    try {
      await tick();
      setStatus("live");
    } catch (e) {
      setStatus("API unreachable: " + e.message, true);
    }
    if (gen === generation) setTimeout(loop, ms);
  };
  setTimeout(loop, ms);
}

// Replaces one section of the page, if it is still shown.
function fill(gen, id, html) {
  if (gen !== generation) return;
  const el = document.getElementById(id);
  if (el) el.innerHTML = html;
}

// ---------------------------------------------------------------- overview

// Throughput history survives navigation (a module-level ring) so coming
// back to the overview does not restart the sparkline from nothing.
const throughput = { samples: [], last: null, max: 60 };

function sampleThroughput(topics) {
  // Sum of `records` (high watermark − log start) over user topics; its
  // change per second is the produce rate. Retention moving a log start
  // makes it drop, so negative deltas count as 0. `__` topics are left out
  // even when not flagged internal: the pipeline runtime writes a status
  // record every second, which would make an idle cluster look busy.
  const total = topics.filter((t) => !t.internal && !t.name.startsWith("__"))
    .reduce((s, t) => s + (t.records || 0), 0);
  const now = performance.now();
  if (throughput.last) {
    const dt = (now - throughput.last.t) / 1000;
    if (dt > 0.2) {
      const rate = Math.max(0, total - throughput.last.total) / dt;
      throughput.samples.push(rate);
      if (throughput.samples.length > throughput.max) throughput.samples.shift();
      throughput.last = { t: now, total };
    }
  } else {
    throughput.last = { t: now, total };
  }
}

function sparkline(samples) {
  const w = 300;
  const h = 48;
  if (samples.length < 2) {
    return `<svg class="spark" data-testid="throughput-sparkline" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">
      <text x="4" y="${h / 2}" class="muted-svg">collecting…</text></svg>`;
  }
  const max = Math.max(1, ...samples);
  const step = w / (throughput.max - 1);
  const x0 = w - (samples.length - 1) * step;
  const pts = samples.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 6)).toFixed(1)}`);
  return `<svg class="spark" data-testid="throughput-sparkline" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">
    <polyline points="${x0},${h - 1} ${pts.join(" ")} ${w},${h - 1}" class="spark-fill"/>
    <polyline points="${pts.join(" ")}" class="spark-line"/>
    <title>records/s over the last ${samples.length} s, max ${fmtRate(max)}</title></svg>`;
}

// Under-replicated = partitions whose ISR is shorter than their replica set;
// the topic list counts them per topic, so the overview needs no topic
// details.
function countUnderReplicated(topics) {
  return topics.reduce((s, t) => s + (t.under_replicated_partitions || 0), 0);
}

async function renderOverview(_, gen) {
  const load = async () => {
    const [cluster, topics, groups, pipelines] = await Promise.all([
      api("/cluster"), api("/topics"), api("/groups"), api("/pipelines"),
    ]);
    sampleThroughput(topics);
    const urp = countUnderReplicated(topics);
    return { cluster, topics, groups, pipelines, urp };
  };
  const draw = ({ cluster, topics, groups, pipelines, urp }) => {
    const user = topics.filter((t) => !t.internal);
    const partitions = topics.reduce((s, t) => s + (t.partitions || 0), 0);
    const rate = throughput.samples.length ? throughput.samples[throughput.samples.length - 1] : null;
    const brokers = (cluster.brokers || []).map((b) => `<tr data-testid="broker-${esc(b.node_id)}">
        <td>${num(`broker-${b.node_id}-id`, b.node_id, String(b.node_id))}${
          b.node_id === cluster.controller_id ? ' <span class="badge">controller</span>' : ""}</td>
        <td>${txt(`broker-${b.node_id}-host`, b.host)}</td>
        <td>${num(`broker-${b.node_id}-port`, b.port, String(b.port))}</td></tr>`).join("");
    fill(gen, "main", `
      <h1>Cluster <code>${txt("cluster-id", cluster.cluster_id)}</code></h1>
      <div class="cards">
        <div class="card"><div class="label">Topics</div>${num("count-topics", user.length)}
          <div class="sub">${topics.length - user.length} internal</div></div>
        <div class="card"><div class="label">Partitions</div>${num("count-partitions", partitions)}</div>
        <div class="card"><div class="label">Consumer groups</div>${num("count-groups", groups.length)}</div>
        <div class="card"><div class="label">Pipelines</div>${num("count-pipelines", pipelines.length)}</div>
        <div class="card ${urp > 0 ? "warn" : ""}"><div class="label">Under-replicated partitions</div>${num("count-under-replicated", urp)}</div>
        <div class="card wide"><div class="label">Throughput (records/s, user topics)</div>
          ${num("throughput-rate", rate === null ? "" : Math.round(rate), rate === null ? "–" : fmtRate(rate))}
          ${sparkline(throughput.samples)}</div>
      </div>
      <h2>Brokers</h2>
      <table data-testid="brokers"><thead><tr><th>Node</th><th>Host</th><th>Port</th></tr></thead>
        <tbody>${brokers}</tbody></table>`);
  };
  draw(await load());
  poll(gen, 1000, async () => {
    const data = await load();
    if (gen === generation) draw(data);
  });
}

// ---------------------------------------------------------------- topics

async function renderTopics(_, gen) {
  const draw = (topics) => {
    const sorted = [...topics].sort((a, b) => (a.internal - b.internal) || a.name.localeCompare(b.name));
    const rows = sorted.map((t) => {
      const id = `topic-${t.name}`;
      return `<tr data-testid="${esc(id)}">
        <td><a href="#/topics/${seg(t.name)}" data-testid="${esc(id)}-link">${esc(t.name)}</a>${
          t.internal ? ' <span class="badge">internal</span>' : ""}</td>
        <td class="n">${num(`${id}-partitions`, t.partitions)}</td>
        <td class="n">${num(`${id}-replication`, t.replication_factor)}</td>
        <td class="n">${num(`${id}-records`, t.records)}</td>
        <td class="n">${num(`${id}-size`, t.size_bytes, fmtBytes(t.size_bytes))}</td></tr>`;
    }).join("");
    fill(gen, "main", `<h1>Topics</h1>
      <table data-testid="topics"><thead><tr><th>Name</th><th class="n">Partitions</th>
        <th class="n">Replication</th><th class="n">Records</th><th class="n">Size</th></tr></thead>
        <tbody>${rows || '<tr><td colspan="5" class="muted">No topics.</td></tr>'}</tbody></table>`);
  };
  draw(await api("/topics"));
  poll(gen, 2000, async () => draw(await api("/topics")));
}

// The topic page is not polled: the message browser keeps its partition
// choice, and a 1 000-partition table redrawn every second would fight the
// reader's scrolling. "Refresh" reloads it.
async function renderTopic(name, gen) {
  const t = await api("/topics/" + seg(name));
  if (gen !== generation) return;
  const parts = [...(t.partitions || [])].sort((a, b) => a.partition - b.partition);
  const rows = parts.map((p) => {
    const id = `partition-${p.partition}`;
    const short = (p.isr || []).length < (p.replicas || []).length;
    return `<tr${short ? ' class="warn"' : ""}><td class="n">${num(`${id}-id`, p.partition, String(p.partition))}</td>
      <td class="n">${num(`${id}-leader`, p.leader, String(p.leader))}</td>
      <td>${txt(`${id}-replicas`, list(p.replicas))}</td>
      <td>${txt(`${id}-isr`, list(p.isr))}</td>
      <td class="n">${num(`${id}-log-start`, p.log_start_offset)}</td>
      <td class="n">${num(`${id}-hw`, p.high_watermark)}</td>
      <td class="n">${num(`${id}-log-end`, p.log_end_offset)}</td>
      <td class="n">${num(`${id}-size`, p.size_bytes, fmtBytes(p.size_bytes))}</td></tr>`;
  }).join("");
  const configs = [...(t.configs || [])].sort((a, b) => a.name.localeCompare(b.name)).map((c) =>
    `<tr class="${c.source === "topic" ? "set" : ""}"><td>${esc(c.name)}</td>
      <td>${txt(`config-${c.name}`, c.value ?? "")}</td><td class="muted">${esc(c.source)}</td></tr>`).join("");
  const options = parts.map((p) => `<option value="${p.partition}">${p.partition}</option>`).join("");
  main().innerHTML = `
    <p class="crumbs"><a href="#/topics">Topics</a> /</p>
    <h1>${txt("topic-name", t.name)} ${t.internal ? '<span class="badge">internal</span>' : ""}
      <button type="button" id="refresh" data-testid="refresh">Refresh</button></h1>
    <div class="cards">
      <div class="card"><div class="label">Partitions</div>${num("topic-partitions", parts.length)}</div>
      <div class="card"><div class="label">Replication factor</div>${num("topic-replication", t.replication_factor)}</div>
      <div class="card"><div class="label">Records</div>${num("topic-records", t.records)}</div>
      <div class="card"><div class="label">Size</div>${num("topic-size", t.size_bytes, fmtBytes(t.size_bytes))}</div>
    </div>
    <h2>Partitions</h2>
    <div class="scroll"><table data-testid="partitions"><thead><tr><th class="n">Partition</th><th class="n">Leader</th>
      <th>Replicas</th><th>ISR</th><th class="n">Log start</th><th class="n">High watermark</th>
      <th class="n">Log end</th><th class="n">Size</th></tr></thead><tbody>${rows}</tbody></table></div>
    <h2>Messages
      <label class="inline">partition <select id="records-partition" data-testid="records-partition">
        <option value="">all</option>${options}</select></label>
      <label class="inline">latest <select id="records-limit" data-testid="records-limit">
        <option>20</option><option>50</option><option>100</option><option>500</option></select></label></h2>
    <div id="records" data-testid="records"><p class="muted">Loading…</p></div>
    <h2>Configs</h2>
    <table data-testid="configs"><thead><tr><th>Name</th><th>Value</th><th>Source</th></tr></thead>
      <tbody>${configs}</tbody></table>`;
  document.getElementById("refresh").onclick = () => route();
  const reload = () => loadRecords(name, gen);
  document.getElementById("records-partition").onchange = reload;
  document.getElementById("records-limit").onchange = reload;
  // Not awaited: the partitions table is the page; the records arrive after
  // (reading the newest records touches the log, the description does not).
  reload();
}

async function loadRecords(topic, gen) {
  const partition = document.getElementById("records-partition").value;
  const limit = document.getElementById("records-limit").value;
  const q = `?limit=${seg(limit)}` + (partition === "" ? "" : `&partition=${seg(partition)}`);
  let view;
  try {
    view = await api(`/topics/${seg(topic)}/records${q}`);
  } catch (e) {
    fill(gen, "records", `<div class="error" data-testid="records-error">${esc(e.message)}</div>`);
    return;
  }
  fill(gen, "records", skippedBatches(view.skipped, "record") + recordsTable(view.records, "record"));
  const el = document.getElementById("records");
  if (el && gen === generation) el.dataset.loaded = partition === "" ? "all" : partition;
}

// Stored batches the records endpoint passed over (they do not decode): one
// line each, naming partition and offset, above the records that still show.
function skippedBatches(skipped, prefix) {
  if (!skipped || !skipped.length) return "";
  const lines = skipped.map((s) =>
    `<div data-testid="${prefix}-skipped-${s.partition}-${s.offset}">${esc(s.error)}</div>`).join("");
  return `<div class="error" data-testid="${prefix}-skipped">Skipped ${skipped.length} undecodable batch${skipped.length === 1 ? "" : "es"}:${lines}</div>`;
}

// A table of records as the records endpoint returns them; used for the
// message browser and for a pipeline's dead letters.
function recordsTable(records, prefix) {
  if (!records.length) return `<p class="muted" data-testid="${prefix}-none">No records.</p>`;
  const rows = records.map((r) => {
    const id = `${prefix}-${r.partition}-${r.offset}`;
    const headers = (r.headers || []).map((h) =>
      `<div><span class="hk">${esc(h.key)}</span>=${esc(h.value ?? "null")}</div>`).join("");
    const value = r.value_json !== undefined
      ? `<pre class="json">${esc(JSON.stringify(r.value_json, null, 2))}</pre>`
      : r.value === null ? '<span class="muted">null</span>' : `<pre>${esc(r.value)}</pre>`;
    return `<tr data-testid="${esc(id)}"><td class="n">${num(`${id}-offset`, r.offset, String(r.offset))}</td>
      <td class="n">${num(`${id}-partition`, r.partition, String(r.partition))}</td>
      <td>${txt(`${id}-time`, isoTime(r.timestamp))}</td>
      <td>${r.key === null ? '<span class="muted">null</span>' : txt(`${id}-key`, r.key)}</td>
      <td data-testid="${esc(id)}-headers">${headers}</td>
      <td data-testid="${esc(id)}-value">${value}</td></tr>`;
  }).join("");
  return `<div class="scroll"><table class="records"><thead><tr><th class="n">Offset</th><th class="n">Partition</th>
    <th>Timestamp</th><th>Key</th><th>Headers</th><th>Value</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

// ---------------------------------------------------------------- groups

async function renderGroups(_, gen) {
  const draw = (groups) => {
    const rows = [...groups].sort((a, b) => a.group_id.localeCompare(b.group_id)).map((g) => {
      const id = `group-${g.group_id}`;
      return `<tr data-testid="${esc(id)}"><td><a href="#/groups/${seg(g.group_id)}" data-testid="${esc(id)}-link">${esc(g.group_id)}</a></td>
        <td>${txt(`${id}-state`, g.state)}</td>
        <td>${esc(g.protocol_type || "")}${g.protocol ? " / " + esc(g.protocol) : ""}</td>
        <td class="n">${num(`${id}-members`, g.members)}</td>
        <td class="n">${num(`${id}-lag`, g.lag)}</td></tr>`;
    }).join("");
    fill(gen, "main", `<h1>Consumer groups</h1>
      <table data-testid="groups"><thead><tr><th>Group</th><th>State</th><th>Protocol</th>
        <th class="n">Members</th><th class="n">Lag</th></tr></thead>
        <tbody>${rows || '<tr><td colspan="5" class="muted">No groups.</td></tr>'}</tbody></table>`);
  };
  draw(await api("/groups"));
  poll(gen, 2000, async () => draw(await api("/groups")));
}

// Lag per partition as vertical bars; one SVG, scaled by its viewBox so a
// thousand partitions still fit (labels only when there is room).
function lagChart(offsets) {
  if (!offsets.length) return "";
  const w = 720;
  const h = 160;
  const pad = 18;
  const max = Math.max(1, ...offsets.map((o) => o.lag || 0));
  const bw = (w - 2) / offsets.length;
  const labels = offsets.length <= 40;
  const bars = offsets.map((o, i) => {
    const lag = o.lag || 0;
    const bh = (lag / max) * (h - 2 * pad);
    const x = 1 + i * bw;
    const y = h - pad - bh;
    const id = `lag-bar-${o.topic}-${o.partition}`;
    return `<g><rect class="bar" data-testid="${esc(id)}" data-value="${lag}" x="${x.toFixed(2)}" y="${y.toFixed(2)}"
        width="${Math.max(0.5, bw - 2).toFixed(2)}" height="${bh.toFixed(2)}"><title>${esc(o.topic)}[${o.partition}]: lag ${lag}</title></rect>${
      labels ? `<text x="${(x + bw / 2).toFixed(1)}" y="${h - 4}" class="axis">${o.partition}</text>
        <text x="${(x + bw / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" class="axis">${lag}</text>` : ""}</g>`;
  }).join("");
  return `<svg class="chart" data-testid="lag-chart" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">
    <line x1="0" x2="${w}" y1="${h - pad}" y2="${h - pad}" class="baseline"/>${bars}</svg>`;
}

async function renderGroup(groupId, gen) {
  const draw = (g) => {
    const members = (g.members || []).map((m) => {
      const assignment = (m.assignment || []).map((a) =>
        `<div><a href="#/topics/${seg(a.topic)}">${esc(a.topic)}</a>: ${esc(list(a.partitions))}</div>`).join("");
      return `<tr data-testid="member-${esc(m.member_id)}"><td><code>${esc(m.member_id)}</code>${
        m.member_id === g.leader ? ' <span class="badge">leader</span>' : ""}</td>
        <td>${esc(m.instance_id ?? "")}</td><td>${esc(m.client_id)}</td><td>${esc(m.client_host)}</td>
        <td data-testid="member-${esc(m.member_id)}-assignment">${assignment || '<span class="muted">none</span>'}</td></tr>`;
    }).join("");
    const offsets = [...(g.offsets || [])].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    const rows = offsets.map((o) => {
      const id = `${o.topic}-${o.partition}`;
      return `<tr><td><a href="#/topics/${seg(o.topic)}">${esc(o.topic)}</a></td>
        <td class="n">${o.partition}</td>
        <td class="n">${num(`committed-${id}`, o.committed)}</td>
        <td class="n">${num(`hw-${id}`, o.high_watermark)}</td>
        <td class="n">${num(`lso-${id}`, o.last_stable_offset)}</td>
        <td class="n">${num(`lag-${id}`, o.lag)}</td></tr>`;
    }).join("");
    fill(gen, "main", `
      <p class="crumbs"><a href="#/groups">Groups</a> /</p>
      <h1>${txt("group-id", g.group_id)}</h1>
      <div class="cards">
        <div class="card"><div class="label">State</div>${txt("group-state", g.state)}</div>
        <div class="card"><div class="label">Protocol</div><span>${esc(g.protocol_type || "–")}${g.protocol ? " / " + esc(g.protocol) : ""}</span></div>
        <div class="card"><div class="label">Generation</div>${num("group-generation", g.generation)}</div>
        <div class="card"><div class="label">Members</div>${num("group-members", (g.members || []).length)}</div>
        <div class="card"><div class="label">Total lag</div>${num("group-lag-total", g.lag)}</div>
      </div>
      <h2>Members</h2>
      <table data-testid="members"><thead><tr><th>Member</th><th>Instance</th><th>Client</th><th>Host</th>
        <th>Assignment</th></tr></thead>
        <tbody>${members || '<tr><td colspan="5" class="muted">No active members.</td></tr>'}</tbody></table>
      <h2>Lag per partition</h2>
      ${lagChart(offsets)}
      <table data-testid="offsets"><thead><tr><th>Topic</th><th class="n">Partition</th><th class="n">Committed</th>
        <th class="n">High watermark</th><th class="n" title="Last stable offset: read_committed consumers read up to it">Last stable</th><th class="n">Lag</th></tr></thead>
        <tbody>${rows || '<tr><td colspan="5" class="muted">No committed offsets.</td></tr>'}</tbody></table>`);
  };
  draw(await api("/groups/" + seg(groupId)));
  poll(gen, 2000, async () => draw(await api("/groups/" + seg(groupId))));
}

// ---------------------------------------------------------------- pipelines

async function renderPipelines(_, gen) {
  const draw = (pipelines) => {
    const rows = [...pipelines].sort((a, b) => a.name.localeCompare(b.name)).map((p) => {
      const id = `pipeline-${p.name}`;
      return `<tr data-testid="${esc(id)}"><td><a href="#/pipelines/${seg(p.name)}" data-testid="${esc(id)}-link">${esc(p.name)}</a></td>
        <td>${txt(`${id}-state`, p.paused ? "paused" : p.state)}</td>
        <td class="n">${num(`${id}-revision`, p.revision)}</td>
        <td>${esc(describeEndpoint(p.source))}</td>
        <td class="n">${num(`${id}-records-in`, p.records_in)}</td>
        <td class="n">${num(`${id}-records-out`, p.records_out)}</td>
        <td class="n">${num(`${id}-lag`, p.lag)}</td>
        <td class="n">${num(`${id}-dead-lettered`, p.dead_lettered)}</td></tr>`;
    }).join("");
    fill(gen, "main", `<h1>Pipelines</h1>
      <table data-testid="pipelines"><thead><tr><th>Name</th><th>State</th><th class="n">Revision</th><th>Source</th>
        <th class="n">In</th><th class="n">Out</th><th class="n">Lag</th><th class="n">Dead-lettered</th></tr></thead>
        <tbody>${rows || '<tr><td colspan="8" class="muted">No pipelines.</td></tr>'}</tbody></table>`);
  };
  draw(await api("/pipelines"));
  poll(gen, 2000, async () => draw(await api("/pipelines")));
}

// Live rates from counter deltas. The runtime publishes a status now and
// then (`updated_ms`), so deltas are taken between two *different* statuses
// over their own clock, not over the console's poll interval — otherwise a
// poll that sees the same status twice would show a rate of 0. Until there
// are two statuses, the status' own `rate` is shown.
function rateTracker() {
  let prev = null;
  let rates = new Map();
  return (status) => {
    const counters = new Map();
    for (const s of status.steps || []) counters.set("step:" + s.name, s.records_in || 0);
    (status.sinks || []).forEach((s, i) => counters.set("sink:" + i, s.records_in || 0));
    counters.set("dlq", status.dead_lettered || 0);
    const t = status.updated_ms;
    if (prev && typeof t === "number" && t > prev.t) {
      const dt = (t - prev.t) / 1000;
      rates = new Map();
      for (const [k, v] of counters) {
        const before = prev.counters.get(k);
        if (before !== undefined) rates.set(k, Math.max(0, v - before) / dt);
      }
      prev = { t, counters };
    } else if (!prev) {
      prev = { t, counters };
    }
    return (key, fallback) => (rates.has(key) ? rates.get(key) : (typeof fallback === "number" ? fallback : null));
  };
}

// The pipeline as an SVG graph: source → steps → sinks, left to right, each
// edge labelled with the rate of records entering the node it points to.
// The dead-letter topic, when there is one, is a last sink on a dashed edge.
function pipelineGraph(status, rateOf, dlqTopic) {
  const steps = status.steps || [];
  const sinks = status.sinks || [];
  const outs = sinks.length + (dlqTopic ? 1 : 0);
  const nodeW = 200;
  const nodeH = 44;
  const gapX = 70;
  const gapY = 16;
  const cols = 2 + steps.length;
  const w = cols * nodeW + (cols - 1) * gapX + 20;
  const h = Math.max(1, outs) * (nodeH + gapY) - gapY + 40;
  const midY = h / 2 - nodeH / 2;
  const colX = (c) => 10 + c * (nodeW + gapX);
  const node = (x, y, kind, title, sub, testid) => `<g class="node ${kind}" data-testid="${esc(testid)}">
      <rect x="${x}" y="${y}" width="${nodeW}" height="${nodeH}" rx="6"/>
      <text x="${x + nodeW / 2}" y="${y + 18}" class="node-title">${esc(clip(title, 28))}</text>
      <text x="${x + nodeW / 2}" y="${y + 34}" class="node-sub">${esc(clip(sub, 32))}</text>
      <title>${esc(title)}</title></g>`;
  const edge = (x1, y1, x2, y2, rate, testid, kind = "") => {
    const lx = (x1 + x2) / 2;
    const ly = (y1 + y2) / 2 - 5;
    return `<g class="edge ${kind}"><path d="M${x1},${y1} C${lx},${y1} ${lx},${y2} ${x2 - 6},${y2}" marker-end="url(#arrow)"/>
      <text x="${lx}" y="${ly}" class="edge-label" data-testid="${esc(testid)}" data-value="${rate === null ? "" : rate.toFixed(3)}">${esc(fmtRate(rate))}</text></g>`;
  };
  let parts = [];
  parts.push(node(colX(0), midY, "source", describeEndpoint(status.source), "source", "node-source"));
  let prevX = colX(0) + nodeW;
  steps.forEach((s, i) => {
    const x = colX(1 + i);
    parts.push(edge(prevX, midY + nodeH / 2, x, midY + nodeH / 2, rateOf("step:" + s.name, s.rate), `rate-into-step-${s.name}`));
    parts.push(node(x, midY, "step", s.name, `in ${fmtInt(s.records_in)} · out ${fmtInt(s.records_out)}`, `node-step-${s.name}`));
    prevX = x + nodeW;
  });
  const sinkX = colX(cols - 1);
  sinks.forEach((s, i) => {
    const y = 20 + i * (nodeH + gapY);
    parts.push(edge(prevX, midY + nodeH / 2, sinkX, y + nodeH / 2, rateOf("sink:" + i, s.rate), `rate-into-sink-${i}`));
    parts.push(node(sinkX, y, "sink", s.name ?? `sink ${i}`, `in ${fmtInt(s.records_in)}`, `node-sink-${i}`));
  });
  if (dlqTopic) {
    const y = 20 + sinks.length * (nodeH + gapY);
    parts.push(edge(prevX, midY + nodeH / 2, sinkX, y + nodeH / 2, rateOf("dlq", null), "rate-into-dlq", "dead"));
    parts.push(node(sinkX, y, "dlq", dlqTopic, `dead letters ${fmtInt(status.dead_lettered)}`, "node-dlq"));
  }
  return `<svg class="graph" data-testid="pipeline-graph" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="8" markerHeight="8" orient="auto">
      <path d="M0,0 L10,5 L0,10 z"/></marker></defs>${parts.join("")}</svg>`;
}

function clip(s, n) {
  s = String(s ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function counterRows(items, kind, rateOf) {
  return items.map((s, i) => {
    const key = kind === "sink" ? String(i) : s.name;
    const id = `${kind}-${key}`;
    return `<tr data-testid="${esc(id)}"><td>${esc(kind)}</td><td>${esc(s.name ?? key)}</td>
      <td class="n">${num(`${id}-in`, s.records_in)}</td>
      <td class="n">${num(`${id}-out`, s.records_out)}</td>
      <td class="n">${num(`${id}-dropped`, s.dropped)}</td>
      <td class="n">${num(`${id}-failed`, s.failed)}</td>
      <td class="n">${(() => { const r = rateOf(kind + ":" + key, s.rate); return num(`${id}-rate`, r === null ? "" : r.toFixed(3), fmtRate(r)); })()}</td>
      <td class="err">${esc(s.last_error ?? "")}</td></tr>`;
  }).join("");
}

// What each step's or sink's plugin counted (`ctx.counter`): why records
// went without output (an aggregate's late and future records …).
function pluginCounterRows(items, kind) {
  return items.flatMap((s, i) => {
    const key = kind === "step" ? s.name : String(i);
    return Object.entries(s.counters || {}).map(([name, value]) => `<tr data-testid="${esc(`${kind}-${key}-counter-${name}`)}">
      <td>${esc(kind)}</td><td>${esc(s.name ?? key)}</td><td>${esc(name)}</td>
      <td class="n">${num(`${kind}-${key}-counter-${name}-value`, value)}</td></tr>`);
  }).join("");
}

async function renderPipeline(name, gen) {
  const track = rateTracker();
  let dlqTopic = null;

  const drawStatus = (p) => {
    dlqTopic = p.dead_letter_topic;
    const st = p.status;
    const head = `
      <p class="crumbs"><a href="#/pipelines">Pipelines</a> /</p>
      <h1>${txt("pipeline-name", p.name)}
        <button type="button" id="toggle" data-testid="pipeline-toggle">${p.paused ? "Resume" : "Pause"}</button></h1>`;
    if (!st) {
      return head + `<p class="muted" data-testid="pipeline-no-status">No status yet: the runtime has not reported on this pipeline.</p>`;
    }
    const rateOf = track(st);
    const parts = (st.partitions || []).map((q) => `<tr><td class="n">${q.partition}</td>
        <td class="n">${num(`pipeline-partition-${q.partition}-position`, q.position)}</td>
        <td class="n">${num(`pipeline-partition-${q.partition}-end`, q.end)}</td>
        <td class="n">${num(`pipeline-partition-${q.partition}-lag`, q.lag)}</td></tr>`).join("");
    const errors = Array.isArray(st.errors) ? st.errors : st.errors ? [st.errors] : [];
    const warnings = Array.isArray(st.warnings) ? st.warnings : [];
    return head + `
      <div class="cards">
        <div class="card"><div class="label">State</div>${txt("pipeline-state", p.paused ? "paused" : st.state)}</div>
        <div class="card"><div class="label">Revision</div>${num("pipeline-revision", st.revision)}</div>
        <div class="card"><div class="label">Node</div>${num("pipeline-node", st.node_id, String(st.node_id ?? "–"))}</div>
        <div class="card"><div class="label">Lag</div>${num("pipeline-lag", st.lag)}</div>
        <div class="card"><div class="label">Dead-lettered</div>${num("pipeline-dead-lettered", st.dead_lettered)}</div>
        <div class="card"><div class="label">Status time</div>${txt("pipeline-updated", isoTime(st.updated_ms))}</div>
      </div>
      ${errors.length ? `<div class="error" data-testid="pipeline-errors">${errors.map((e) => esc(typeof e === "string" ? e : JSON.stringify(e))).join("<br>")}</div>` : ""}
      ${warnings.length ? `<div class="card warn" data-testid="pipeline-warnings">${warnings.map((w) => esc(String(w))).join("<br>")}</div>` : ""}
      <div class="scroll">${pipelineGraph(st, rateOf, p.dead_letter_topic)}</div>
      <h2>Steps and sinks</h2>
      <table data-testid="pipeline-counters"><thead><tr><th></th><th>Name</th><th class="n">In</th><th class="n">Out</th>
        <th class="n">Dropped</th><th class="n">Failed</th><th class="n">Rate in</th><th>Last error</th></tr></thead>
        <tbody>${counterRows(st.steps || [], "step", rateOf)}${counterRows(st.sinks || [], "sink", rateOf)}</tbody></table>
      <h2>Plugin counters</h2>
      ${(() => {
        const source = Object.keys(st.source_counters || {}).length
          ? [{ name: "connector", counters: st.source_counters }] : [];
        const rows = pluginCounterRows(source, "source") + pluginCounterRows(st.steps || [], "step")
          + pluginCounterRows(st.sinks || [], "sink");
        return rows
          ? `<table data-testid="pipeline-plugin-counters"><thead><tr><th></th><th>Name</th><th>Counter</th><th class="n">Value</th></tr></thead><tbody>${rows}</tbody></table>`
          : `<p class="muted" data-testid="pipeline-no-plugin-counters">No plugin has counted anything yet.</p>`;
      })()}
      <h2>Source partitions</h2>
      <table data-testid="pipeline-partitions"><thead><tr><th class="n">Partition</th><th class="n">Position</th>
        <th class="n">End</th><th class="n">Lag</th></tr></thead><tbody>${parts}</tbody></table>`;
  };

  const bindToggle = (p) => {
    const b = document.getElementById("toggle");
    if (b) {
      b.onclick = async () => {
        b.disabled = true;
        try { await apiPost(`/pipelines/${seg(name)}/${p.paused ? "resume" : "pause"}`); } catch (e) { setStatus(e.message, true); }
        route();
      };
    }
  };

  const drawSide = async () => {
    const [logs, dead] = await Promise.all([
      api(`/pipelines/${seg(name)}/logs?limit=100`),
      dlqTopic ? api(`/topics/${seg(dlqTopic)}/records?limit=20`).catch((e) => e) : Promise.resolve(null),
    ]);
    const lines = logs.map((l, i) => `<div class="log ${esc(String(l.level).toLowerCase())}" data-testid="log-line-${i}">
        <span class="t">${esc(isoTime(l.time_ms))}</span> <span class="lvl">${esc(l.level)}</span> ${esc(l.message)}</div>`).join("");
    fill(gen, "logs", lines || '<p class="muted" data-testid="logs-none">No log lines.</p>');
    let dlqHtml;
    if (!dlqTopic) dlqHtml = '<p class="muted" data-testid="dlq-none">This pipeline has no dead-letter topic.</p>';
    else if (dead instanceof Error) dlqHtml = `<p class="muted" data-testid="dlq-error">${esc(dlqTopic)}: ${esc(dead.message)}</p>`;
    else dlqHtml = `<p>From <a href="#/topics/${seg(dlqTopic)}" data-testid="dlq-topic">${esc(dlqTopic)}</a>, newest first.</p>` + skippedBatches(dead.skipped, "dlq") + recordsTable(dead.records, "dlq");
    fill(gen, "dlq", dlqHtml);
  };

  const p = await api("/pipelines/" + seg(name));
  if (gen !== generation) return;
  main().innerHTML = `<div id="pstatus">${drawStatus(p)}</div>
    <h2>Dead letters</h2><div id="dlq" data-testid="dlq"><p class="muted">Loading…</p></div>
    <h2>Log</h2><div id="logs" class="logs" data-testid="logs"><p class="muted">Loading…</p></div>`;
  bindToggle(p);
  drawSide().catch((e) => fill(gen, "logs", `<div class="error">${esc(e.message)}</div>`));

  // Status every second for live rates; logs and dead letters every third
  // tick since they read records.
  let tick = 0;
  poll(gen, 1000, async () => {
    const q = await api("/pipelines/" + seg(name));
    fill(gen, "pstatus", drawStatus(q));
    if (gen === generation) bindToggle(q);
    if (++tick % 3 === 0) await drawSide();
  });
}

// ---------------------------------------------------------------- start

// ---------------------------------------------------------------- login

// Shown when the admin API needs a login and the console has no session
// (or it expired): user and password, checked by POST /api/v1/session,
// which sets an HttpOnly session cookie the console's calls then carry.
function showLogin(message) {
  generation++; // stops the page's polling
  setStatus("");
  document.getElementById("who").innerHTML = "";
  main().innerHTML = `<form class="login" id="login" data-testid="login-form">
    <h1>Log in</h1>
    <p class="muted">This Fjord server needs a login: a user of <code>fjord user</code>.</p>
    <label>User <input name="user" autocomplete="username" required data-testid="login-user"></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required data-testid="login-password"></label>
    <button type="submit" data-testid="login-submit">Log in</button>
    <div class="error" data-testid="login-error"${message ? "" : " hidden"}>${esc(message || "")}</div>
  </form>`;
  document.getElementById("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const res = await fetch(API + "/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...CONSOLE },
      body: JSON.stringify({ user: form.user.value, password: form.password.value }),
    });
    let body = null;
    try { body = await res.json(); } catch (_) { /* keep null */ }
    if (!res.ok) {
      const error = form.querySelector("[data-testid=login-error]");
      error.textContent = (body && body.error) || `HTTP ${res.status}`;
      error.hidden = false;
      form.password.value = "";
      return;
    }
    start();
  });
}

async function logout() {
  await fetch(API + "/session", { method: "DELETE", headers: { "Content-Type": "application/json", ...CONSOLE } });
  start();
}

// Asks who we are first: a login form when one is needed, else the page.
async function start() {
  let session = { authentication_required: false, principal: null };
  try { session = await api("/session"); } catch (_) { /* an older server: no login */ }
  const who = document.getElementById("who");
  if (session.principal) {
    who.innerHTML = `<span data-testid="principal">${esc(session.principal)}</span> <button type="button" data-testid="logout">Log out</button>`;
    who.querySelector("button").addEventListener("click", logout);
  } else {
    who.innerHTML = "";
  }
  if (session.authentication_required && !session.principal) {
    showLogin();
    return;
  }
  route();
}

window.addEventListener("hashchange", route);
start();
