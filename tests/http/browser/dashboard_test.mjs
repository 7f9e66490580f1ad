// Drives headless Chromium over the DevTools protocol against a running vik-host:
//   1. the dashboard loads and shows both running sessions, updated live;
//   2. the issue page streams the session transcript;
//   3. a real mouse click on Cancel (confirming the dialog) cancels the session, which the API
//      confirms and the page shows.
// Screenshots of each step go to OUT_DIR. Exit 0 when every check held, 1 otherwise.
// Usage: node --experimental-websocket dashboard_test.mjs DEVTOOLS_PORT HOST_PORT OUT_DIR
import { writeFileSync } from "node:fs";

const [devtoolsPort, hostPort, outDir] = process.argv.slice(2);
const base = `http://127.0.0.1:${hostPort}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let failures = 0;
function check(ok, what) {
  console.log((ok ? "ok   " : "FAIL ") + what);
  if (!ok) failures++;
}

const targets = await (await fetch(`http://127.0.0.1:${devtoolsPort}/json/list`)).json();
const page = targets.find((t) => t.type === "page");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
let nextId = 1;
const pending = new Map();
const listeners = [];
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result);
  } else if (msg.method) {
    for (const l of listeners) l(msg);
  }
};
function send(method, params = {}) {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    setTimeout(() => { if (pending.delete(id)) reject(new Error(method + ": no answer in 10 s")); }, 10000);
  });
}
async function evaluate(expression) {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error(r.exceptionDetails.text + " in " + expression);
  return r.result.value;
}
async function waitFor(expression, what, ms = 20000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try { if (await evaluate(expression)) return true; } catch (e) { /* the page is loading */ }
    await sleep(100);
  }
  check(false, what + " (waited " + ms + " ms)");
  return false;
}
async function screenshot(name) {
  const r = await send("Page.captureScreenshot", { format: "png" });
  writeFileSync(`${outDir}/${name}.png`, Buffer.from(r.data, "base64"));
}
const api = async (path) => (await fetch(base + path)).json();

// Page errors and the confirm() dialog.
const consoleErrors = [];
listeners.push((msg) => {
  if (msg.method === "Runtime.exceptionThrown") consoleErrors.push(msg.params.exceptionDetails.text);
  if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") consoleErrors.push(msg.params.entry.text);
  if (msg.method === "Page.javascriptDialogOpening") send("Page.handleJavaScriptDialog", { accept: true });
});
await send("Page.enable");
await send("Runtime.enable");
await send("Log.enable");
await send("Emulation.setDeviceMetricsOverride", { width: 1400, height: 900, deviceScaleFactor: 1, mobile: false });

// 1. The overview shows both running sessions and keeps them live.
await send("Page.navigate", { url: base + "/" });
check(await waitFor(`document.querySelectorAll('#running tbody tr').length === 2`, "the running table shows both sessions"), "overview loaded");
check(await waitFor(`document.getElementById('live').dataset.state === 'live'`, "the event stream is live"), "event stream connected");
const msgBefore = await evaluate(`document.querySelector('#running tr[data-issue="B-1"] .msg').textContent`);
await sleep(1500);
await send("Runtime.evaluate", { expression: "0" });
// A refresh from the page's button: the state (and the running row's last message) moves on.
await evaluate(`document.getElementById('refresh').click(), true`);
check(await waitFor(`document.querySelector('#running tr[data-issue="B-1"] .msg').textContent !== ${JSON.stringify(msgBefore)}`,
  "the running row's last message changes live"), "running session shown live: " + msgBefore);
await screenshot("1-overview");

// 2. The issue page streams the transcript.
await send("Page.navigate", { url: base + "/#/issue/B-1" });
await waitFor(`document.querySelectorAll('#transcript li').length > 2`, "the transcript shows the session's events");
const countBefore = await evaluate(`document.querySelectorAll('#transcript li').length`);
check(await waitFor(`document.querySelectorAll('#transcript li').length > ${countBefore}`, "new events stream into the transcript"),
  "transcript streams (" + countBefore + " events, then more)");
check(await evaluate(`document.getElementById('transcript').textContent.includes('working on step')`), "transcript shows agent messages");
await screenshot("2-issue");

// 3. Cancel with a real mouse click, the dialog accepted.
await send("Page.navigate", { url: base + "/" });
await waitFor(`document.querySelector('button[data-action="cancel"][data-issue="B-1"]') !== null`, "the cancel button is shown");
const box = await evaluate(`(() => { const r = document.querySelector('button[data-action="cancel"][data-issue="B-1"]').getBoundingClientRect();
  return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`);
for (const type of ["mouseMoved", "mousePressed", "mouseReleased"])
  await send("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
check(await waitFor(`!document.querySelector('#running tr[data-issue="B-1"]')`, "the cancelled session leaves the running table"),
  "cancel clicked: B-1 no longer running");
const state = await api("/api/v1/state");
check(!state.running.some((r) => r.issue_id === "B-1"), "the API agrees: B-1 is not running");
check(state.running.some((r) => r.issue_id === "B-2"), "B-2 still runs");
check(state.totals.sessions_cancelled >= 1, "the API counts a cancelled session");
await waitFor(`document.getElementById('feed').textContent.includes('session_ended')`, "the activity feed shows the session's end");
check(await waitFor(`!document.getElementById('agents-card').hidden && document.querySelector('#agents tbody tr td')?.textContent === 'bot'`,
  "the spend card lists the agent profile"), "spend by agent profile shown");
await screenshot("3-cancelled");

// The issue page lists the cancelled run from the durable store.
await send("Page.navigate", { url: base + "/#/issue/B-1" });
check(await waitFor(`[...document.querySelectorAll('#runs tbody tr')].some((tr) => tr.textContent.includes('cancelled'))`,
  "the cancelled run is on record"), "the issue page lists its runs on record");
await screenshot("3b-issue-runs");

// The same page in the dark scheme (kept for the eye; the CSS follows the system's choice).
await send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: "dark" }] });
check(await evaluate(`getComputedStyle(document.body).backgroundColor !== "rgb(246, 247, 249)"`), "dark scheme applied");
await screenshot("4-dark");

check(consoleErrors.length === 0, "no errors in the page's console" + (consoleErrors.length ? ": " + consoleErrors.join(" | ") : ""));
ws.close();
console.log(failures ? `${failures} check(s) failed; screenshots in ${outDir}` : `all checks passed; screenshots in ${outDir}`);
process.exit(failures ? 1 : 0);
