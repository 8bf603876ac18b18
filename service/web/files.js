// A catalogue file classified as a job: uploaded as it is (POST /jobs, the upload's own progress shown), then its
// progress read every second (GET /jobs/{id}) until it is done; then its output and rejected rows can be
// downloaded, and the catalogue is shown at a glance (charts.js). The job's id is kept in this tab, so a reload
// finds it again.
import { barChart, histogram } from "./charts.js";
import { download, duration, el, errorMessage, key, showError, withKey } from "./common.js";

const $ = (id) => document.getElementById(id);
const errorBox = $("error");
const JOB = "moviegenre.job";
const POLL_MS = 1000;
const health = fetch("/health").then((r) => r.json()).then((h) => h.jobs).catch(() => null);
let shown = null;  // the job on the page

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n >= 10 << 20 ? 0 : 1)} MB`;
  return n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} bytes`;
}

async function showSignIn() {
  const jobs = await health;
  const needed = Boolean(jobs && jobs.needs_key);
  $("sign-in").hidden = !needed || Boolean(key.get());
  $("signed-in").hidden = !needed || !key.get();
  $("upload").hidden = needed && !key.get();
}

// A key is tried on a job nobody has: 404 once it is accepted, 401 when it is not.
async function signIn(token) {
  key.set(token);
  const probe = await fetch(`/jobs/${"0".repeat(32)}`, { headers: withKey() });
  if (probe.status === 401) {
    key.clear();
    throw new Error("That key was not accepted: the service knows no such API key or editor's token.");
  }
}

function setBar(label, value) {
  $("bar-label").textContent = label;
  const bar = $("bar");
  if (value === null) bar.removeAttribute("value"); else bar.value = value;
}

function upload(file, query) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/jobs?${query}`);
    for (const [name, value] of Object.entries(withKey({ "Content-Type": "application/octet-stream" }))) {
      request.setRequestHeader(name, value);
    }
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) setBar(`Uploading: ${bytes(event.loaded)} of ${bytes(event.total)}`, event.loaded / event.total);
    });
    request.addEventListener("load", () => resolve(new Response(request.responseText, { status: request.status })));
    request.addEventListener("error", () => reject(new Error("The upload failed: the service cannot be reached.")));
    request.send(file);
  });
}

async function send(event) {
  event.preventDefault();
  showError(errorBox, "");
  const file = $("file").files[0];
  if (!file) return showError(errorBox, "Choose a file first.");
  const jobs = await health;
  if (jobs && file.size > jobs.max_upload_bytes) {
    return showError(errorBox, `${file.name} is ${bytes(file.size)}: this service takes files of at most ` +
      `${bytes(jobs.max_upload_bytes)}.`);
  }
  const query = new URLSearchParams({ name: file.name });
  const column = $("text-column").value.trim();
  if (column) query.set("text_column", column);
  const output = document.querySelector("input[name=output]:checked").value;
  if (output) query.set("output", output);
  $("send").disabled = true;
  showJob({ name: file.name });
  try {
    const response = await upload(file, query);
    if (!response.ok) return refused(response);
    const job = await response.json();
    sessionStorage.setItem(JOB, job.id);
    draw(job);
    follow(job.id);
  } catch (error) {
    showError(errorBox, error.message);
    $("job").hidden = true;
  } finally {
    $("send").disabled = false;
  }
}

async function refused(response) {
  $("job").hidden = true;
  const body = await response.clone().json().catch(() => ({}));
  if (response.status === 401) {
    key.clear();
    showSignIn();
  }
  if (body.columns) {  // no text column found: its columns to choose from
    $("columns").replaceChildren(...body.columns.map((name) => el("option", { value: name })));
    $("column-hint").textContent = `Its columns: ${body.columns.join(", ")}.`;
    $("text-column").focus();
  }
  showError(errorBox, await errorMessage(response));
}

function showJob(job) {
  shown = job.id || null;
  $("job").hidden = false;
  $("job-title").textContent = job.name;
  $("downloads").hidden = true;
  $("glance").hidden = true;
  $("job-status").textContent = "";
  $("job-notes").replaceChildren();
  setBar("Uploading", 0);
}

function statusLine(job) {
  const of = job.rows_total ? ` of ${job.rows_total.toLocaleString()}` : "";
  if (job.state === "done") {
    return `Done: ${job.classified.toLocaleString()} rows classified, ${job.rejected.toLocaleString()} rejected. ` +
      `Its files are kept until ${new Date(job.expires_at).toLocaleString()}.`;
  }
  if (job.state === "failed") return `The job failed: ${job.error}`;
  const waiting = job.waiting ? ` Waiting: ${job.waiting}.` : "";  // a fault it waits out (the service at capacity, ...)
  if (job.state === "queued") return waiting.trim() || "Waiting for its turn (another file is being classified).";
  const rate = job.rows_per_s ? ` · ${Math.round(job.rows_per_s).toLocaleString()} rows/s` : "";
  const left = job.eta_s !== null && job.eta_s !== undefined ? ` · about ${duration(job.eta_s)} left` : "";
  return `Classified ${job.rows_done.toLocaleString()}${of} rows${rate}${left}.${waiting}`;
}

function draw(job) {
  if (shown !== job.id) showJob(job);
  $("job-title").textContent = job.name;
  const done = job.state === "done";
  const label = done ? "Classified: 100%" : job.state === "failed" ? "Failed" :
    job.progress === null ? "Classifying" : `Classifying: ${Math.floor(job.progress * 100)}%`;
  setBar(label, done ? 1 : job.progress);
  $("job-status").textContent = statusLine(job);
  $("job-notes").replaceChildren(...job.notes.map((note) => el("li", { textContent: note })));
  $("downloads").hidden = !done;
  if (!done) return;
  const stem = job.name.replace(/\.[^.]*$/, "") || "catalogue";
  $("get-output").textContent = `Download the output (${job.output_format.toUpperCase()}, ${job.classified} rows)`;
  $("get-output").onclick = () => save(job.output, `${stem}.genres.${job.output_format}`);
  $("get-rejected").textContent = `Download the rejected rows (${job.rejected})`;
  $("get-rejected").onclick = () => save(job.rejected_rows, `${stem}.rejected.jsonl`);
  drawGlance(job.glance);
}

function save(url, name) {
  showError(errorBox, "");
  download(url, name).catch((error) => showError(errorBox, error.message));
}

function drawGlance(glance) {
  if (!glance) return;
  $("glance").hidden = false;
  barChart($("genre-chart"), Object.entries(glance.genres), "Rows given each genre");
  histogram($("confidence-chart"), glance.confidence, "Rows by the score of their first genre");
  $("unsure").tBodies[0].replaceChildren(...glance.least_sure.map((row) => el("tr", {},
    el("td", { className: "num", textContent: row.row }),
    el("td", {}, el("div", { className: "clamp", textContent: row.text })),
    el("td", { textContent: row.genres.join(", ") || "no genre" }),
    el("td", { className: "num", textContent: row.score.toFixed(2) }))));
}

async function follow(id) {
  while (shown === id) {
    const response = await fetch(`/jobs/${id}`, { headers: withKey() }).catch(() => null);
    if (shown !== id) return;
    if (response && response.status === 404) {
      sessionStorage.removeItem(JOB);
      $("job").hidden = true;
      return showError(errorBox, await errorMessage(response));
    }
    if (response && response.ok) {
      const job = await response.json();
      draw(job);
      if (job.state === "done" || job.state === "failed") return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function remove() {
  const id = shown;
  const response = await fetch(`/jobs/${id}`, { method: "DELETE", headers: withKey() });
  if (!response.ok) return showError(errorBox, await errorMessage(response));
  sessionStorage.removeItem(JOB);
  shown = null;
  $("job").hidden = true;
  showError(errorBox, "");
  $("file").focus();
}

$("upload").addEventListener("submit", send);
$("remove").addEventListener("click", remove);
$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  signIn(token).then(() => { showError(errorBox, ""); return showSignIn(); })
    .catch((error) => { showError(errorBox, error.message); $("token").focus(); });
});
$("sign-out").addEventListener("click", () => { key.clear(); showSignIn(); });
health.then((jobs) => {
  if (jobs) $("max-size").textContent = bytes(jobs.max_upload_bytes);
  if (jobs && !jobs.enabled) showError(errorBox, "This service cannot keep jobs: its jobs folder cannot be written.");
});
showSignIn();
const resumed = sessionStorage.getItem(JOB);
if (resumed) {
  showJob({ id: resumed, name: "" });
  follow(resumed);
}
