// embedhub web UI: plain JavaScript, no external assets. It talks to the HTTP API only.
"use strict";

const view = document.getElementById("view");
const keyDialog = document.getElementById("key-dialog");
let eventSource = null;

// ---------- API access (with the API key when the server asks for one) ----------
function apiKey() { return localStorage.getItem("embedhub-api-key") || ""; }
function withKey(url) {
  const key = apiKey();
  return key ? url + (url.includes("?") ? "&" : "?") + "api_key=" + encodeURIComponent(key) : url;
}
function askForKey() {
  return new Promise((resolve) => {
    document.getElementById("key-input").value = "";
    keyDialog.showModal();
    keyDialog.addEventListener("close", () => {
      localStorage.setItem("embedhub-api-key", document.getElementById("key-input").value.trim());
      document.getElementById("key-button").hidden = false;
      resolve();
    }, { once: true });
  });
}
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    await askForKey();
    return api(path, options);
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}
function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function toast(message) {
  const node = document.createElement("div");
  node.className = "toast";
  node.textContent = message;
  document.body.appendChild(node);
  setTimeout(() => node.remove(), 4000);
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
  doc: renderDocument,
  playground: renderPlayground,
  settings: renderSettings,
};
async function route() {
  if (eventSource) { eventSource.close(); eventSource = null; }
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = routes[parts[0]] ? parts[0] : "collections";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  try {
    await routes[page](parts.slice(1), new URLSearchParams(query || ""));
  } catch (error) {
    view.innerHTML = `<div class="card error" role="alert">${escapeHtml(error.message)}</div>`;
  }
}
window.addEventListener("hashchange", route);
document.getElementById("key-button").addEventListener("click", askForKey);
if (apiKey()) document.getElementById("key-button").hidden = false;

// ---------- collections ----------
async function renderCollections() {
  const [collections, models] = await Promise.all([api("/v1/collections"), api("/v1/models")]);
  const options = models.data.map((m) => `<option value="${escapeHtml(m.id)}">${escapeHtml(m.id)} (${m.dimensions} dims)</option>`).join("");
  view.innerHTML = `
    <h1>Collections</h1>
    <form class="card inline" id="create-form">
      <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}" placeholder="my-docs"></label>
      <label>Model <select name="model">${options}</select></label>
      <label>Dimensions <input name="dimensions" type="number" min="32" placeholder="native"></label>
      <button type="submit">Create collection</button>
    </form>
    <div class="grid" id="collection-list">
      ${collections.data.map((c) => `
        <a class="card" href="#/collection/${encodeURIComponent(c.name)}" style="text-decoration:none;color:inherit">
          <strong>${escapeHtml(c.name)}</strong>
          <div class="muted">${escapeHtml(c.model)} · ${c.dimensions} dims</div>
          <div>${c.done} documents · ${c.stored_chunks} chunks${c.failed ? ` · <span class="error">${c.failed} failed</span>` : ""}</div>
        </a>`).join("") || '<p class="muted">No collections yet: create one above.</p>'}
    </div>`;
  document.getElementById("create-form").addEventListener("submit", async (event) => {
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

const STAGE_PROGRESS = { queued: 5, parsing: 35, embedding: 70, done: 100, failed: 100, cancelled: 100 };

function jobRow(job) {
  const retry = job.status === "failed" || job.status === "cancelled"
    ? `<button class="secondary retry" data-job="${job.id}" type="button">Retry</button>` : "";
  const cancel = job.status === "queued" ? `<button class="secondary cancel" data-job="${job.id}" type="button">Cancel</button>` : "";
  return `<tr id="job-${job.id}" data-status="${job.status}">
    <td>${escapeHtml(job.name)}</td>
    <td><progress max="100" value="${STAGE_PROGRESS[job.status] ?? 0}"></progress></td>
    <td><span class="status ${job.status}">${job.status}</span> ${job.chunks ? `${job.chunks} chunks` : ""}</td>
    <td class="error">${escapeHtml(job.error || "")}</td>
    <td>${retry}${cancel}</td></tr>`;
}

async function renderCollection([name]) {
  const [info, jobs, documents] = await Promise.all([
    api(`/v1/collections/${encodeURIComponent(name)}`),
    api(`/v1/collections/${encodeURIComponent(name)}/jobs`),
    api(`/v1/collections/${encodeURIComponent(name)}/documents`),
  ]);
  view.innerHTML = `
    <h1>${escapeHtml(name)}</h1>
    <p class="muted">${escapeHtml(info.model)} · ${info.dimensions} dims · chunks of ${info.chunk_tokens} tokens ·
      <span id="summary-counts">${info.done} documents · ${info.stored_chunks} chunks</span> ·
      <a href="#/search?collection=${encodeURIComponent(name)}">search this collection</a></p>
    <div class="dropzone" id="dropzone">
      <p><strong>Drop files or folders here</strong></p>
      <p class="muted">PDF, DOCX, Markdown, HTML, text and source code</p>
      <input type="file" id="file-input" multiple aria-label="Choose files">
      <input type="file" id="folder-input" webkitdirectory multiple aria-label="Choose a folder">
    </div>
    <h2>Processing</h2>
    <table><thead><tr><th>File</th><th>Progress</th><th>Status</th><th>Reason</th><th></th></tr></thead>
      <tbody id="jobs">${jobs.data.map(jobRow).join("")}</tbody></table>
    <h2>Failures</h2>
    <ul id="failures"></ul>
    <h2>Documents</h2>
    <table><thead><tr><th>File</th><th>Type</th><th>Pages</th><th>Chunks</th><th>Status</th><th></th></tr></thead>
      <tbody id="documents">${documentRows(name, documents.data)}</tbody></table>
    <p><button class="secondary" id="drop-collection" type="button">Drop collection</button></p>`;
  const updateFailures = () => {
    const rows = [...document.querySelectorAll("#jobs tr[data-status=failed]")];
    document.getElementById("failures").innerHTML = rows.map((row) =>
      `<li>${escapeHtml(row.cells[0].textContent)}: <span class="error">${escapeHtml(row.cells[3].textContent)}</span></li>`).join("") || '<li class="muted">none</li>';
  };
  updateFailures();
  const upload = async (files) => {
    if (!files.length) return;
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    try {
      const result = await api(`/v1/collections/${encodeURIComponent(name)}/files`, { method: "POST", body: form });
      for (const job of result.jobs) upsertJob(job);
      for (const rejected of result.rejected) toast(rejected.error);
    } catch (error) { toast(error.message); }
  };
  const refreshDocuments = async () => {
    const [fresh, docs] = await Promise.all([
      api(`/v1/collections/${encodeURIComponent(name)}`),
      api(`/v1/collections/${encodeURIComponent(name)}/documents`),
    ]);
    document.getElementById("documents").innerHTML = documentRows(name, docs.data);
    document.getElementById("summary-counts").textContent = `${fresh.done} documents · ${fresh.stored_chunks} chunks`;
  };
  const upsertJob = (job) => {
    const existing = document.getElementById("job-" + job.id);
    const html = jobRow(job);
    if (existing) existing.outerHTML = html; else document.getElementById("jobs").insertAdjacentHTML("beforeend", html);
    updateFailures();
    if (job.status === "done" || job.status === "failed") refreshDocuments().catch(() => {});
  };
  const zone = document.getElementById("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const entries = [...e.dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const files = entries.length ? (await Promise.all(entries.map(readEntry))).flat() : [...e.dataTransfer.files];
    upload(files);
  });
  document.getElementById("file-input").addEventListener("change", (e) => upload([...e.target.files]));
  document.getElementById("folder-input").addEventListener("change", (e) => upload([...e.target.files]));
  document.getElementById("jobs").addEventListener("click", async (e) => {
    const id = e.target.dataset.job;
    if (!id) return;
    const action = e.target.classList.contains("retry") ? "retry" : "cancel";
    try { upsertJob(await api(`/v1/jobs/${id}/${action}`, { method: "POST" })); } catch (error) { toast(error.message); }
  });
  document.getElementById("documents").addEventListener("click", async (e) => {
    if (!e.target.dataset.doc) return;
    await api(`/v1/collections/${encodeURIComponent(name)}/documents/${e.target.dataset.doc}`, { method: "DELETE" });
    route();
  });
  document.getElementById("drop-collection").addEventListener("click", async () => {
    if (!confirm(`Drop collection ${name} and everything in it?`)) return;
    await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
    location.hash = "#/collections";
  });
  eventSource = new EventSource(withKey(`/v1/collections/${encodeURIComponent(name)}/events`));
  eventSource.addEventListener("job", (event) => upsertJob(JSON.parse(event.data)));
}

function documentRows(name, documents) {
  return documents.map((d) => `<tr>
    <td><a href="#/doc/${encodeURIComponent(name)}/${d.doc_id}">${escapeHtml(d.name)}</a></td>
    <td>${escapeHtml(d.file_type || "")}</td><td>${d.pages ?? ""}</td><td>${d.chunks ?? 0}</td>
    <td><span class="status ${d.status}">${d.status}</span> <span class="error">${escapeHtml(d.error || "")}</span></td>
    <td><button class="secondary delete-doc" data-doc="${d.doc_id}" type="button">Delete</button></td></tr>`).join("");
}

function readEntry(entry) {
  if (entry.isFile) return new Promise((resolve) => entry.file((file) => resolve([file]), () => resolve([])));
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

// ---------- search ----------
async function renderSearch(_, params) {
  const collections = await api("/v1/collections");
  const chosen = params.get("collection") || (collections.data[0] && collections.data[0].name) || "";
  view.innerHTML = `
    <h1>Search</h1>
    <form class="card inline" id="search-form">
      <label>Collection <select name="collection">${collections.data.map((c) =>
        `<option ${c.name === chosen ? "selected" : ""}>${escapeHtml(c.name)}</option>`).join("")}</select></label>
      <label style="flex:1">Query <input name="query" required value="${escapeHtml(params.get("q") || "")}"></label>
      <label>Mode <select name="mode"><option>hybrid</option><option>dense</option><option>lexical</option></select></label>
      <label>Results <input name="k" type="number" min="1" max="200" value="10" style="width:5rem"></label>
      <label>File type <select name="type"><option value="">any</option><option>pdf</option><option>docx</option>
        <option>markdown</option><option>html</option><option>text</option><option>code</option></select></label>
      <label>Path glob <input name="path" placeholder="*.pdf" style="width:8rem"></label>
      <button type="submit">Search</button>
    </form>
    <div id="results"></div>`;
  const form = document.getElementById("search-form");
  const run = async () => {
    const data = new FormData(form);
    const body = { query: data.get("query"), mode: data.get("mode"), k: Number(data.get("k") || 10) };
    if (data.get("type")) body.file_types = [data.get("type")];
    if (data.get("path")) body.path_glob = data.get("path");
    const collection = data.get("collection");
    const results = document.getElementById("results");
    results.innerHTML = '<p class="muted">Searching…</p>';
    try {
      const found = await api(`/v1/collections/${encodeURIComponent(collection)}/search`, { method: "POST", json: body });
      results.innerHTML = found.results.map((r, i) => `
        <article class="result">
          <div class="where"><strong>${i + 1}. <a class="open" href="#/doc/${encodeURIComponent(collection)}/${r.doc_id}?chunk=${encodeURIComponent(r.chunk_id)}${r.page_start ? "&page=" + r.page_start : ""}">${escapeHtml(r.name)}</a></strong>
            ${pages(r)} ${r.heading_path.length ? "· " + escapeHtml(r.heading_path.join(" › ")) : ""}
            · score ${r.score.toFixed(4)} · ${escapeHtml(r.retrievers.join(" + "))}</div>
          <div class="snippet">${r.snippet}</div>
        </article>`).join("") || '<p class="muted">No results.</p>';
    } catch (error) { results.innerHTML = `<p class="error">${escapeHtml(error.message)}</p>`; }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
  if (params.get("q")) run();
}

// ---------- document viewer ----------
async function renderDocument([collection, docId], params) {
  const doc = await api(`/v1/collections/${encodeURIComponent(collection)}/documents/${docId}`);
  const citedId = params.get("chunk");
  const cited = doc.chunks.find((c) => c.id === citedId);
  let page = Number(params.get("page") || (cited && cited.page_start) || 1);
  const isPdf = doc.file_type === "pdf";
  view.innerHTML = `
    <h1>${escapeHtml(doc.name)}</h1>
    <p class="muted">${escapeHtml(doc.file_type)} · ${doc.chunks.length} chunks ${doc.pages ? "· " + doc.pages + " pages" : ""} ·
      <a href="${withKey(`/v1/collections/${encodeURIComponent(collection)}/documents/${docId}/file`)}">original file</a></p>
    ${isPdf ? `<p><button class="secondary" id="prev" type="button">‹ Previous</button>
      <span id="page-label"></span> <button class="secondary" id="next" type="button">Next ›</button></p>` : ""}
    <div class="${isPdf ? "viewer" : ""}">
      ${isPdf ? '<img id="page-image" alt="PDF page">' : ""}
      <div id="chunks"></div>
    </div>`;
  const show = () => {
    const chunks = isPdf ? doc.chunks.filter((c) => c.page_start <= page && page <= c.page_end) : doc.chunks;
    document.getElementById("chunks").innerHTML = chunks.map((c) => `<div class="chunk ${c.id === citedId ? "cited" : ""}" id="chunk-${c.index}"><div class="muted">${pages(c)} ${c.heading_path.length ? escapeHtml(c.heading_path.join(" › ")) : ""}</div>${c.id === citedId ? `<mark>${escapeHtml(c.text)}</mark>` : escapeHtml(c.text)}</div>`).join("");
    if (isPdf) {
      document.getElementById("page-image").src = withKey(`/v1/collections/${encodeURIComponent(collection)}/documents/${docId}/pages/${page}.png`);
      document.getElementById("page-label").textContent = `page ${page} of ${doc.pages}`;
    }
    const target = document.querySelector(".chunk.cited");
    if (target) target.scrollIntoView({ block: "center" });
  };
  if (isPdf) {
    document.getElementById("prev").addEventListener("click", () => { if (page > 1) { page -= 1; show(); } });
    document.getElementById("next").addEventListener("click", () => { if (page < doc.pages) { page += 1; show(); } });
  }
  show();
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
        <label>Model <select name="model">${models.data.map((m) => `<option value="${escapeHtml(m.id)}" data-mrl="${(m.mrl_dimensions || []).join(",")}">${escapeHtml(m.id)}</option>`).join("")}</select></label>
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

// ---------- settings ----------
async function renderSettings() {
  const info = await api("/v1/info");
  view.innerHTML = `
    <h1>Settings</h1>
    <div class="card"><dl class="settings">
      ${info.models.map((m) => `<dt>Model</dt><dd>${escapeHtml(m.id)} · ${m.dimensions} dims · up to ${m.max_tokens} tokens
        ${m.mrl_dimensions ? "· MRL " + m.mrl_dimensions[0] + "–" + m.dimensions : ""} ${m.random_weights ? "· <strong>random weights</strong>" : ""}</dd>`).join("")}
      <dt>Store</dt><dd>${escapeHtml(info.store)} (embedded) in ${escapeHtml(info.home)}</dd>
      <dt>Collections</dt><dd>${info.collections}</dd>
      <dt>API keys</dt><dd>${info.auth ? "required" : "off (loopback only)"}</dd>
      <dt>Limits</dt><dd>${info.max_items_per_request} inputs per request · ${Math.round(info.max_upload_bytes / 1048576)} MiB per upload</dd>
      <dt>Version</dt><dd>${escapeHtml(info.version)}</dd>
    </dl></div>`;
}

route();
