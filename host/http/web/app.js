// vik-host dashboard. Plain browser JavaScript served by the host itself: no build step, no
// third-party code. Everything shown comes from /api/v1 (docs/http-api.md); untrusted text
// (issue titles, agent output) only ever reaches the page as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("vik-token") || "";
let view = null;          // the last SchedulerView
let overviewStream = null; // AbortController of the host-wide event stream
let issueStream = null;    // ... of the open issue page's stream
let page = { name: "overview", id: "" };

// ---- helpers ----------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({ cache: "no-store" }, options || {}, { headers: headers((options || {}).headers) }));
  if (res.status === 401) { showLogin(); throw new Error("this host needs a bearer token"); }
  const type = res.headers.get("content-type") || "";
  const body = type.startsWith("application/json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body && body.error ? body.error.message : "HTTP " + res.status);
  return { body, res };
}

const issueHref = (id) => "#/issue/" + encodeURIComponent(id);
const issuePath = (id) => "/api/v1/issues/" + encodeURIComponent(id);

function when(rfc3339) {
  if (!rfc3339) return "";
  const t = Date.parse(rfc3339);
  if (isNaN(t)) return rfc3339;
  const s = Math.round((t - Date.now()) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? a + "s" : a < 3600 ? Math.floor(a / 60) + "m " + (a % 60) + "s" : a < 86400 ? Math.floor(a / 3600) + "h " + Math.floor((a % 3600) / 60) + "m" : Math.floor(a / 86400) + "d";
  return s > 1 ? "in " + text : s < -1 ? text + " ago" : "now";
}

function timeEl(rfc3339) {
  // Relative times are kept fresh by the ticker below through data-at.
  return el("time", { datetime: rfc3339 || "", "data-at": rfc3339 || "", title: rfc3339 || "", text: when(rfc3339) });
}

function clock(rfc3339) {
  const t = Date.parse(rfc3339);
  return isNaN(t) ? "" : new Date(t).toLocaleTimeString([], { hour12: false });
}

const fmt = (n) => (Number(n) || 0).toLocaleString();
const money = (n) => "$" + (Number(n) || 0).toFixed(2);
function tokensOf(session) { const t = (session && session.tokens) || {}; return Number(t.total || (t.input || 0) + (t.output || 0)) || 0; }

function notice(text, bad) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("bad", !!bad);
  n.classList.toggle("ok", !bad);
  n.hidden = !text;
  clearTimeout(notice.timer);
  if (text) notice.timer = setTimeout(() => { n.hidden = true; }, bad ? 12000 : 4000);
}

function setLive(state) { const p = $("live"); p.dataset.state = state; p.textContent = state; }

function showLogin() {
  $("login").hidden = false;
  $("overview").hidden = true;
  $("issue").hidden = true;
  setLive("locked");
}

// ---- server-sent events over fetch (so the bearer token can travel in a header) ---------------

function openStream(path, onEvent, onState) {
  const control = new AbortController();
  let delay = 500;
  (async function loop() {
    while (!control.signal.aborted) {
      try {
        const res = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal: control.signal, cache: "no-store" });
        if (res.status === 401) { showLogin(); return; }
        if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
        onState("live");
        delay = 500;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = "message";
            const data = [];
            for (const line of frame.split("\n")) {
              if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (data.length) {
              try { onEvent(event, JSON.parse(data.join("\n"))); } catch (e) { console.error("event", event, e); }
            }
          }
        }
      } catch (e) {
        if (control.signal.aborted) return;
      }
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
  return control;
}

// ---- overview ---------------------------------------------------------------------------------

function tile(label, value, sub) {
  return el("div", { class: "tile" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }), sub ? el("div", { class: "sub", text: sub }) : null);
}

function fillTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows);
  $(id).hidden = rows.length === 0;
  document.querySelector(`.empty[data-for="${id}"]`).hidden = rows.length > 0;
  $(id + "-count").textContent = rows.length;
}

function issueCell(id, title) {
  return el("td", {}, el("a", { class: "id", href: issueHref(id), text: id }), title ? el("span", { class: "title", title, text: title }) : null);
}

async function act(action, id, button) {
  if (action === "cancel" && !confirm("Cancel every running stage of " + id + "?")) return;
  // A rejection's feedback reaches the stage's next prompt (gate_feedback).
  const feedback = action === "reject" ? prompt("Reject the run of " + id + ": feedback for the agent (optional)", "") : "";
  if (feedback === null) return;
  if (button) button.disabled = true;
  try {
    const options = { method: "POST" };
    if (feedback) Object.assign(options, { body: JSON.stringify({ feedback }), headers: { "content-type": "application/json" } });
    const { body } = await api(issuePath(id) + "/" + action, options);
    const verb = { cancel: "Cancelled ", approve: "Approved ", reject: "Rejected " }[action] || "Retrying ";
    notice(verb + body.affected + " stage" + (body.affected === 1 ? "" : "s") + " of " + id);
  } catch (e) {
    notice(action + " " + id + ": " + e.message, true);
  } finally {
    if (button) button.disabled = false;
    scheduleState();
    if (page.name === "issue") loadIssue(false);
  }
}

function actionButton(label, action, id, cls) {
  const b = el("button", { type: "button", class: "small " + (cls || ""), text: label, "data-action": action, "data-issue": id });
  b.addEventListener("click", () => act(action, id, b));
  return b;
}

function renderState(v) {
  view = v;
  $("workflow").textContent = v.workflow || "";
  $("workflow").title = (v.tracker ? "tracker " + v.tracker + " \u00b7 " : "") + (v.workflow || "");
  const intake = v.last_intake_error ? "last pull failed: " + v.last_intake_error : v.next_intake_at ? "next pull " + when(v.next_intake_at) : v.last_intake_at ? "pulled " + when(v.last_intake_at) : "";
  $("intake").textContent = intake;
  $("intake").classList.toggle("err", !!v.last_intake_error);
  if (v.stopping) setLive("stopping");
  const t = v.totals || {};
  const live = v.running.reduce((n, r) => n + tokensOf(r.session), 0);
  $("tiles").replaceChildren(
    tile("Running", v.running.length + " / " + v.max_issue_concurrency, "issues in flight"),
    tile("Queued", (v.waiting || []).length, "ready, waiting for a slot"),
    tile("Retrying", v.retrying.length, "waiting for a timer"),
    tile("Blocked", v.blocked.length, "need a change or an operator"),
    tile("Completed", fmt(t.sessions_completed), fmt(t.sessions_failed) + " failed \u00b7 " + fmt(t.sessions_cancelled) + " cancelled"),
    tile("Tokens", fmt((t.tokens_input || 0) + (t.tokens_output || 0)), fmt(live) + " in running sessions"),
    tile("Spend", money(t.cost_usd), fmt(t.intake_cycles) + " pulls \u00b7 " + fmt(t.intake_failures) + " failed"),
  );
  fillTable("running", v.running.map((r) => el("tr", { "data-issue": r.issue_id },
    issueCell(r.issue_id, r.issue_title),
    el("td", {}, r.stage, r.finishing ? el("span", { class: "chip finishing", text: " finishing" }) : null),
    el("td", { text: r.agent }),
    el("td", {}, String(r.attempt), " ", el("span", { class: "chip " + r.retry_kind, text: r.retry_kind })),
    el("td", {}, timeEl(r.started_at)),
    el("td", {}, timeEl((r.session || {}).last_event_at), el("span", { class: "msg", title: (r.session || {}).last_message || "", text: (r.session || {}).last_message || "" })),
    el("td", { class: "num", text: fmt(tokensOf(r.session)) }),
    el("td", {}, actionButton("Cancel", "cancel", r.issue_id, "danger")))));
  fillTable("waiting", (v.waiting || []).map((w) => el("tr", {},
    issueCell(w.issue_id, w.issue_title),
    el("td", { text: w.issue_state }),
    el("td", {}, el("span", { class: "msg", title: w.reason, text: w.reason })))));
  fillTable("retrying", v.retrying.map((r) => el("tr", {},
    issueCell(r.issue_id),
    el("td", { text: r.stage }),
    el("td", {}, String(r.attempt), " ", el("span", { class: "chip " + r.kind, text: r.kind })),
    el("td", {}, timeEl(r.due_at)),
    el("td", {}, el("span", { class: "msg err", title: r.last_error || "", text: r.last_error || "" })),
    el("td", {}, actionButton("Cancel", "cancel", r.issue_id, "danger")))));
  fillTable("blocked", v.blocked.map((b) => el("tr", {},
    issueCell(b.issue_id),
    el("td", { text: b.stage }),
    el("td", {}, el("span", { class: "msg", title: b.reason, text: b.reason })),
    el("td", {}, timeEl(b.since)),
    el("td", {}, ...(b.awaiting_approval
      ? [actionButton("Approve", "approve", b.issue_id), " ", actionButton("Reject", "reject", b.issue_id, "danger")]
      : [actionButton("Retry", "retry", b.issue_id)])))));
}

function addFeed(change) {
  const feed = $("feed");
  const d = change.data || {};
  const detail = change.kind === "intake" ? (d.error ? "pull failed: " + d.error : (d.count ?? "?") + " issues")
    : change.kind === "session_ended" ? (d.reason && d.reason.startsWith(d.outcome || "\u0000") ? d.reason : (d.outcome || "") + (d.reason ? ": " + d.reason : ""))
    : change.kind === "blocked" || change.kind === "awaiting_approval" || change.kind === "gate_waiting" ? d.reason || ""
    : change.kind === "retry_queued" ? "attempt " + (d.attempt || "?") + " " + when(d.due_at)
    : change.kind === "operator" ? (d.action || "") + ": " + (d.count ?? 0) + " stage" + (d.count === 1 ? "" : "s")
    : change.kind === "routed" ? "to stage " + (d.to || "?") + " (state " + (d.state || "?") + ")"
    : change.kind === "scheduled" ? "schedule " + (d.schedule || "?") + " set state " + (d.state || "?")
    : "";
  const who = change.issue_id ? el("a", { href: issueHref(change.issue_id), class: "id", text: change.issue_id }) : "";
  feed.prepend(el("li", {}, el("time", { title: change.at, text: clock(change.at) }), el("span", { class: "kind " + change.kind, text: change.kind }),
    el("span", {}, who, change.stage ? " \u00b7 " + change.stage : "", detail ? " \u2014 " + detail : "")));
  while (feed.children.length > 200) feed.lastChild.remove();
  document.querySelector('.empty[data-for="feed"]').hidden = true;
}

let stateTimer = null;
function scheduleState() {
  // Changes come in bursts (an intake starts several sessions): one fetch per burst.
  if (stateTimer) return;
  stateTimer = setTimeout(async () => {
    stateTimer = null;
    try { renderState((await api("/api/v1/state")).body); } catch (e) { /* the stream's state shows it */ }
  }, 120);
}

// Lifetime totals per agent profile from the durable store; the card stays hidden without one.
let statsTimer = null;
function scheduleStats() {
  if (statsTimer) return;
  statsTimer = setTimeout(async () => {
    statsTimer = null;
    let st;
    try { st = (await api("/api/v1/stats")).body; } catch (e) { $("agents-card").hidden = true; return; }
    $("agents-card").hidden = false;
    fillTable("agents", (st.per_agent || []).map((g) => el("tr", {},
      el("td", { text: g.key }),
      el("td", { class: "num", text: fmt(g.runs) }),
      el("td", { class: "num", text: fmt(g.successes) }),
      el("td", { class: "num", text: fmt(g.failures) }),
      el("td", { class: "num", text: fmt(g.tokens_in) }),
      el("td", { class: "num", text: fmt(g.tokens_out) }),
      el("td", { class: "num", text: money(g.cost_usd) }),
      el("td", { class: "num", text: ((Number(g.seconds) || 0) / 3600).toFixed(2) }))));
  }, 300);
}

function startOverviewStream() {
  if (overviewStream) overviewStream.abort();
  overviewStream = openStream("/api/v1/events", (event, data) => {
    if (event === "state") { scheduleStats(); return renderState(data); }
    addFeed(data);
    scheduleState();
    if (data.kind === "session_ended") scheduleStats();
  }, (s) => setLive(view && view.stopping ? "stopping" : s));
}

// ---- one issue --------------------------------------------------------------------------------

const transcript = { n: -1, offset: 0, seen: new Map(), loading: false, pending: [] };

// Events read from the file and the same events pushed live while it was read differ in their
// time by a moment: the key leaves the time out.
function eventKey(e) { return (e.kind || "") + "|" + (e.text || "") + "|" + (e.call_id || "") + "|" + (e.phase || "") + "|" + (e.line || e.detail || "") + "|" + (e.input ?? "") + "|" + (e.output ?? ""); }

function describe(e) {
  switch (e.kind) {
    case "message": return e.text || "";
    case "tool_call": return (e.phase || "") + " " + (e.name || "") + (e.call_id ? " (" + e.call_id + ")" : "") + (e.output ? "\n" + String(e.output).slice(0, 2000) : "");
    case "token_usage": return "input " + fmt(e.input) + " \u00b7 output " + fmt(e.output) + (e.cache_read || e.cached ? " \u00b7 cached " + fmt(e.cache_read || e.cached) : "") + (e.cost_usd ? " \u00b7 " + money(e.cost_usd) : "");
    case "session_started": return "session " + (e.session_id || "");
    case "error": return e.detail || "";
    case "stderr": return e.line || "";
    case "notice": return e.detail || "";
    case "unknown": return (e.event_type ? e.event_type + ": " : "") + (e.raw || "");
    default: {
      const rest = Object.assign({}, e);
      delete rest.kind; delete rest.at;
      return Object.keys(rest).length ? JSON.stringify(rest) : "";
    }
  }
}

function appendEvent(e, fresh) {
  const list = $("transcript");
  list.append(el("li", { class: (e.kind || "unknown") + (fresh ? " new" : "") }, el("time", { title: e.at || "", text: clock(e.at) }),
    el("span", { class: "kind " + (e.kind || ""), text: e.kind || "?" }), el("span", { class: "body", text: describe(e) })));
  while (list.children.length > 5000) list.firstChild.remove();
  document.querySelector('.empty[data-for="transcript"]').hidden = true;
  if ($("follow").checked) list.scrollTop = list.scrollHeight;
}

async function loadTranscript(n) {
  transcript.n = n;
  transcript.offset = 0;
  transcript.seen.clear();
  transcript.loading = true;
  $("transcript").replaceChildren();
  document.querySelector('.empty[data-for="transcript"]').hidden = false;
  try {
    for (let pages = 0; pages < 64; ++pages) {
      const res = await fetch(issuePath(page.id) + "/sessions/" + n + "?offset=" + transcript.offset, { headers: headers(), cache: "no-store" });
      if (!res.ok) break;
      const text = await res.text();
      for (const line of text.split("\n")) {
        if (!line) continue;
        let e;
        try { e = JSON.parse(line); } catch (err) { continue; }
        appendEvent(e, false);
        const k = eventKey(e);
        transcript.seen.set(k, (transcript.seen.get(k) || 0) + 1);
      }
      const next = Number(res.headers.get("X-Vik-Next-Offset") || 0), size = Number(res.headers.get("X-Vik-File-Size") || 0);
      if (next <= transcript.offset || next >= size) { transcript.offset = next; break; }
      transcript.offset = next;
    }
  } finally {
    transcript.loading = false;
    // Events that arrived while the file was read: the ones already in it are skipped by key.
    for (const e of transcript.pending.splice(0)) {
      const k = eventKey(e), n = transcript.seen.get(k) || 0;
      if (n > 0) transcript.seen.set(k, n - 1);
      else appendEvent(e, true);
    }
    transcript.seen.clear();
  }
}

function renderIssue(issue) {
  $("issue-title").replaceChildren(el("span", { class: "id", text: issue.id }), issue.title ? " " + issue.title : "");
  const meta = [el("span", { class: "chip", text: issue.state || "unknown state" })];
  if (issue.url) meta.push(el("a", { href: issue.url, target: "_blank", rel: "noopener noreferrer", text: "open in tracker" }));
  if (issue.workspace) meta.push(el("code", { title: "workspace", text: issue.workspace }));
  $("issue-meta").replaceChildren(...meta);
  const stages = [];
  for (const r of issue.running) stages.push(el("li", {}, el("span", { class: "kind session_started", text: "running" }), el("strong", { text: r.stage }), r.agent, " attempt " + r.attempt, timeEl(r.started_at), el("span", { class: "num", text: fmt(tokensOf(r.session)) + " tokens" })));
  for (const r of issue.retrying) stages.push(el("li", {}, el("span", { class: "kind retry_queued", text: "retrying" }), el("strong", { text: r.stage }), "attempt " + r.attempt + " ", timeEl(r.due_at), r.last_error ? el("span", { class: "err", text: r.last_error }) : null));
  for (const b of issue.blocked) stages.push(el("li", {}, el("span", { class: "kind blocked", text: b.awaiting_approval ? "awaits approval" : "blocked" }), el("strong", { text: b.stage }), el("span", { text: b.reason }), timeEl(b.since),
    ...(b.awaiting_approval ? [" ", actionButton("Approve", "approve", issue.issue_id || b.issue_id), " ", actionButton("Reject", "reject", issue.issue_id || b.issue_id, "danger")] : [])));
  if (!stages.length) stages.push(el("li", { class: "empty", text: "No stage runs, waits or is blocked." }));
  $("issue-stages").replaceChildren(...stages);
  const sessions = (issue.sessions || []).map((s) => {
    const li = el("li", { class: s.n === transcript.n ? "current" : "" }, el("a", { href: "#", text: s.name }), el("span", { class: "msg", text: fmt(s.bytes) + " bytes" }));
    li.querySelector("a").addEventListener("click", (ev) => { ev.preventDefault(); loadTranscript(s.n); renderIssue(issue); });
    return li;
  });
  if (!sessions.length) sessions.push(el("li", { class: "empty", text: "No session recorded yet." }));
  $("issue-sessions").replaceChildren(...sessions);
  $("transcript-name").textContent = transcript.n >= 0 && issue.sessions && issue.sessions[transcript.n] ? issue.sessions[transcript.n].name : "";
  $("issue-cancel").disabled = issue.running.length === 0 && issue.retrying.length === 0;
}

// The durable store's runs of this issue (earlier host runs included); quiet when there is none.
async function loadRuns() {
  let runs = [];
  try { runs = (await api("/api/v1/history?issue=" + encodeURIComponent(page.id) + "&limit=50")).body; } catch (e) { runs = []; }
  fillTable("runs", runs.map((r) => el("tr", {},
    el("td", {}, timeEl(r.started_at)),
    el("td", { text: r.stage }),
    el("td", { text: r.agent }),
    el("td", { text: String(r.attempt) }),
    el("td", {}, el("span", { class: "chip " + r.outcome, text: r.outcome })),
    el("td", { class: "num", text: (Number(r.duration_sec) || 0).toFixed(1) }),
    el("td", { class: "num", text: fmt((r.tokens_in || 0) + (r.tokens_out || 0)) }),
    el("td", { class: "num", text: r.cost_usd == null ? "" : money(r.cost_usd) }),
    el("td", {}, el("span", { class: "msg err", title: r.error || "", text: r.error || "" })))));
}

let currentIssue = null;
async function loadIssue(resetTranscript) {
  try {
    const { body } = await api(issuePath(page.id));
    currentIssue = body;
    if ((resetTranscript || transcript.n < 0) && body.sessions && body.sessions.length) await loadTranscript(0);
    renderIssue(body);
    loadRuns();
  } catch (e) {
    notice(e.message, true);
  }
}

function openIssue(id) {
  page = { name: "issue", id };
  $("overview").hidden = true;
  $("issue").hidden = false;
  transcript.n = -1;
  $("transcript").replaceChildren();
  if (issueStream) issueStream.abort();
  let first = true;
  issueStream = openStream("/api/v1/events?issue=" + encodeURIComponent(id), (event, data) => {
    if (event === "state") return renderState(data);
    // The stream's own snapshot after a reconnect: whatever was missed meanwhile is in the file.
    if (event === "issue") { if (!first) loadIssue(false); first = false; return; }
    if (data.issue_id !== id) return scheduleState();
    if (event === "session_event") {
      // Live events belong to the newest session; they are shown while it is the one open.
      if (transcript.n !== 0) return;
      // The change carries the time; the event itself gets it only when written to the file.
      const e = Object.assign({ at: data.at }, data.data);
      if (transcript.loading) transcript.pending.push(e);
      else appendEvent(e, true);
      return;
    }
    if (event === "session_started") { transcript.n = -1; loadIssue(true); return; }
    loadIssue(false);
  }, setLive);
  loadIssue(true);
}

function route() {
  const m = location.hash.match(/^#\/issue\/(.+)$/);
  if (m) return openIssue(decodeURIComponent(m[1]));
  page = { name: "overview", id: "" };
  if (issueStream) { issueStream.abort(); issueStream = null; }
  $("issue").hidden = true;
  $("overview").hidden = false;
}

// ---- start ------------------------------------------------------------------------------------

$("refresh").addEventListener("click", async () => {
  const b = $("refresh");
  b.disabled = true;
  try { await api("/api/v1/refresh", { method: "POST" }); notice("Intake requested: the tracker is pulled now."); }
  catch (e) { notice("refresh: " + e.message, true); }
  finally { b.disabled = false; }
});
$("issue-retry").addEventListener("click", (ev) => act("retry", page.id, ev.currentTarget));
$("issue-cancel").addEventListener("click", (ev) => act("cancel", page.id, ev.currentTarget));
$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("vik-token", token);
  $("login").hidden = true;
  start();
});
window.addEventListener("hashchange", route);
// Relative times ("3m ago", "in 20s") move on by themselves.
setInterval(() => {
  for (const t of document.querySelectorAll("time[data-at]")) if (t.dataset.at) t.textContent = when(t.dataset.at);
  if (view) renderIntakeOnly();
}, 1000);
function renderIntakeOnly() {
  const v = view;
  if (!v.last_intake_error) $("intake").textContent = v.next_intake_at ? "next pull " + when(v.next_intake_at) : v.last_intake_at ? "pulled " + when(v.last_intake_at) : "";
}

function start() {
  startOverviewStream();
  route();
}
start();
