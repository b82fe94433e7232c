// embedhub web UI: plain JavaScript, no external assets. It talks to the HTTP API only.
"use strict";

const view = document.getElementById("view");
const keyDialog = document.getElementById("key-dialog");
let eventStream = null;  // the collection page's job events (an AbortController)
const pageUrls = [];  // blob: URLs made for the current page, released when it is left

// ---------- API access (the API key goes in the Authorization header, never in a URL) ----------
function apiKey() { return localStorage.getItem("embedhub-api-key") || ""; }
function authHeaders(extra = {}) {
  const headers = Object.assign({}, extra);
  if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
  return headers;
}
let keyPrompt = null;
function askForKey() {
  if (keyPrompt) return keyPrompt;  // one dialog for every request waiting on it
  keyPrompt = new Promise((resolve) => {
    document.getElementById("key-input").value = "";
    keyDialog.showModal();
    keyDialog.addEventListener("close", () => {
      localStorage.setItem("embedhub-api-key", document.getElementById("key-input").value.trim());
      document.getElementById("key-button").hidden = false;
      keyPrompt = null;
      resolve();
    }, { once: true });
  });
  return keyPrompt;
}

// Accounts (GET /v1/auth/me): off on a loopback server by default, and then nothing here shows.
// With accounts on, the session is an HttpOnly cookie; requests that change something carry the
// session's CSRF token in X-CSRF-Token.
const account = { enabled: false, user: null, csrf: null };
const SAFE_METHODS = ["GET", "HEAD", "OPTIONS"];
function can(you, action) {
  if (!account.enabled || !you) return true;  // no accounts: everything, as before
  const allowed = { edit: ["owner", "admin", "editor"], manage: ["owner", "admin"] };
  return allowed[action].includes(you);
}
// A request refused with 401: with accounts on the session is gone, so the sign-in page is shown;
// after signing in, the page the user was on is drawn again (its requests are made afresh, and this
// one is left unanswered so nothing draws over the sign-in page). Without accounts: the API key.
function unauthorized() {
  if (!account.enabled) return askForKey();
  if (account.user) setAccount({ accounts: true, user: null, csrf_token: null });
  showSignIn();
  return new Promise(() => {});
}
async function request(path, options = {}) {
  const headers = authHeaders(options.headers || {});
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  if (account.csrf && !SAFE_METHODS.includes((options.method || "GET").toUpperCase())) headers["X-CSRF-Token"] = account.csrf;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    await unauthorized();
    return request(path, options);
  }
  return response;
}
async function errorOf(response) {
  const text = await response.text();
  try { const body = JSON.parse(text); return (body.error && body.error.message) || response.statusText; } catch { return text || response.statusText; }
}
async function api(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) throw Object.assign(new Error(await errorOf(response)), { status: response.status });
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}
// A blob: URL for a protected resource (page images, original files): <img src> and <a href> cannot
// send the Authorization header, so the bytes are fetched here and handed to the element locally.
async function blobUrl(path) {
  const response = await request(path);
  if (!response.ok) throw new Error(await errorOf(response));
  return URL.createObjectURL(await response.blob());
}

// Server-Sent Events over fetch (EventSource cannot send headers): parses `event:`/`data:`/`id:`
// lines per the SSE format and reconnects after a dropped connection. Returns an AbortController.
function subscribe(path, onEvent) {
  const controller = new AbortController();
  let lastId = null;
  let delay = 1000;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = authHeaders({ Accept: "text/event-stream" });
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 401) { await unauthorized(); continue; }
        if (!response.ok || !response.body) throw new Error(response.statusText);
        delay = 1000;
        await readEvents(response, onEvent, (field, content) => {
          if (field === "id") lastId = content;
          else if (field === "retry" && /^\d+$/.test(content)) delay = Number(content);
        });
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  })();
  return controller;
}

// Reads one Server-Sent Events response to its end: `event:`/`data:` lines make an event, a blank
// line dispatches it, comments are skipped; `id:` and `retry:` go to onField.
async function readEvents(response, onEvent, onField = () => {}) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", type = "", data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        if (data.length) onEvent(type || "message", data.join("\n"));
        type = ""; data = [];
        continue;
      }
      if (line.startsWith(":")) continue;  // comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let content = colon < 0 ? "" : line.slice(colon + 1);
      if (content.startsWith(" ")) content = content.slice(1);
      if (field === "event") type = content;
      else if (field === "data") data.push(content);
      else onField(field, content);
    }
  }
}

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function toast(message) {
  let stack = document.getElementById("toasts");
  if (!stack) {
    stack = document.createElement("div");
    stack.id = "toasts";
    stack.setAttribute("role", "status");
    document.body.appendChild(stack);
  }
  const node = document.createElement("div");
  node.className = "toast";
  node.textContent = message;
  stack.appendChild(node);
  setTimeout(() => node.remove(), 8000);
}
function pages(item) {
  if (item.page_start == null) return "";
  return item.page_start === item.page_end ? `p. ${item.page_start}` : `pp. ${item.page_start}-${item.page_end}`;
}

// ---------- routing ----------
const routes = {
  collections: renderCollections,
  collection: renderCollection,
  search: renderSearch,
  ask: renderAsk,
  doc: renderDocument,
  playground: renderPlayground,
  settings: renderSettings,
  keys: renderKeys,
  audit: renderAudit,
};
async function route() {
  if (eventStream) { eventStream.abort(); eventStream = null; }
  while (pageUrls.length) URL.revokeObjectURL(pageUrls.pop());
  document.getElementById("account").open = false;
  document.getElementById("share-dialog")?.close();  // Back while sharing: the dialog belongs to the page left
  if (account.enabled && !account.user) { showSignIn(); return; }
  window.scrollTo(0, 0);  // a new page starts at its top (the document view then scrolls to the citation)
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = routes[parts[0]] ? parts[0] : "collections";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  try {
    await routes[page](parts.slice(1), new URLSearchParams(query || ""));
  } catch (error) {
    // a collection the user may not see is a 404 like a missing one: both are "not found" here
    const title = error.status === 404 ? "<strong>Not found.</strong> " : "";
    view.innerHTML = `<div class="card error" role="alert">${title}${escapeHtml(error.message)}</div>`;
  }
}
window.addEventListener("hashchange", route);
document.getElementById("key-button").addEventListener("click", askForKey);
if (apiKey()) document.getElementById("key-button").hidden = false;

// ---------- accounts: sign-in page, account menu ----------
function setAccount(me) {
  account.enabled = Boolean(me.accounts);
  account.user = me.user || null;
  account.csrf = me.csrf_token || null;
  const signedIn = account.enabled && account.user !== null;
  document.getElementById("account").hidden = !signedIn;
  document.body.classList.toggle("signed-out", account.enabled && !signedIn);
  if (signedIn) {
    document.getElementById("account-name").textContent = account.user.name;
    document.getElementById("account-role").textContent = account.user.role;
    document.getElementById("account-summary").setAttribute("aria-label", `Account: ${account.user.name}, ${account.user.role}`);
    document.getElementById("audit-link").hidden = account.user.role !== "admin";
  }
}
function showSignIn() {
  if (eventStream) { eventStream.abort(); eventStream = null; }
  if (document.getElementById("sign-in-form")) return;  // already shown (several requests were refused)
  view.innerHTML = `
    <form class="card sign-in" id="sign-in-form">
      <h1>Sign in</h1>
      <label>Username <input name="username" required autocomplete="username" autocapitalize="none" spellcheck="false"></label>
      <label>Password <input name="password" type="password" required autocomplete="current-password"></label>
      <p class="error" id="sign-in-error" role="alert"></p>
      <button type="submit" id="sign-in-button">Sign in</button>
    </form>`;
  const form = document.getElementById("sign-in-form");
  const message = document.getElementById("sign-in-error");
  const button = document.getElementById("sign-in-button");
  form.elements.username.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    button.disabled = true;
    let response;
    try {
      response = await fetch("/v1/auth/login", {
        method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), cache: "no-store",
        body: JSON.stringify({ username: form.elements.username.value.trim(), password: form.elements.password.value }),
      });
    } catch (error) {
      message.textContent = `The server could not be reached: ${error.message}`;
      button.disabled = false;
      return;
    }
    if (response.ok) {
      const body = await response.json();
      setAccount({ accounts: true, user: body.user, csrf_token: body.csrf_token });
      route();  // the page the user was on (the hash was kept)
      return;
    }
    form.elements.password.value = "";
    if (response.status === 401) {
      message.textContent = "Wrong username or password.";
      button.disabled = false;
      form.elements.password.focus();
    } else if (response.status === 429) {
      let wait = Math.max(1, Math.ceil(Number(response.headers.get("Retry-After")) || 30));
      const tell = () => { message.textContent = `Too many sign-in attempts: try again in ${wait} second${wait === 1 ? "" : "s"}.`; };
      tell();
      const timer = setInterval(() => {
        wait -= 1;
        if (wait > 0 && document.body.contains(button)) { tell(); return; }
        clearInterval(timer);
        button.disabled = false;
        if (document.body.contains(message)) message.textContent = "You can try again now.";
      }, 1000);
    } else {
      message.textContent = await errorOf(response);
      button.disabled = false;
    }
  });
}
document.getElementById("sign-out").addEventListener("click", async () => {
  // not through request(): an already expired session must not show the sign-in page twice
  const headers = authHeaders(account.csrf ? { "X-CSRF-Token": account.csrf } : {});
  try { await fetch("/v1/auth/logout", { method: "POST", headers }); } catch { /* signed out here either way */ }
  sessionStorage.clear();  // conversations and upload notes of this user stay with this user
  history.replaceState(null, "", "#/collections");
  setAccount({ accounts: true, user: null, csrf_token: null });
  route();
});
const accountMenu = document.getElementById("account");
accountMenu.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && accountMenu.open) { accountMenu.open = false; document.getElementById("account-summary").focus(); }
});
document.addEventListener("click", (event) => { if (accountMenu.open && !accountMenu.contains(event.target)) accountMenu.open = false; });
document.getElementById("account-menu").addEventListener("click", (event) => { if (event.target.closest("a")) accountMenu.open = false; });

async function start() {
  try {
    const response = await fetch("/v1/auth/me", { headers: authHeaders(), cache: "no-store" });
    if (response.ok) setAccount(await response.json());
  } catch { /* a server without accounts */ }
  route();
}

// ---------- collections ----------
async function renderCollections() {
  const [collections, models] = await Promise.all([api("/v1/collections"), api("/v1/models")]);
  const options = embeddingModels(models).map((m) => `<option value="${escapeHtml(m.id)}">${escapeHtml(m.id)} (${m.dimensions} dims)</option>`).join("");
  view.innerHTML = `
    <h1>Collections</h1>
    ${account.enabled && account.user.role === "viewer" ? "" : `<form class="card inline" id="create-form">
      <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" placeholder="my-docs"></label>
      <label>Model <select name="model">${options}</select></label>
      <label>Dimensions <input name="dimensions" type="number" min="32" placeholder="native"></label>
      <button type="submit">Create collection</button>
    </form>`}
    <div class="grid" id="collection-list">
      ${collections.data.map((c) => `
        <a class="card" href="#/collection/${encodeURIComponent(c.name)}" data-name="${escapeHtml(c.name)}" style="text-decoration:none;color:inherit">
          <strong>${escapeHtml(c.name)}</strong>
          ${account.enabled && c.you ? `<div class="muted owner">${ownerText(c)}${c.you !== "owner" ? ` · you: ${escapeHtml(c.you)}` : ""}</div>` : ""}
          <div class="muted">${escapeHtml(c.model)} · ${c.dimensions} dims</div>
          <div>${c.done} documents · ${c.stored_chunks} chunks${c.failed ? ` · <span class="error">${c.failed} failed</span>` : ""}</div>
        </a>`).join("") || `<p class="muted">${account.enabled && account.user.role === "viewer" ? "No collections shared with you yet." : "No collections yet: create one above."}</p>`}
    </div>`;
  document.getElementById("create-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { name: form.get("name"), model: form.get("model") };
    if (form.get("dimensions")) body.dimensions = Number(form.get("dimensions"));
    try {
      await api("/v1/collections", { method: "POST", json: body });
      location.hash = "#/collection/" + encodeURIComponent(body.name);
    } catch (error) { toast(error.message); }
  });
}

// A collection made before accounts were on (or by the CLI on the server's machine) has no owner.
function ownerText(collection) { return collection.owner ? `owner ${escapeHtml(collection.owner)}` : "no owner"; }

const RUNNING = ["queued", "parsing", "embedding"];

// The share actually embedded, in every state: a job cancelled or failed at 0.2% is drawn at 0.2%
// (its state is named beside the bar); only a finished job is full.
function jobProgress(job) {
  if (job.status === "done") return 1;
  return typeof job.progress === "number" ? Math.max(0, Math.min(1, job.progress)) : 0;
}
// "0.2%" / "42%": a large file moves by fractions of a percent, which whole percents hide
function percentText(fraction) {
  const percent = fraction * 100;
  return `${percent > 0 && percent < 10 ? percent.toFixed(1) : Math.floor(percent)}%`;
}
function durationText(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
// While embedding: chunks/s and the time left (the server's estimate from the pace so far).
function jobPace(job) {
  if (!RUNNING.includes(job.status) || !job.rate) return "";
  const left = typeof job.eta_seconds === "number" ? ` · ${durationText(job.eta_seconds)} left` : "";
  return `${job.rate < 10 ? job.rate.toFixed(1) : Math.round(job.rate)} chunks/s${left}`;
}
function progressCell(job) {
  const fraction = jobProgress(job);
  const label = `${percentText(fraction)}${job.status === "done" ? "" : ` ${job.status}`}`;
  const pace = jobPace(job);
  return `<progress max="1" value="${fraction}" title="${label}" aria-label="${label}"></progress>
    <span class="job-percent">${percentText(fraction)}</span>${pace ? `<span class="job-pace muted">${pace}</span>` : ""}`;
}
function chunkCount(job) {
  const total = job.chunks_total ?? job.total_chunks;
  if (total && job.status === "embedding") return `${job.chunks || 0} / ${total} chunks`;
  return job.chunks ? `${job.chunks} chunk${job.chunks === 1 ? "" : "s"}` : "";
}
function jobRow(job, editable = true) {
  const retry = !editable ? "" : job.status === "failed" || job.status === "cancelled"
    ? `<button class="secondary retry" data-job="${job.id}" type="button">Retry</button>` : "";
  const cancel = editable && RUNNING.includes(job.status)
    ? `<button class="secondary cancel" data-job="${job.id}" type="button">Cancel</button>` : "";
  return `<tr id="job-${job.id}" data-status="${job.status}">
    <td class="name" title="${escapeHtml(job.name)}">${escapeHtml(job.name)}</td>
    <td class="job-progress">${progressCell(job)}</td>
    <td><span class="status ${job.status}">${job.status}</span> <span class="muted">${chunkCount(job)}</span></td>
    <td class="reason error" title="${escapeHtml(job.error || "")}">${escapeHtml(job.error || "")}</td>
    <td class="actions">${retry}${cancel}</td></tr>`;
}

// Upload notes are kept (per collection, for this browser tab) until dismissed; failures are kept
// by the server (failureItems / renderFailures below).
function kept(kind, name) {
  try { return JSON.parse(sessionStorage.getItem(`embedhub-${kind}-${name}`) || "[]"); } catch { return []; }
}
function keep(kind, name, items) { sessionStorage.setItem(`embedhub-${kind}-${name}`, JSON.stringify(items)); }

function uploadNote(job) {
  const asked = job.filename || job.renamed_from || job.stored_as;
  if (job.renamed_from) return `${asked} saved as ${job.stored_as} (a different file already has that name)`;
  if (job.identical) return `${asked} is already in the collection as ${job.stored_as} (same content)`;
  if (job.replaced) return `${asked} replaced the earlier version of ${job.stored_as}`;
  return null;
}

async function renderCollection([name]) {
  const [info, jobs, documents] = await Promise.all([
    api(`/v1/collections/${encodeURIComponent(name)}`),
    api(`/v1/collections/${encodeURIComponent(name)}/jobs`),
    api(`/v1/collections/${encodeURIComponent(name)}/documents`),
  ]);
  // with accounts, what the user may do here (info.you): viewers search and ask, editors also
  // upload and delete documents, owners and admins also share and drop
  const editable = can(info.you, "edit");
  const manages = can(info.you, "manage");
  const access = (you, owner) => `${owner ? `owner <strong>${escapeHtml(owner)}</strong>` : "no owner"}${you !== "owner" ? ` · you: ${escapeHtml(you)}` : ""}`;
  view.innerHTML = `
    <h1>${escapeHtml(name)}</h1>
    ${account.enabled && info.you ? `<p class="muted" id="access">
      <span id="access-summary">${access(info.you, info.owner)}</span>
      ${manages ? ' · <button class="link" id="share-button" type="button" aria-haspopup="dialog">Share</button>' : ""}</p>` : ""}
    <p class="muted">${escapeHtml(info.model)} · ${info.dimensions} dims · chunks of ${info.chunk_tokens} tokens ·
      <span id="summary-counts">${info.done} documents · ${info.stored_chunks} chunks</span> ·
      <a href="#/search?collection=${encodeURIComponent(name)}">search this collection</a> ·
      <a href="#/ask/${encodeURIComponent(name)}">ask this collection</a></p>
    ${editable ? `<div class="dropzone" id="dropzone">
      <p><strong>Drop files or folders here</strong></p>
      <p class="muted">PDF, DOCX, Markdown, HTML, text, source code, and scans or images (read by OCR)</p>
      <div class="choose">
        <button type="button" id="choose-files">Choose files</button>
        <button type="button" id="choose-folder">Choose a folder</button>
        <label class="inline-label">If the same path holds a different file
          <select id="on-conflict">
            <option value="keep_both">keep both (add “(2)”)</option>
            <option value="replace">replace it</option>
            <option value="reject">skip the upload</option>
          </select></label>
      </div>
      <input type="file" id="file-input" multiple hidden aria-label="Choose files">
      <input type="file" id="folder-input" webkitdirectory multiple hidden aria-label="Choose a folder">
    </div>` : ""}
    <ul id="upload-notes" class="notes" aria-live="polite"></ul>
    <h2>Processing</h2>
    <table class="fixed jobs"><thead><tr><th class="name">File</th><th class="progress">Progress</th><th class="state">Status</th><th class="reason">Reason</th><th class="actions"></th></tr></thead>
      <tbody id="jobs">${jobs.data.map((job) => jobRow(job, editable)).join("")}</tbody></table>
    <h2>Failures</h2>
    <div id="failures"></div>
    <h2>Documents</h2>
    <table class="fixed documents"><thead><tr><th class="name">File</th><th class="type">Type</th><th class="num">Pages</th><th class="num">Chunks</th><th class="state">Status</th><th class="actions"></th></tr></thead>
      <tbody id="documents">${documentRows(name, documents.data, editable)}</tbody></table>
    ${manages ? '<p><button class="secondary" id="drop-collection" type="button">Drop collection</button></p>' : ""}`;
  const notes = () => {
    document.getElementById("upload-notes").innerHTML = kept("notes", name).map((note, index) =>
      `<li><span>${escapeHtml(note)}</span> <button class="link dismiss-note" data-index="${index}" type="button" aria-label="Dismiss">Dismiss</button></li>`).join("");
  };
  const updateFailures = () => renderFailures(name, editable).catch((error) => toast(error.message));
  notes();
  updateFailures();
  const upload = async (items) => {
    if (!items.length) return;
    const form = new FormData();
    // the multipart filename carries the relative path, so projA/README.md and projB/README.md stay apart
    for (const { file, path } of items) form.append("files", file, path || file.name);
    form.append("on_conflict", document.getElementById("on-conflict").value);
    let result;
    try {
      const response = await request(`/v1/collections/${encodeURIComponent(name)}/files`, { method: "POST", body: form });
      const text = await response.text();
      const body = text ? JSON.parse(text) : {};
      if (!response.ok) {  // every file was rejected: the server kept each with its reason
        result = { jobs: [], rejected: splitReasons((body.error && body.error.message) || response.statusText, items)
          .map((r) => ({ ...r, status: response.status })) };
      } else result = body;
    } catch (error) { result = { jobs: [], rejected: [{ filename: `${items.length} file(s)`, error: error.message }] }; }
    for (const job of result.jobs) upsertJob(job);
    const fresh = result.jobs.map(uploadNote).filter(Boolean);
    if (fresh.length) { keep("notes", name, [...kept("notes", name), ...fresh]); notes(); }
    if (result.rejected.length) {
      // the server keeps them; one whose upload never reached it (the network) is shown until re-rendered
      if (!result.jobs.length && result.rejected.every((r) => !r.status)) showUnsent(result.rejected);
      else updateFailures();
    }
  };
  const refreshDocuments = async () => {
    const [fresh, docs] = await Promise.all([
      api(`/v1/collections/${encodeURIComponent(name)}`),
      api(`/v1/collections/${encodeURIComponent(name)}/documents`),
    ]);
    document.getElementById("documents").innerHTML = documentRows(name, docs.data, editable);
    document.getElementById("summary-counts").textContent = `${fresh.done} documents · ${fresh.stored_chunks} chunks`;
  };
  const upsertJob = (job) => {
    const existing = document.getElementById("job-" + job.id);
    const html = jobRow(job, editable);
    if (existing) existing.outerHTML = html; else document.getElementById("jobs").insertAdjacentHTML("beforeend", html);
    if (job.status === "done" || job.status === "failed") {
      refreshDocuments().catch(() => {});
      updateFailures();  // a failed file is kept by the server; a done one clears its old failure
    }
  };
  document.getElementById("share-button")?.addEventListener("click", () => openShare(name, (fresh) => {
    document.getElementById("access-summary").innerHTML = access(fresh.you, fresh.owner);
  }));
  const zone = document.getElementById("dropzone");
  if (zone) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const entries = [...e.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
      const items = entries.length ? (await Promise.all(entries.map(readEntry))).flat()
        : [...e.dataTransfer.files].map((file) => ({ file, path: file.name }));
      upload(items);
    });
    const picked = (e) => { upload([...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }))); e.target.value = ""; };
    document.getElementById("choose-files").addEventListener("click", () => document.getElementById("file-input").click());
    document.getElementById("choose-folder").addEventListener("click", () => document.getElementById("folder-input").click());
    document.getElementById("file-input").addEventListener("change", picked);
    document.getElementById("folder-input").addEventListener("change", picked);
  }
  document.getElementById("upload-notes").addEventListener("click", (e) => {
    if (!e.target.classList.contains("dismiss-note")) return;
    const items = kept("notes", name);
    items.splice(Number(e.target.dataset.index), 1);
    keep("notes", name, items);
    notes();
  });
  document.getElementById("failures").addEventListener("click", async (e) => {
    const all = e.target.id === "dismiss-all-failures";
    if (!all && !e.target.classList.contains("dismiss-failure")) return;
    const path = `/v1/collections/${encodeURIComponent(name)}/failures${all ? "" : `/${e.target.dataset.failure}`}`;
    try { await api(path, { method: "DELETE" }); } catch (error) { toast(error.message); }
    updateFailures();
  });
  document.getElementById("jobs").addEventListener("click", async (e) => {
    const id = e.target.dataset.job;
    if (!id) return;
    const action = e.target.classList.contains("retry") ? "retry" : "cancel";
    try { upsertJob(await api(`/v1/jobs/${id}/${action}`, { method: "POST" })); } catch (error) { toast(error.message); }
  });
  document.getElementById("documents").addEventListener("click", async (e) => {
    if (!e.target.dataset.doc) return;
    try {
      await api(`/v1/collections/${encodeURIComponent(name)}/documents/${e.target.dataset.doc}`, { method: "DELETE" });
      route();
    } catch (error) { toast(error.message); }
  });
  document.getElementById("drop-collection")?.addEventListener("click", async () => {
    if (!confirm(`Drop collection ${name} and everything in it?`)) return;
    try {
      await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
      location.hash = "#/collections";
    } catch (error) { toast(error.message); }
  });
  eventStream = subscribe(`/v1/collections/${encodeURIComponent(name)}/events`, (type, data) => {
    if (type === "job") upsertJob(JSON.parse(data));
  });
}

// ---------- failures: kept by the server per collection until dismissed (GET/DELETE .../failures) ----------
function failureItem(failure, editable) {
  const what = failure.stage === "upload" ? (failure.status === "skipped" ? "not uploaded (skipped)" : "not uploaded")
    : failure.status === "unsupported" ? "not ingested (unsupported)" : "not ingested";
  const dismiss = editable
    ? `<button class="link dismiss-failure" data-failure="${escapeHtml(failure.id)}" type="button" aria-label="Dismiss ${escapeHtml(failure.name)}">Dismiss</button>` : "";
  return `<li class="${failure.stage === "upload" ? "rejected" : "failed"}" data-failure="${escapeHtml(failure.id)}">
    <span class="name" title="${escapeHtml(failure.name)}">${escapeHtml(failure.name)}</span>
    <span class="error">${what}: ${escapeHtml(withoutName(failure.reason, failure.name.split("/").pop()))}</span>
    <span class="failure-when muted" title="${escapeHtml(new Date(failure.at * 1000).toLocaleString())}">${when(failure.at)}</span>${dismiss}</li>`;
}
async function renderFailures(name, editable) {
  const failures = (await api(`/v1/collections/${encodeURIComponent(name)}/failures`)).data;
  const box = document.getElementById("failures");
  if (!box) return;  // the page changed meanwhile
  const all = editable && failures.length > 1
    ? `<p class="failures-actions"><button class="link" id="dismiss-all-failures" type="button">Dismiss all ${failures.length}</button></p>` : "";
  box.innerHTML = `${all}<ul class="failures">${failures.map((f) => failureItem(f, editable)).join("") || '<li class="muted">none</li>'}</ul>`;
}
// an upload that never reached the server (the network failed): nothing was kept, say so here
function showUnsent(rejected) {
  const list = document.querySelector("#failures ul.failures");
  if (!list) return;
  list.querySelector("li.muted")?.remove();
  list.insertAdjacentHTML("beforeend", rejected.map((r) => `<li class="rejected unsent"><span class="name">${escapeHtml(r.filename)}</span>
    <span class="error">not uploaded: ${escapeHtml(r.error)}</span></li>`).join(""));
}

// ---------- sharing (owners and admins): GET/PUT/DELETE /v1/collections/NAME/access ----------
// The dialog exists only while open (its fields would otherwise shadow the pages' own).
function shareDialog() {
  const dialog = document.createElement("dialog");
  dialog.id = "share-dialog";
  dialog.setAttribute("aria-labelledby", "share-title");
  dialog.innerHTML = `
    <h2 id="share-title">Share</h2>
    <p class="muted" id="share-owner"></p>
    <h3>Shared with</h3>
    <ul id="share-list" class="shares"></ul>
    <form id="share-form" class="inline">
      <label>Share with <select name="kind"><option value="user">a user</option><option value="group">a group</option></select></label>
      <label class="grow">Name <input name="name" list="share-names" required autocomplete="off"></label>
      <datalist id="share-names"></datalist>
      <label>Role <select name="role"><option value="viewer">viewer (search, ask)</option><option value="editor">editor (upload, delete)</option></select></label>
      <button type="submit" id="share-add">Share</button>
    </form>
    <p class="error" id="share-error" role="alert"></p>
    <menu><button type="button" class="secondary" id="share-close">Close</button></menu>`;
  document.body.appendChild(dialog);
  dialog.addEventListener("close", () => {
    dialog.remove();
    document.getElementById("share-button")?.focus();
  });
  return dialog;
}
async function openShare(name, onChange) {
  document.getElementById("share-dialog")?.remove();
  const dialog = shareDialog();
  const form = document.getElementById("share-form");
  const list = document.getElementById("share-list");
  const error = document.getElementById("share-error");
  const base = `/v1/collections/${encodeURIComponent(name)}/access`;
  const draw = (access) => {
    document.getElementById("share-owner").textContent =
      `${access.owner ? `Owner: ${access.owner}.` : "No owner."} Only the owner and admins see it, and those it is shared with: viewers search and ask, editors also upload and delete documents.`;
    list.innerHTML = access.shares.map((share) => `
      <li data-kind="${escapeHtml(share.kind)}" data-name="${escapeHtml(share.name)}">
        <span class="name">${share.kind === "group" ? "group " : ""}<strong>${escapeHtml(share.name)}</strong></span>
        <span class="status">${escapeHtml(share.role)}</span>
        <button class="link remove-share" type="button" aria-label="Stop sharing with ${escapeHtml(share.kind)} ${escapeHtml(share.name)}">Remove</button>
      </li>`).join("") || '<li class="muted">nobody yet</li>';
    onChange(access);
  };
  // the picker's names: who exists (a server that does not list them leaves a free text field)
  const known = { user: [], group: [] };
  const fillNames = () => {
    document.getElementById("share-names").innerHTML = known[form.elements.kind.value]
      .map((entry) => `<option value="${escapeHtml(entry)}">`).join("");
  };
  document.getElementById("share-title").textContent = `Share ${name}`;
  try { draw(await api(base)); } catch (failure) { dialog.remove(); toast(failure.message); return; }
  dialog.showModal();
  form.elements.name.focus();
  form.elements.kind.addEventListener("change", fillNames);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { kind: form.elements.kind.value, name: form.elements.name.value.trim(), role: form.elements.role.value };
    try {
      draw(await api(`${base}/shares`, { method: "PUT", json: body }));
      form.elements.name.value = "";
      form.elements.name.focus();
    } catch (failure) { error.textContent = failure.message; }
  });
  list.addEventListener("click", async (event) => {
    const item = event.target.closest(".remove-share") && event.target.closest("li");
    if (!item) return;
    error.textContent = "";
    try {
      draw(await api(`${base}/shares/${encodeURIComponent(item.dataset.kind)}/${encodeURIComponent(item.dataset.name)}`, { method: "DELETE" }));
      form.elements.name.focus();
    } catch (failure) { error.textContent = failure.message; }
  });
  document.getElementById("share-close").addEventListener("click", () => dialog.close());
  const [users, groups] = await Promise.allSettled([api("/v1/users"), api("/v1/groups")]);
  if (users.status === "fulfilled") known.user = users.value.data.map((u) => u.name).filter((n) => !account.user || n !== account.user.name);
  if (groups.status === "fulfilled") known.group = groups.value.data.map((g) => g.name);
  fillNames();
}

// Server reasons start with the file's name ("tool.exe: unsupported file type; ..."): the list shows it apart.
function withoutName(reason, filename) {
  const base = String(filename || "").split("/").pop();
  return base && reason.startsWith(base + ": ") ? reason.slice(base.length + 2) : reason;
}
function splitReasons(message, items) {
  const starts = items.map((item) => {
    const path = item.path || item.file.name;
    return { path, at: message.indexOf(path.split("/").pop() + ": ") };
  }).filter((entry) => entry.at >= 0).sort((a, b) => a.at - b.at);
  if (!starts.length) return [{ filename: items.length === 1 ? (items[0].path || items[0].file.name) : `${items.length} files`, error: message }];
  return starts.map((entry, index) => ({
    filename: entry.path,
    error: message.slice(entry.at, index + 1 < starts.length ? starts[index + 1].at : undefined).replace(/;\s*$/, ""),
  }));
}

function documentRows(name, documents, editable = true) {
  return documents.map((d) => {
    const shown = d.relative_path || d.name;
    return `<tr>
    <td class="name" title="${escapeHtml(shown)}"><a href="#/doc/${encodeURIComponent(name)}/${d.doc_id}">${escapeHtml(shown)}</a></td>
    <td>${escapeHtml(d.file_type || "")}</td><td>${d.pages ?? ""}</td><td>${d.chunks ?? 0}<span class="unit"> chunk${d.chunks === 1 ? "" : "s"}</span></td>
    <td><span class="status ${d.status}">${d.status}</span> <span class="error">${escapeHtml(d.error || "")}</span></td>
    <td class="actions">${editable ? `<button class="secondary delete-doc" data-doc="${d.doc_id}" type="button">Delete</button>` : ""}</td></tr>`;
  }).join("");
}

// A dropped folder: every file with its path inside the drop (entry.fullPath is "/projA/README.md").
function readEntry(entry) {
  if (entry.isFile) {
    return new Promise((resolve) => entry.file((file) => resolve([{ file, path: entry.fullPath.replace(/^\/+/, "") || file.name }]), () => resolve([])));
  }
  const reader = entry.createReader();
  return new Promise((resolve) => {
    const all = [];
    const next = () => reader.readEntries(async (entries) => {
      if (!entries.length) return resolve((await Promise.all(all.map(readEntry))).flat());
      all.push(...entries);
      next();
    }, () => resolve([]));
    next();
  });
}

// ---------- search (its state lives in the URL hash, so Back from a cited page re-runs it) ----------
const RETRIEVER_NAMES = { lexical: "keyword", dense: "semantic" };
function foundBy(retrievers) {
  return retrievers.map((r) => r.startsWith("rerank:") ? "reranked" : (RETRIEVER_NAMES[r] || r)).join(" + ");
}

// The reranker (embedhub serve --reranker) is listed by /v1/models with type "reranker".
function embeddingModels(models) { return models.data.filter((m) => m.type !== "reranker"); }
function servedReranker(models) { return models.data.find((m) => m.type === "reranker") || null; }

async function renderSearch(_, params) {
  const [collections, models] = await Promise.all([api("/v1/collections"), api("/v1/models")]);
  const reranker = servedReranker(models);
  const rerank = Boolean(reranker && params.get("rerank"));
  const chosen = params.get("collection") || (collections.data[0] && collections.data[0].name) || "";
  // a collection named by the URL but not listed is searched all the same: the server says why not
  const names = collections.data.map((c) => c.name);
  if (chosen && !names.includes(chosen)) names.push(chosen);
  const mode = params.get("mode") || "hybrid";
  const type = params.get("type") || "";
  const option = (value, current, label = value) => `<option value="${value}" ${value === current ? "selected" : ""}>${label}</option>`;
  view.innerHTML = `
    <h1>Search</h1>
    <form class="card inline" id="search-form">
      <label>Collection <select name="collection">${names.map((n) =>
        `<option ${n === chosen ? "selected" : ""}>${escapeHtml(n)}</option>`).join("")}</select></label>
      <label class="grow">Query <input name="query" required value="${escapeHtml(params.get("q") || "")}"></label>
      <label>Mode <select name="mode">${["hybrid", "dense", "lexical"].map((m) => option(m, mode)).join("")}</select></label>
      <label>Results <input name="k" type="number" min="1" max="200" value="${escapeHtml(params.get("k") || "10")}" style="width:5rem"></label>
      <label>File type <select name="type">${option("", type, "any")}${["pdf", "docx", "markdown", "html", "text", "code"].map((t) => option(t, type)).join("")}</select></label>
      <label>Path glob <input name="path" placeholder="*.pdf" style="width:8rem" value="${escapeHtml(params.get("path") || "")}"></label>
      <label title="Show each document once, at its best chunk"><input name="per_document" type="checkbox" ${params.get("per_document") ? "checked" : ""}> One per document</label>
      <label id="rerank-label" title="${reranker ? `Rerank the best candidates with ${escapeHtml(reranker.id)}` : "No reranker on this server: start it with embedhub serve --reranker NAME"}"><input name="rerank" type="checkbox" ${rerank ? "checked" : ""} ${reranker ? "" : "disabled"}> Rerank</label>
      <button type="submit">Search</button>
    </form>
    <div id="results"></div>`;
  const form = document.getElementById("search-form");
  const run = async () => {
    const data = new FormData(form);
    const body = { query: data.get("query"), mode: data.get("mode"), k: Number(data.get("k") || 10) };
    if (data.get("type")) body.file_types = [data.get("type")];
    if (data.get("path")) body.path_glob = data.get("path");
    if (data.get("per_document")) body.per_document = 1;
    if (data.get("rerank")) body.rerank = true;
    const collection = data.get("collection");
    const results = document.getElementById("results");
    results.innerHTML = '<p class="muted">Searching…</p>';
    try {
      const found = await api(`/v1/collections/${encodeURIComponent(collection)}/search`, { method: "POST", json: body });
      results.innerHTML = found.results.map((r, i) => `
        <article class="result">
          <div class="where"><strong><span class="rank">${r.rank || i + 1}.</span> <a class="open" title="${escapeHtml(r.relative_path || r.name)}" href="#/doc/${encodeURIComponent(collection)}/${r.doc_id}?chunk=${encodeURIComponent(r.chunk_id)}${r.page_start ? "&page=" + r.page_start : ""}">${escapeHtml(r.relative_path || r.name)}</a></strong>
            ${pages(r)} ${r.heading_path.length ? "· " + escapeHtml(r.heading_path.join(" › ")) : ""}
            · <span class="found-by" title="${r.rerank_score != null ? `reranker score ${r.rerank_score.toFixed(4)}` : `score ${r.score.toFixed(4)} (${body.mode === "hybrid" ? "weighted fusion of normalised dense and lexical scores" : body.mode})`}; higher ranks first">found by ${escapeHtml(foundBy(r.retrievers))}</span>${r.rerank_score != null ? ` <span class="rerank-score muted">${r.rerank_score.toFixed(3)}</span>` : ""}</div>
          <div class="snippet">${r.kind === "table" ? tableChunkHtml(r.text) : r.snippet}</div>
        </article>`).join("") || '<p class="muted">No results.</p>';
    } catch (error) { results.innerHTML = `<p class="error">${escapeHtml(error.message)}</p>`; }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const state = new URLSearchParams({ collection: data.get("collection"), q: data.get("query"), mode: data.get("mode"), k: data.get("k") || "10" });
    if (data.get("type")) state.set("type", data.get("type"));
    if (data.get("path")) state.set("path", data.get("path"));
    if (data.get("per_document")) state.set("per_document", "1");
    if (data.get("rerank")) state.set("rerank", "1");
    const hash = "#/search?" + state.toString();
    if (location.hash === hash) run(); else location.hash = hash;  // the hashchange re-renders and runs it
  });
  if (params.get("q")) run();
}

// ---------- ask: answers with [n] citations, streamed by the server's chat endpoint ----------
// The conversation lives in sessionStorage per collection, so it survives opening a cited page and
// coming Back; "New conversation" clears it. Each turn keeps its own numbered evidence.
function conversation(name) {
  try { return JSON.parse(sessionStorage.getItem(`embedhub-ask-${name}`) || "[]"); } catch { return []; }
}
function keepConversation(name, turns) { sessionStorage.setItem(`embedhub-ask-${name}`, JSON.stringify(turns)); }

// [1], [1, 2], [1-3], 【1】: each number that names a passage of the turn becomes a link to it
const CITATION = /[\[【［]\s*(\d{1,4}(?:\s*[,;，、\-–]\s*\d{1,4})*)\s*[\]】］]/g;
function answerHtml(turn, index) {
  const count = (turn.evidence || []).length;
  return escapeHtml(turn.answer).replace(CITATION, (whole, inner) => {
    const numbers = [];
    for (const part of inner.split(/\s*[,;，、]\s*/)) {
      const bounds = part.split(/\s*[-–]\s*/).map(Number);
      if (bounds.length === 2 && bounds[1] >= bounds[0] && bounds[1] - bounds[0] < 50) {
        for (let n = bounds[0]; n <= bounds[1]; n += 1) numbers.push(n);
      } else numbers.push(...bounds);
    }
    if (!numbers.length || numbers.some((n) => n < 1 || n > count)) return whole;
    return numbers.map((n) => `<a href="#" class="cite" data-turn="${index}" data-n="${n}" title="passage ${n}">[${n}]</a>`).join("");
  });
}

async function renderAsk([name]) {
  const collections = await api("/v1/collections");
  const chosen = name || (collections.data[0] && collections.data[0].name) || "";
  if (!chosen) {
    view.innerHTML = '<h1>Ask</h1><p class="muted">No collections yet: create one and add documents first.</p>';
    return;
  }
  const turns = conversation(chosen);
  let shown = turns.length - 1;  // the turn whose evidence the side panel lists
  const option = (value, current) => `<option ${value === current ? "selected" : ""}>${escapeHtml(value)}</option>`;
  view.innerHTML = `
    <h1>Ask</h1>
    <form class="card inline" id="ask-form">
      <label>Collection <select name="collection">${collections.data.map((c) => option(c.name, chosen)).join("")}</select></label>
      <label class="grow">Question <input name="question" required autocomplete="off" placeholder="Ask about these documents"></label>
      <label>Passages <input name="k" type="number" min="1" max="50" value="6" style="width:4.5rem"></label>
      <label>Mode <select name="mode">${["hybrid", "dense", "lexical"].map((m) => option(m, "hybrid")).join("")}</select></label>
      <button type="submit" id="ask-button">Ask</button>
      <button type="button" class="secondary" id="new-conversation">New conversation</button>
    </form>
    <div class="ask">
      <section id="conversation" aria-live="polite"></section>
      <aside class="evidence-panel"><h2>Evidence <span class="muted" id="evidence-for"></span></h2><ol id="evidence" class="evidence"></ol></aside>
    </div>`;
  const form = document.getElementById("ask-form");
  const turnHtml = (turn, index) => `
    <article class="turn" data-turn="${index}">
      <div class="question">${escapeHtml(turn.question)}</div>
      <div class="answer">${turn.answer ? answerHtml(turn, index) : (turn.pending ? '<span class="muted">Working…</span>' : "")}</div>
      ${turn.message ? `<p class="notice">${escapeHtml(turn.message)}</p>` : ""}
      ${turn.error ? `<p class="error" role="alert">${escapeHtml(turn.error)}</p>` : ""}
      ${turn.model ? `<div class="muted">answered by ${escapeHtml(turn.model)}</div>` : ""}
    </article>`;
  const drawEvidence = () => {
    const turn = turns[shown];
    const cited = new Set(((turn && turn.citations) || []).map((c) => c.number));
    document.getElementById("evidence-for").textContent = turn && turns.length > 1 ? `for question ${shown + 1}` : "";
    document.getElementById("evidence").innerHTML = ((turn && turn.evidence) || []).map((e) => `
      <li id="evidence-${e.number}" class="${cited.has(e.number) ? "cited" : ""}" data-n="${e.number}">
        <div class="where"><strong>[${e.number}]</strong> <a class="open" title="${escapeHtml(e.relative_path || e.name)}"
          href="#/doc/${encodeURIComponent(chosen)}/${e.doc_id}?chunk=${encodeURIComponent(e.chunk_id)}${e.page_start ? "&page=" + e.page_start : ""}">${escapeHtml(e.relative_path || e.name)}</a>
          ${pages(e)} ${e.heading_path.length ? "· " + escapeHtml(e.heading_path.join(" › ")) : ""}</div>
        <div class="snippet">${e.kind === "table" ? tableChunkHtml(e.text) : (e.highlights && e.highlights.length) ? e.highlights.join(" … ") : e.snippet}</div>
      </li>`).join("") || (turn && turn.pending ? '<li class="muted">Searching…</li>' : '<li class="muted">Ask a question: the passages it is answered from appear here.</li>');
  };
  const draw = () => {
    document.getElementById("conversation").innerHTML = turns.map(turnHtml).join("");
    drawEvidence();
  };
  const drawTurn = (index) => {
    const node = document.querySelector(`#conversation [data-turn="${index}"]`);
    if (node) node.outerHTML = turnHtml(turns[index], index);
  };
  draw();
  document.getElementById("conversation").addEventListener("click", (event) => {
    const link = event.target.closest("a.cite");
    if (!link) return;
    event.preventDefault();
    shown = Number(link.dataset.turn);
    drawEvidence();
    const item = document.getElementById(`evidence-${link.dataset.n}`);
    if (!item) return;
    item.classList.add("focus");
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
  });
  form.collection.addEventListener("change", () => { location.hash = "#/ask/" + encodeURIComponent(form.collection.value); });
  document.getElementById("new-conversation").addEventListener("click", () => {
    turns.length = 0;
    shown = -1;
    keepConversation(chosen, turns);
    draw();
    form.question.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = form.question.value.trim();
    if (!question) return;
    // the conversation the chat sees: the answered turns (a turn without an answer is left out)
    const history = turns.filter((t) => t.status === "answered")
      .flatMap((t) => [{ role: "user", content: t.question }, { role: "assistant", content: t.answer }]);
    const turn = { question, answer: "", evidence: [], citations: [], pending: true };
    const index = turns.push(turn) - 1;
    shown = index;
    form.question.value = "";
    const button = document.getElementById("ask-button");
    button.disabled = true;
    draw();
    const body = { question, history, k: Number(form.k.value || 6), mode: form.mode.value, stream: true };
    try {
      const response = await request(`/v1/collections/${encodeURIComponent(chosen)}/ask`,
        { method: "POST", json: body, headers: { Accept: "text/event-stream" } });
      if (!response.ok || !response.body) throw new Error(await errorOf(response));
      await readEvents(response, (type, data) => {
        const payload = JSON.parse(data);
        if (type === "evidence") { turn.evidence = payload.evidence; if (shown === index) drawEvidence(); }
        else if (type === "token") { turn.answer += payload.text; drawTurn(index); }
        else if (type === "done") {
          Object.assign(turn, { answer: payload.answer, citations: payload.citations, status: payload.status,
                                message: payload.message, model: payload.model });
        } else if (type === "error") turn.error = payload.message;
      });
      if (!turn.status && !turn.error) turn.error = "The answer stopped before it was complete; ask again.";
    } catch (error) { turn.error = error.message; }
    turn.pending = false;
    keepConversation(chosen, turns);
    button.disabled = false;
    draw();
  });
  form.question.focus();
}

// A table chunk (kind "table": Markdown pipe rows, the header row and its separator line first, as
// every piece of a split table has them) drawn as a table, so a cited row reads under its column names.
function tableChunkHtml(text) {
  const cells = (line) => line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "").split(/(?<!\\)\|/)
    .map((cell) => escapeHtml(cell.trim().replace(/\\\|/g, "|")));
  const [header, , ...rows] = text.split("\n");
  const row = (line, tag) => `<tr>${cells(line).map((cell) => `<${tag}>${cell}</${tag}>`).join("")}</tr>`;
  return `<div class="chunk-table"><table><thead>${row(header, "th")}</thead>` +
    `<tbody>${rows.map((line) => row(line, "td")).join("")}</tbody></table></div>`;
}

// ---------- document viewer ----------
// Chunks overlap by design: the text is rendered once, pieced together from the chunks' character
// spans (char_start/char_end count code points, hence Array.from), the cited chunk's span marked.
function documentText(chunks, cited) {
  const sorted = chunks.slice().sort((a, b) => a.char_start - b.char_start || a.char_end - b.char_end);
  let html = "", cursor = null;
  for (const chunk of sorted) {
    if (cursor !== null && chunk.char_end <= cursor) continue;
    const from = cursor === null ? chunk.char_start : Math.max(chunk.char_start, cursor);
    if (cursor !== null && chunk.char_start > cursor) html += "\n\n";  // text between chunks is not stored
    const chars = Array.from(chunk.text);
    // a later piece of a split table repeats the header row ahead of its span: skip that prefix
    const skip = chars.length - (chunk.char_end - chunk.char_start);
    const cuts = [from, chunk.char_end];
    if (cited) for (const p of [cited.char_start, cited.char_end]) if (p > from && p < chunk.char_end) cuts.push(p);
    cuts.sort((a, b) => a - b);
    for (let i = 0; i + 1 < cuts.length; i += 1) {
      const [a, b] = [cuts[i], cuts[i + 1]];
      if (b <= a) continue;
      const piece = escapeHtml(chars.slice(a - chunk.char_start + skip, b - chunk.char_start + skip).join(""));
      html += cited && a >= cited.char_start && b <= cited.char_end ? `<mark class="cited">${piece}</mark>` : piece;
    }
    cursor = chunk.char_end;
  }
  return html;
}

// Scanned documents (kb/ocr.py): images are shown page by page like PDFs, and a page whose text
// was recognised by OCR says so beside the rendered page, so a citation can be checked by eye.
function hasPageImages(doc) {
  return doc.file_type === "pdf" || doc.file_type === "image";
}

function ocrNote(doc, page) {
  return (doc.ocr_pages || []).includes(page) ? ` · text recognised by OCR (${doc.ocr_engine})` : "";
}

async function renderDocument([collection, docId], params) {
  const base = `/v1/collections/${encodeURIComponent(collection)}/documents/${docId}`;
  const doc = await api(base);
  const citedId = params.get("chunk");
  const cited = doc.chunks.find((c) => c.id === citedId);
  let page = Number(params.get("page") || (cited && cited.page_start) || 1);
  const isPdf = hasPageImages(doc);
  const shown = doc.relative_path || doc.name;
  view.innerHTML = `
    <h1 class="name" title="${escapeHtml(shown)}">${escapeHtml(shown)}</h1>
    <p class="muted">${escapeHtml(doc.file_type)} · ${doc.chunks.length} chunks ${doc.pages ? "· " + doc.pages + " pages" : ""} ·
      <button class="link" id="download" type="button">original file</button></p>
    ${doc.warning ? `<p class="muted" id="document-warning">${escapeHtml(doc.warning)}</p>` : ""}
    ${cited ? `<p class="muted" id="cited-where">Cited passage: ${pages(cited)} ${cited.heading_path.length ? escapeHtml(cited.heading_path.join(" › ")) : ""}</p>` : ""}
    ${isPdf ? `<p><button class="secondary" id="prev" type="button">‹ Previous</button>
      <span id="page-label"></span> <button class="secondary" id="next" type="button">Next ›</button></p>` : ""}
    <div class="${isPdf ? "viewer" : ""}">
      ${isPdf ? '<div class="page"><img id="page-image" alt="PDF page" hidden></div>' : ""}
      <div id="document-text" class="document-text"></div>
    </div>`;
  document.getElementById("download").addEventListener("click", async () => {
    try {
      const url = await blobUrl(`${base}/file`);
      pageUrls.push(url);
      const link = document.createElement("a");
      link.href = url;
      link.download = doc.name;
      document.body.appendChild(link);
      link.click();
      link.remove();
    } catch (error) { toast(error.message); }
  });
  const show = async () => {
    const chunks = isPdf ? doc.chunks.filter((c) => c.page_start <= page && page <= c.page_end) : doc.chunks;
    document.getElementById("document-text").innerHTML = documentText(chunks, cited) || '<p class="muted">No text on this page.</p>';
    const target = document.querySelector("#document-text mark.cited");
    if (target) target.scrollIntoView({ block: "center" });
    if (isPdf) {
      document.getElementById("page-label").textContent = `page ${page} of ${doc.pages}${ocrNote(doc, page)}`;
      const shownPage = page;
      try {
        const url = await blobUrl(`${base}/pages/${shownPage}.png`);
        pageUrls.push(url);
        if (shownPage === page) {
          const image = document.getElementById("page-image");
          image.src = url;
          image.hidden = false;
        }
      } catch (error) { toast(error.message); }
    }
  };
  if (isPdf) {
    document.getElementById("prev").addEventListener("click", () => { if (page > 1) { page -= 1; show(); } });
    document.getElementById("next").addEventListener("click", () => { if (page < doc.pages) { page += 1; show(); } });
  }
  await show();
}

// ---------- embedding playground ----------
async function renderPlayground() {
  const models = await api("/v1/models");
  view.innerHTML = `
    <h1>Embedding playground</h1>
    <form class="card" id="play-form">
      <label>Texts, one per line <textarea name="texts">What is the capital of China?
The capital of China is Beijing.
Gravity is a force that attracts two bodies towards each other.
北京是中国的首都。</textarea></label>
      <div class="inline" style="display:flex;gap:.6rem;align-items:end;margin-top:.6rem">
        <label>Model <select name="model">${embeddingModels(models).map((m) => `<option value="${escapeHtml(m.id)}" data-mrl="${(m.mrl_dimensions || []).join(",")}">${escapeHtml(m.id)}</option>`).join("")}</select></label>
        <label>Dimensions (MRL) <select name="dimensions"></select></label>
        <label>Embed as <select name="input_type"><option value="document">documents</option><option value="query">queries</option></select></label>
        <button type="submit">Compare</button>
      </div>
    </form>
    <div id="heatmap"></div>`;
  const form = document.getElementById("play-form");
  const fillDimensions = () => {
    const option = form.model.selectedOptions[0];
    const model = models.data.find((m) => m.id === option.value);
    const sizes = model.mrl_dimensions || [model.dimensions];
    form.dimensions.innerHTML = sizes.slice().reverse().map((d) => `<option>${d}</option>`).join("");
  };
  form.model.addEventListener("change", fillDimensions);
  fillDimensions();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const texts = form.texts.value.split("\n").map((t) => t.trim()).filter(Boolean);
    const body = { model: form.model.value, input: texts, input_type: form.input_type.value, dimensions: Number(form.dimensions.value) };
    try {
      const result = await api("/v1/embeddings", { method: "POST", json: body });
      const vectors = result.data.map((d) => d.embedding);
      const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);
      const cell = (v) => `background:hsl(${Math.round(220 - 220 * Math.max(0, v))},70%,${Math.round(92 - 35 * Math.max(0, v))}%)`;
      document.getElementById("heatmap").innerHTML = `
        <p class="muted">Cosine similarity, ${result.model}, ${vectors[0].length} dimensions, ${result.usage.prompt_tokens} tokens</p>
        <table class="heatmap"><tr><th></th>${texts.map((_, i) => `<th>${i + 1}</th>`).join("")}</tr>
        ${vectors.map((a, i) => `<tr><th title="${escapeHtml(texts[i])}">${i + 1}. ${escapeHtml(texts[i].slice(0, 40))}</th>${vectors.map((b) => {
          const v = dot(a, b); return `<td style="${cell(v)}">${v.toFixed(3)}</td>`; }).join("")}</tr>`).join("")}</table>`;
    } catch (error) { toast(error.message); }
  });
}

// ---------- API keys of the signed-in user (GET/POST/DELETE /v1/auth/keys) ----------
function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
async function renderKeys() {
  if (!account.enabled) {
    view.innerHTML = '<h1>API keys</h1><p class="muted">Accounts are off on this server: it uses the keys it was started with (embedhub serve --api-key).</p>';
    return;
  }
  const keys = await api("/v1/auth/keys");
  view.innerHTML = `
    <h1>API keys</h1>
    <p class="muted">A key lets a program act as you (${escapeHtml(account.user.name)}, ${escapeHtml(account.user.role)}): it sends
      <code>Authorization: Bearer KEY</code>, or passes the key as an OpenAI SDK's <code>api_key</code>.</p>
    <form class="card inline" id="create-key-form">
      <label class="grow">Name <input name="name" required maxlength="100" autocomplete="off" placeholder="laptop scripts"></label>
      <button type="submit">Create key</button>
    </form>
    <div id="new-key"></div>
    <table class="fixed keys"><thead><tr><th class="name">Name</th><th class="prefix">Key</th><th>Created</th><th>Last used</th><th class="actions"></th></tr></thead>
      <tbody id="key-list"></tbody></table>`;
  const list = document.getElementById("key-list");
  const draw = (data) => {
    list.innerHTML = data.map((key) => `
      <tr data-key="${escapeHtml(key.id)}">
        <td class="name" title="${escapeHtml(key.name)}">${escapeHtml(key.name)}</td>
        <td><code>${escapeHtml(key.prefix)}…</code></td>
        <td>${escapeHtml(when(key.created))}</td>
        <td>${key.last_used ? escapeHtml(when(key.last_used)) : '<span class="muted">never</span>'}</td>
        <td class="actions"><button class="secondary revoke" type="button" data-id="${escapeHtml(key.id)}" data-name="${escapeHtml(key.name)}">Revoke</button></td>
      </tr>`).join("") || '<tr><td class="muted" colspan="5">No keys yet.</td></tr>';
  };
  draw(keys.data);
  const form = document.getElementById("create-key-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("/v1/auth/keys", { method: "POST", json: { name: form.elements.name.value.trim() } });
      form.reset();
      // the secret exists only in this answer: shown once, with a copy button
      document.getElementById("new-key").innerHTML = `
        <div class="card new-key" role="status">
          <p><strong>Key “${escapeHtml(created.name)}” created.</strong> Copy it now: it will not be shown again.</p>
          <div class="copy-row">
            <input id="new-key-value" readonly aria-label="The new key" value="${escapeHtml(created.key)}">
            <button type="button" id="copy-key">Copy</button>
          </div>
          <p class="muted" id="copy-state" aria-live="polite"></p>
          <button type="button" class="secondary" id="new-key-done">Done, I have copied it</button>
        </div>`;
      const field = document.getElementById("new-key-value");
      field.focus();
      field.select();
      document.getElementById("copy-key").addEventListener("click", async () => {
        const state = document.getElementById("copy-state");
        try { await navigator.clipboard.writeText(created.key); } catch {
          field.select();  // no clipboard API (a plain-http page that is not this machine)
          if (!document.execCommand("copy")) { state.textContent = "Copying was refused: select the key and copy it yourself."; return; }
        }
        state.textContent = "Copied.";
      });
      document.getElementById("new-key-done").addEventListener("click", () => { document.getElementById("new-key").innerHTML = ""; });
      draw((await api("/v1/auth/keys")).data);
    } catch (error) { toast(error.message); }
  });
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button.revoke");
    if (!button) return;
    if (!confirm(`Revoke the key “${button.dataset.name}”? Programs that use it will be refused from now on.`)) return;
    try {
      await api(`/v1/auth/keys/${encodeURIComponent(button.dataset.id)}`, { method: "DELETE" });
      draw((await api("/v1/auth/keys")).data);
    } catch (error) { toast(error.message); }
  });
}

// ---------- audit log (admins; GET /v1/audit pages backwards with `before`, an entry id) ----------
const AUDIT_PAGE = 50;
async function renderAudit() {
  const first = await api(`/v1/audit?limit=${AUDIT_PAGE}`);
  view.innerHTML = `
    <h1>Audit log</h1>
    <p class="muted">Who uploaded, deleted, shared and dropped what, newest first.</p>
    <table class="fixed audit"><thead><tr><th class="time">Time</th><th class="user">User</th><th class="action">Action</th><th class="name">Collection</th><th class="detail">Detail</th></tr></thead>
      <tbody id="audit-rows"></tbody></table>
    <p><button type="button" class="secondary" id="audit-more" hidden>Older entries</button></p>`;
  const rows = document.getElementById("audit-rows");
  const more = document.getElementById("audit-more");
  let before = null;
  const add = (page) => {
    rows.insertAdjacentHTML("beforeend", page.data.map((entry) => {
      const detail = typeof entry.detail === "string" ? entry.detail : (entry.detail ? JSON.stringify(entry.detail) : "");
      return `<tr><td>${escapeHtml(when(entry.time))}</td><td>${escapeHtml(entry.user || "")}</td><td>${escapeHtml(entry.action)}</td>
        <td class="name" title="${escapeHtml(entry.collection || "")}">${escapeHtml(entry.collection || "")}</td>
        <td class="detail" title="${escapeHtml(detail)}">${escapeHtml(detail)}</td></tr>`;
    }).join(""));
    if (!rows.children.length) rows.innerHTML = '<tr><td class="muted" colspan="5">Nothing recorded yet.</td></tr>';
    const last = page.data[page.data.length - 1];
    more.hidden = page.data.length < AUDIT_PAGE;
    if (last) before = last.id;
  };
  add(first);
  more.addEventListener("click", async () => {
    more.disabled = true;
    try { add(await api(`/v1/audit?limit=${AUDIT_PAGE}&before=${encodeURIComponent(before)}`)); } catch (error) { toast(error.message); }
    more.disabled = false;
  });
}

// ---------- settings ----------
async function renderSettings() {
  const info = await api("/v1/info");
  view.innerHTML = `
    <h1>Settings</h1>
    <div class="card"><dl class="settings">
      ${info.models.map((m) => `<dt>Model</dt><dd>${escapeHtml(m.id)} · ${m.dimensions} dims · up to ${m.max_tokens} tokens
        ${m.mrl_dimensions ? "· MRL " + m.mrl_dimensions[0] + "–" + m.dimensions : ""} ${m.random_weights ? "· <strong>random weights</strong>" : ""}</dd>`).join("")}
      <dt>Reranker</dt><dd>${info.reranker ? `${escapeHtml(info.reranker.id)} · up to ${info.reranker.max_tokens} tokens ${info.reranker.random_weights ? "· <strong>random weights</strong>" : ""}` : "none (embedhub serve --reranker NAME)"}</dd>
      <dt>Store</dt><dd>${escapeHtml(info.store)} (embedded) in ${escapeHtml(info.home)}</dd>
      <dt>Collections</dt><dd>${info.collections}</dd>
      ${account.enabled ? `<dt>Accounts</dt><dd>on: signed in as ${escapeHtml(account.user.name)} (${escapeHtml(account.user.role)})</dd>
      <dt>API keys</dt><dd>each user's own (<a href="#/keys">yours</a>)${info.auth ? " and the server's shared keys" : ""}</dd>`
        : `<dt>API keys</dt><dd>${info.auth ? "required" : "off (loopback only)"}</dd>`}
      <dt>Limits</dt><dd>${info.max_items_per_request} inputs per request · ${Math.round(info.max_upload_bytes / 1048576)} MiB per upload</dd>
      <dt>Version</dt><dd>${escapeHtml(info.version)}</dd>
    </dl></div>`;
}

start();
