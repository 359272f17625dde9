// styletransfer studio: the one page.  Plain JavaScript, no build step, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { options: null, presets: {}, instantOptions: [], content: null, contentURL: null, styles: [], masks: [], styleMasks: [], fineStyle: null, contentSize: null, job: null, source: null, lastPreview: 0, historyPages: 1, view: "instant" };

async function api(path, init) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, init || {}));
  let body = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) body = await response.json();
  if (!response.ok) {
    const error = new Error((body && body.detail) || response.statusText);
    error.field = body && body.field;
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

// --- the form, from /api/options ------------------------------------------------------------------
// Under "More options": these first, the rest after them.  Size and strength have their own controls.
const MAIN = ["steps", "style_weight", "content_weight", "tv_weight", "preserve_colors", "init", "seed"];
const OWN_CONTROLS = ["preset", "time", "size", "strength"];

function fieldFor(o) {
  const id = "opt-" + o.name;
  let input;
  if (o.choices && !o.many) {
    input = el("select", { id, name: o.name }, el("option", { value: "" }, o.from_preset ? "(preset)" : "(default)"));
    for (const c of o.choices) input.append(el("option", { value: c }, c));
  } else if (o.name === "init") {
    input = el("select", { id, name: o.name }, el("option", { value: "" }, "(preset)"));
    for (const c of ["content", "noise", "style"]) input.append(el("option", { value: c }, c));
  } else if ((o.type === "int" || o.type === "float") && !o.many) {
    input = el("input", { id, name: o.name, type: "number", step: o.type === "int" ? "1" : "any", min: o.minimum, max: o.name === "size" ? state.maxSize : o.maximum, inputmode: o.type === "int" ? "numeric" : "decimal" });
  } else {
    input = el("input", { id, name: o.name, type: "text", placeholder: o.many ? "comma-separated" : "" });
  }
  input.dataset.type = o.type;
  input.dataset.many = o.many ? "1" : "";
  watch(input, o.name);
  return el("div", { class: "field" }, el("label", { for: id }, o.name.replace(/_/g, " ")), input, el("small", { class: "help", id: "help-" + o.name, title: o.help }, o.help));
}

// an option's control changed: the estimate is made again, and the instant picture when the option is one of its
function watch(input, name) {
  const changed = (delay) => {
    clearErrors();
    scheduleEstimate();
    if (state.instantOptions.includes(name)) { state.view = "instant"; requestInstant(delay); }
  };
  input.addEventListener("input", () => changed(300));
  input.addEventListener("change", () => changed(0));
}

function showPresetValues() {
  const p = state.presets[$("opt-preset").value || "fast"] || {};
  $("preset-help").textContent = p.description || "";
  for (const o of state.options) {
    const input = $("opt-" + o.name);
    if (!input || !o.from_preset || input.tagName !== "INPUT") continue;
    const v = p[o.name];
    input.placeholder = v === null || v === undefined ? (o.many ? "comma-separated" : "") : (Array.isArray(v) ? v.join(",") : String(v));
  }
}

function formOptions() {
  const out = {};
  const preset = $("opt-preset").value;
  if (preset) out.preset = preset;
  for (const o of state.options) {
    if (!o.web || o.name === "preset" || o.name === "strength") continue;  // strength: the instant picture's alone
    const input = $("opt-" + o.name);
    const text = input.value.trim();
    if (text === "") continue;
    if (o.many) {
      const items = text.split(",").map((t) => t.trim()).filter(Boolean);
      out[o.name] = o.type === "str" ? items : items.map(Number);
    } else if (o.type === "int" || o.type === "float") out[o.name] = Number(text);
    else out[o.name] = text;
  }
  return out;
}

// the instant picture's options: those of the form it uses, and the strength
function instantOptions() {
  const out = { preset: "instant", strength: Number($("opt-strength").value) };
  for (const [k, v] of Object.entries(formOptions())) if (k !== "preset" && state.instantOptions.includes(k)) out[k] = v;
  return out;
}

// the Time control's choices are seconds; a job given another budget (through the API) gets its own choice
function timeLabel(seconds) {
  return seconds % 60 === 0 ? seconds / 60 + " min" : seconds + " s";
}

function setFormOptions(options) {
  $("opt-preset").value = options.preset && options.preset !== "instant" ? options.preset : "";
  $("opt-strength").value = options.strength === undefined || options.strength === null ? "1" : String(options.strength);
  $("strength-value").textContent = $("opt-strength").value;
  for (const o of state.options) {
    const input = $("opt-" + o.name);
    if (!input || o.name === "preset" || o.name === "strength") continue;
    const v = options[o.name];
    const text = v === undefined || v === null ? "" : (Array.isArray(v) ? v.join(",") : String(v));
    if (input.tagName === "SELECT" && text !== "" && !Array.from(input.options).some((c) => c.value === text)) {
      input.append(el("option", { value: text }, o.name === "time" ? timeLabel(Number(text)) : text));
    }
    input.value = text;
  }
  showPresetValues();
  scheduleEstimate();
}

function clearErrors() {
  for (const n of document.querySelectorAll("[aria-invalid=true]")) n.removeAttribute("aria-invalid");
  for (const n of document.querySelectorAll(".field-error")) n.textContent = "";
}

function markError(error) {
  const field = error.field;
  const input = field && ($("opt-" + field) || $(field + "-file"));
  if (input) {
    const details = input.closest("details");
    if (details) details.open = true;  // a field under "More options" is shown
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  const box = field === "content" ? $("err-content") : field === "style" ? $("err-style") : $("err-options");
  box.textContent = error.message;
}

// --- pictures --------------------------------------------------------------------------------------
function thumb(file) {
  const img = el("img", { alt: file.name });
  img.src = URL.createObjectURL(file);
  return img;
}

// a picture was chosen at ``chosen`` (performance.now(); an example's choice counts from before its download)
function setContent(file, chosen) {
  state.content = file;
  $("content-thumbs").replaceChildren(thumb(file));
  const probe = new Image();
  probe.onload = () => { state.contentSize = [probe.naturalWidth, probe.naturalHeight]; scheduleEstimate(); };
  if (state.contentURL) URL.revokeObjectURL(state.contentURL);
  state.contentURL = URL.createObjectURL(file);
  probe.src = state.contentURL;
  clearErrors();
  chose(chosen);
}

function setStyles(files, chosen) {
  state.styles = Array.from(files);
  $("style-thumbs").replaceChildren(...state.styles.map(thumb));
  clearErrors();
  scheduleEstimate();
  chose(chosen);
}

// --- the instant picture: asked for as soon as a photo and a style are chosen, one request at a time ---------
const instant = { busy: false, again: false, seq: 0, timer: null, chosen: null, url: null };

function chose(chosen) {
  instant.chosen = chosen === undefined ? performance.now() : chosen;
  state.view = "instant";
  requestInstant(0);
}

function requestInstant(delay) {
  clearTimeout(instant.timer);
  if (!state.content || !state.styles.length) return;
  if (instant.chosen === null) instant.chosen = performance.now() + (delay || 0);
  instant.timer = setTimeout(runInstant, delay || 0);
}

async function runInstant() {
  if (instant.busy) { instant.again = true; return; }  // the newest choice is asked for when this answer is in
  instant.busy = true;
  instant.again = false;
  const seq = ++instant.seq;
  const chosen = instant.chosen === null ? performance.now() : instant.chosen;
  instant.chosen = null;
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const s of state.styles) form.append("style", s, s.name);
  form.append("options", JSON.stringify(instantOptions()));
  if (state.view === "instant") $("instant-status").textContent = "Making the instant picture…";
  try {
    const response = await fetch("/api/instant", { method: "POST", body: form, credentials: "same-origin" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const error = new Error(body.detail || response.statusText);
      error.field = body.field;
      error.status = response.status;
      throw error;
    }
    const blob = await response.blob();
    if (seq !== instant.seq || state.view !== "instant") return;  // a refine job took the panel meanwhile
    showInstant(blob, chosen, response.headers.get("x-image-size") || "", response.headers.get("x-instant-seconds"));
  } catch (error) {
    if (state.view !== "instant") return;
    if (error.status === 429) { instant.again = true; return; }
    $("instant-status").textContent = "No instant picture: " + error.message;
    markError(error);
  } finally {
    instant.busy = false;
    if (instant.again) setTimeout(runInstant, 50);
  }
}

function showInstant(blob, chosen, size, seconds) {
  if (state.source) state.source.close();
  state.job = null;
  $("run").hidden = true;
  for (const li of document.querySelectorAll("#history li.current")) li.classList.remove("current");
  if (instant.url) URL.revokeObjectURL(instant.url);
  instant.url = URL.createObjectURL(blob);
  $("before").src = state.contentURL;
  const img = $("after");
  img.onload = () => {
    img.onload = null;
    img.dataset.step = "instant";
    $("compare").classList.add("has-image");
    const ms = performance.now() - chosen;
    document.body.dataset.instantMs = String(Math.round(ms));
    document.body.dataset.instantServerMs = seconds ? String(Math.round(Number(seconds) * 1000)) : "";
    $("instant-status").textContent = `Instant result · ${size.replace("x", "×")} px · ready ${(ms / 1000).toFixed(2)} s after your choice` +
      (seconds ? ` (the server took ${Number(seconds).toFixed(2)} s)` : "") + ". Refine it below for finer detail.";
  };
  img.src = instant.url;
  $("instant-download").href = instant.url;
  $("instant-links").hidden = false;
}

async function exampleFile(name) {
  const response = await fetch("/api/examples/" + encodeURIComponent(name), { credentials: "same-origin" });
  const blob = await response.blob();
  return new File([blob], name, { type: blob.type || "image/jpeg" });
}

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = Array.from(e.dataTransfer.files).filter((f) => f.type.startsWith("image/"));
    if (files.length) onFiles(files);
  });
}

// --- the estimate ---------------------------------------------------------------------------------
let estimateTimer = null;
let estimateSeq = 0;
function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(estimate, 400);
}

function bytes(n) {
  return n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + " GiB" : Math.round(n / (1 << 20)) + " MiB";
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  return s >= 3600 ? Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min" : s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
}

async function estimate() {
  if (!state.contentSize) return;
  if (instant.busy) {  // the estimate times the network: not while the instant picture is being made
    estimateTimer = setTimeout(estimate, 300);
    return;
  }
  const seq = ++estimateSeq;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(formOptions())) params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  // the server takes sides up to its --max-size: the same shape, scaled down, plans the same run
  const [w, h] = state.contentSize;
  const scale = Math.min(1, state.maxSize / Math.max(w, h));
  params.set("width", Math.max(1, Math.round(w * scale)));
  params.set("height", Math.max(1, Math.round(h * scale)));
  params.set("styles", Math.min(state.maxStyles, Math.max(1, state.styles.length)));
  $("estimate").textContent = "Estimating…";
  try {
    const plan = await api("/api/estimate?" + params);
    if (seq !== estimateSeq) return;
    const last = plan.scales[plan.scales.length - 1];
    const evals = plan.evaluations.reduce((a, b) => a + b, 0);
    const most = plan.stop_rule ? "at most " : "about ";
    const budget = plan.budget;
    const bought = budget ? budget.evaluations.reduce((a, b) => a + b, 0) : null;
    $("estimate").textContent = budget
      ? `Estimate: at most ${duration(plan.seconds)} on ${plan.device}: the time buys about ${bought} of ${most}${evals} evaluations` +
        `${budget.evaluations.length > 1 ? " (" + budget.evaluations.join(" + ") + " by scale)" : ""}, ${last[1]}×${last[0]} px, peak memory ${bytes(plan.peak_bytes)}.`
      : `Estimate: ${most}${duration(plan.seconds)} on ${plan.device}, ${most}${evals} evaluations, ` +
        `${last[1]}×${last[0]} px, peak memory ${bytes(plan.peak_bytes)}.` +
        (plan.stop_rule ? " It stops sooner once the loss stops falling." : "");
    $("estimate").dataset.budget = budget ? String(budget.seconds) : "";
  } catch (error) {
    if (seq !== estimateSeq) return;
    if (error.status === 429) {  // the server is making another estimate: ask again soon
      estimateTimer = setTimeout(estimate, 1500);
      return;
    }
    $("estimate").textContent = "Estimate: –";
    markError(error);
  }
}

// --- jobs --------------------------------------------------------------------------------------------
async function start(event) {
  event.preventDefault();
  clearErrors();
  if (!state.content) return markError({ field: "content", message: "content: pick a content image" });
  if (!state.styles.length) return markError({ field: "style", message: "style: pick one or more style images" });
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const s of state.styles) form.append("style", s, s.name);
  for (const m of state.masks) form.append("mask", m, m.name);
  for (const m of state.styleMasks) form.append("style_mask", m, m.name);
  if (state.fineStyle) form.append("fine_style", state.fineStyle, state.fineStyle.name);
  form.append("options", JSON.stringify(formOptions()));
  $("start").disabled = true;
  const clicked = performance.now();
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    state.startedAt = clicked;
    show(job.id);
    refreshHistory();
  } catch (error) {
    markError(error);
  } finally {
    $("start").disabled = false;
  }
}

function show(id) {
  if (state.source) state.source.close();
  state.job = id;
  state.view = id;
  instant.seq++;  // an instant answer still on its way is not shown over the job
  $("instant-links").hidden = true;
  $("compare").classList.add("has-image");
  $("instant-status").textContent = `Job ${id}: the picture as it is painted; the finished one replaces it.`;
  state.firstPreviewMs = null;
  state.ended = false;
  $("run").hidden = false;
  delete $("run").dataset.status;
  $("result-links").hidden = true;
  $("bar").value = 0;
  $("progress-text").textContent = "queued";
  $("cancel").disabled = false;
  $("before").src = `/api/jobs/${id}/content`;
  $("after").removeAttribute("src");
  $("after").dataset.step = "";
  for (const li of document.querySelectorAll("#history li")) li.classList.toggle("current", li.dataset.id === id);
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.source = source;
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    if (state.ended) return;
    $("bar").max = p.total;
    $("bar").value = p.step;
    $("progress-text").textContent = `step ${p.step} of ${p.stop_rule ? "at most " : ""}${p.total} · ${p.size} px · loss ${p.loss.toExponential(3)} · ETA ${duration(p.eta_seconds)}`;
    const now = performance.now();
    if (now - state.lastPreview > 450) {
      state.lastPreview = now;
      const img = $("after");
      img.onload = () => {
        if (state.ended) return;
        img.dataset.step = String(p.step);
        if (state.firstPreviewMs === null && state.startedAt) {
          state.firstPreviewMs = performance.now() - state.startedAt;
          document.body.dataset.firstPreviewMs = String(Math.round(state.firstPreviewMs));
        }
      };
      img.src = `/api/jobs/${id}/preview.jpg?step=${p.step}`;
    }
  });
  for (const kind of ["done", "failed", "cancelled"]) {
    source.addEventListener(kind, (e) => {
      source.close();
      finished(JSON.parse(e.data));
      refreshHistory();
    });
  }
}

function finished(job) {
  state.ended = true;
  $("after").onload = null;
  $("cancel").disabled = true;
  const text = { done: "done", failed: "failed: " + (job.error || ""), cancelled: "cancelled" }[job.status];
  const of = job.step < job.total ? ` (of ${job.stop_rule ? "at most " : ""}${job.total})` : "";
  $("progress-text").textContent = `${text} · ${job.step} steps${of}`;
  if (job.status === "done") $("bar").value = $("bar").max;
  if (job.has_result) {
    $("after").src = `/api/jobs/${job.id}/result.png`;
    $("after").dataset.step = "result";
    $("download").href = `/api/jobs/${job.id}/result.png`;
    $("manifest").href = `/api/jobs/${job.id}/manifest.json`;
    $("result-links").hidden = false;
  }
  $("run").dataset.status = job.status;
}

async function cancel() {
  if (!state.job) return;
  $("cancel").disabled = true;
  try {
    await api(`/api/jobs/${state.job}/cancel`, { method: "POST" });
  } catch (error) {
    $("progress-text").textContent = error.message;
  }
  refreshHistory();
}

async function runAgain(job) {
  const content = await fetch(`/api/jobs/${job.id}/content`, { credentials: "same-origin" }).then((r) => r.blob());
  setContent(new File([content], "content", { type: content.type }));
  const styles = [];
  for (let i = 0; i < job.styles; i++) {
    const blob = await fetch(`/api/jobs/${job.id}/style/${i}`, { credentials: "same-origin" }).then((r) => r.blob());
    styles.push(new File([blob], "style" + i, { type: blob.type }));
  }
  setFormOptions(job.options);
  setStyles(styles);
  $("opt-size").focus();
}

async function refreshHistory() {
  // the newest jobs, as many pages as "Load more" has asked for (GET /api/jobs answers a page at a time)
  const jobs = [];
  let next = null;
  try {
    for (let page = 0; page < state.historyPages; page++) {
      const answer = await api("/api/jobs" + (next === null ? "" : "?before=" + next));
      jobs.push(...answer.jobs);
      next = answer.next;
      if (next === null) break;
    }
    $("conn").textContent = "";
  } catch (error) {
    $("conn").textContent = "server unreachable: " + error.message;
    return;
  }
  $("more-history").hidden = next === null;
  const list = $("history");
  list.replaceChildren(...jobs.map((job) => {
    const img = el("img", { alt: `job ${job.id} (${job.status})`, loading: "lazy" });
    if (job.has_result) img.src = `/api/jobs/${job.id}/preview.jpg`;
    else img.src = `/api/jobs/${job.id}/content`;
    const size = (job.options.size ? `${job.options.size} px` : (job.options.preset || "fast")) +
      (job.options.time ? ` · ${timeLabel(job.options.time)}` : "");
    const actions = el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => { show(job.id); if (job.status !== "queued" && job.status !== "running") finished(job); } }, "Open"),
      el("button", { type: "button", onclick: () => runAgain(job) }, "Run again"));
    if (["queued", "running"].includes(job.status)) {
      actions.append(el("button", { type: "button", onclick: async () => { await api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch(() => {}); refreshHistory(); } }, "Cancel"));
    } else {
      actions.append(el("button", { type: "button", onclick: async () => { await api(`/api/jobs/${job.id}`, { method: "DELETE" }).catch(() => {}); refreshHistory(); } }, "Delete"));
    }
    const when = job.created ? new Date(job.created).toLocaleString() : "";
    return el("li", { "data-id": job.id, "data-status": job.status, class: job.id === state.job ? "current" : "" },
      img,
      el("span", { class: "status status-" + job.status }, `${job.status} · ${job.step}/${job.total}`),
      el("span", { class: "muted" }, `${size} · ${when}`),
      actions);
  }));
  if (jobs.some((j) => j.status === "queued" || j.status === "running")) setTimeout(refreshHistory, 2000);
}

// --- start ------------------------------------------------------------------------------------------
async function init() {
  // the printed URL's token is in the cookie now: keep it out of the address bar and the history
  const url = new URL(window.location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  const table = await api("/api/options");
  state.options = table.options;
  state.presets = table.presets;
  state.maxSize = table.max_size;
  state.maxStyles = table.max_styles;
  const preset = $("opt-preset");
  state.instantOptions = table.instant_options || [];
  preset.append(el("option", { value: "" }, "fast (default)"));
  for (const name of Object.keys(table.presets)) if (name !== "fast" && name !== "instant") preset.append(el("option", { value: name }, name));
  preset.addEventListener("change", () => { showPresetValues(); scheduleEstimate(); });
  $("opt-time").addEventListener("change", () => { clearErrors(); scheduleEstimate(); });
  for (const o of table.options) {
    if (!o.web || OWN_CONTROLS.includes(o.name)) continue;
    (MAIN.includes(o.name) ? $("main-options") : $("more-options")).append(fieldFor(o));
  }
  const size = table.options.find((o) => o.name === "size");
  $("opt-size").max = state.maxSize;
  $("opt-size").dataset.type = "int";
  $("help-size").textContent = "long side: bigger is finer, slower";
  $("help-size").title = size ? size.help : "";
  watch($("opt-size"), "size");
  $("strength-value").textContent = $("opt-strength").value;
  $("opt-strength").addEventListener("input", () => { $("strength-value").textContent = $("opt-strength").value; });
  watch($("opt-strength"), "strength");
  for (const o of table.options) {  // the uploads that stand in for the path options
    const help = $("help-" + o.name);
    if (help && !o.web) help.textContent = o.help.replace("PATH's", "this image's");
  }
  showPresetValues();
  for (const name of table.examples) {
    $("content-example").append(el("option", { value: name }, name));
    $("style-example").append(el("option", { value: name }, name));
  }
  $("content-file").addEventListener("change", (e) => e.target.files[0] && setContent(e.target.files[0]));
  $("style-file").addEventListener("change", (e) => e.target.files.length && setStyles(e.target.files));
  $("content-example").addEventListener("change", async (e) => { const t = performance.now(); if (e.target.value) setContent(await exampleFile(e.target.value), t); });
  $("style-example").addEventListener("change", async (e) => { const t = performance.now(); if (e.target.value) setStyles([await exampleFile(e.target.value)], t); });
  dropZone($("content-drop"), (files) => setContent(files[0]));
  dropZone($("style-drop"), setStyles);
  $("mask-file").addEventListener("change", (e) => { state.masks = Array.from(e.target.files); clearErrors(); });
  $("style_mask-file").addEventListener("change", (e) => { state.styleMasks = Array.from(e.target.files); clearErrors(); });
  $("fine_style-file").addEventListener("change", (e) => { state.fineStyle = e.target.files[0] || null; clearErrors(); });
  $("more-history").addEventListener("click", () => { state.historyPages++; refreshHistory(); });
  $("options-form").addEventListener("submit", start);
  $("cancel").addEventListener("click", cancel);
  $("again").addEventListener("click", async () => state.job && runAgain(await api(`/api/jobs/${state.job}`)));
  $("slider").addEventListener("input", (e) => { $("after-wrap").style.clipPath = `inset(0 ${100 - e.target.value}% 0 0)`; });
  await refreshHistory();
  document.body.dataset.ready = "1";
}

init().catch((error) => { $("conn").textContent = "could not load the studio: " + error.message; });
