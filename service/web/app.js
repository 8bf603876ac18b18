// The page: one form; the vote's answer at once (/classify?llm=false), drawn as chips, meta, lookup and
// neighbours; then, when an LLM is configured, its refinement (/classify) redrawn over it when it arrives.
import { el, errorMessage } from "./common.js";

const form = document.getElementById("classify-form");
const text = document.getElementById("text");
const button = document.getElementById("submit");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const counter = document.getElementById("counter");
const maxChars = Number(form.dataset.maxChars);
const labels = {
  auto: ["What do you know about the film?", "A plot, a title, a review or a studio: Titanic"],
  description: ["Describe the film", "A young wizard embarks on an adventure to defeat a dark sorcerer."],
  lookup: ["A title, a review or a studio", "The Matrix (1999)"],
};

function mode() {
  return form.querySelector("input[name=mode]:checked").value;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function setBusy(busy) {
  button.disabled = busy;
  result.setAttribute("aria-busy", String(busy));
  button.replaceChildren(...(busy ? [el("span", { className: "spinner" }), "Classifying…"] : ["Find genres"]));
}

function drawChips(body) {
  const chips = body.genres.map((genre) => {
    const score = body.scores[genre];
    const pct = score === undefined ? null : Math.round(score * 100);
    const bar = el("span");
    bar.style.width = `${pct ?? 100}%`;
    const from = body.genre_sources ? el("span", { className: "from", textContent: body.genre_sources[genre].join(", ") }) : "";
    return el("li", { className: "chip" },
      el("span", { className: "name", textContent: genre }),
      el("span", { className: "pct", textContent: pct === null ? "" : `${pct}%` }),
      el("div", { className: "bar", role: "presentation" }, bar), from);
  });
  document.getElementById("chips").replaceChildren(...chips);
}

// what the service offers, read once: /health says whether an LLM is configured and whether the page may correct
const health = fetch("/health").then((r) => r.json()).catch(() => null);

const languageNames = new Intl.DisplayNames(["en"], { type: "language" });

function languageName(code) {
  try { return languageNames.of(code); } catch (_) { return code; }
}

function drawMeta(body, elapsedMs) {
  const backend = body.backend === "vote" ? "the neighbour vote" : `the ${body.backend} LLM with the vote`;
  let meta = `Answered by ${backend} in ${Math.round(body.latency_ms)} ms (${Math.round(elapsedMs)} ms round trip).`;
  if (body.fallback_reason) meta += ` The LLM was not used: ${body.fallback_reason}.`;
  document.getElementById("meta").textContent = meta;
  const language = document.getElementById("language");
  language.hidden = !body.language;
  if (body.language) language.textContent = `Read as ${languageName(body.language)} (${body.language})`;
  const notes = (body.notes || []).map((note) => el("li", { textContent: note }));
  document.getElementById("notes").replaceChildren(...notes);
  const confidence = document.getElementById("confidence");
  confidence.hidden = !body.confidence;
  if (body.confidence) {
    confidence.className = `confidence ${body.confidence}`;
    const lead = body.confidence === "low" ? "This does not read like a film" : `Confidence: ${body.confidence}`;
    confidence.textContent = `${lead}: ${body.confidence_reason}.`;
  }
  const recognised = document.getElementById("recognised");
  recognised.hidden = !body.recognised;
  if (body.recognised) {
    const r = body.recognised;
    recognised.textContent = r.source === "correction"
      ? `Learned from a correction: ${r.genres.join(", ")} (similarity ${r.similarity.toFixed(2)}).`
      : `Recognised: ${r.title}${r.year ? ` (${r.year})` : ""}, labelled ${r.genres.join(", ")} ` +
        `in the reference (similarity ${r.similarity.toFixed(2)}).`;
  }
}

// "Not right?": with page feedback allowed (MOVIEGENRE_FEEDBACK_PAGE), a person ticks the genres the film has
// and sends them to /feedback, where an editor reviews them before the service answers with them (202). Until
// then, every answer to the same text says that its correction is waiting. A send carries an Idempotency-Key:
// sending again what was sent (a retry after a lost answer) stores nothing twice.
const feedbackPage = health.then((h) => Boolean(h && h.feedback.page));
const vocabulary = fetch("/genres").then((r) => r.json()).then((g) => g.genres).catch(() => []);
let corrected = "";  // the text the correction box is about
let correctionKey = null;  // the Idempotency-Key of the correction being sent; a new one when the genres change
const waiting = new Map();  // text → the id of this page's correction of it that waits for an editor

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();  // secure contexts only
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function drawWaiting(body, classified) {
  const note = document.getElementById("correct-waiting");
  const id = waiting.get(classified);
  if (id !== undefined && body.recognised && body.recognised.correction_id === id) waiting.delete(classified);
  note.hidden = !waiting.has(classified);
  if (waiting.has(classified)) {
    note.textContent = `Your correction ${id} of this text is waiting for an editor's review: this answer does not ` +
      "use it yet.";
  }
}

async function drawCorrection(body, classified) {
  const box = document.getElementById("correct");
  if (!await feedbackPage) return;
  drawWaiting(body, classified);
  if (classified !== corrected) {  // another text: a fresh, closed box
    document.getElementById("correct-status").textContent = "";
    box.open = false;
  }
  corrected = classified;
  correctionKey = null;  // the ticks are drawn afresh: what is sent next is another correction
  const chosen = new Set(body.genres);
  const boxes = (await vocabulary).map((genre) => el("label", {},
    el("input", { type: "checkbox", name: "genre", value: genre, checked: chosen.has(genre) }), ` ${genre}`));
  document.getElementById("correct-genres").replaceChildren(el("legend", { className: "visually-hidden",
    textContent: "Genres" }), ...boxes);
  box.hidden = false;
}

async function sendCorrection() {
  const status = document.getElementById("correct-status");
  const genres = [...document.querySelectorAll("#correct-genres input:checked")].map((input) => input.value);
  if (!genres.length) { status.textContent = "Tick at least one genre."; return; }
  correctionKey = correctionKey || newKey();
  const response = await fetch("/feedback", {
    method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": correctionKey },
    body: JSON.stringify({ text: corrected, genres }),
  }).catch(() => null);
  if (!response) { status.textContent = "The service cannot be reached: send it again (it is stored once)."; return; }
  if (!response.ok) { status.textContent = `The correction was not stored: ${await errorMessage(response)}`; return; }
  const stored = await response.json();
  if (stored.status === "pending") {
    waiting.set(corrected, stored.id);
    document.getElementById("correct-waiting").hidden = true;  // the status below says it
    status.textContent = `Thank you: correction ${stored.id} is waiting for an editor's review. Answers use it ` +
      "once an editor approves it.";
    return;
  }
  status.textContent = `Thank you: correction ${stored.id} stored. The answer below now comes from it.`;
  await submit();
}

document.getElementById("correct-genres").addEventListener("change", () => { correctionKey = null; });
document.getElementById("correct-send").addEventListener("click", sendCorrection);

function candidateLink(c) {
  const name = `${c.title}${c.year ? ` (${c.year})` : ""}`;
  const link = el("a", { href: "#", textContent: name });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    text.value = name;
    submit({ kind: "title" });
  });
  return el("li", {}, link, ` — ${c.genres.join(", ")}`);
}

function drawLookup(lookup) {
  const box = document.getElementById("lookup");
  box.hidden = !lookup;
  if (!lookup) return;
  const lines = [el("p", { textContent: `Taken for a ${lookup.kind}.` })];
  if (lookup.matched) {
    const m = lookup.matched;
    const ids = [m.imdb_id && `IMDb ${m.imdb_id}`, m.tmdb_id && `TMDb ${m.tmdb_id}`, m.rating && `rated ${m.rating}`];
    const known = ids.filter(Boolean).join(", ");
    const alias = m.alias ? `, by its title “${m.alias}”` : "";
    lines.push(el("p", { textContent: `Matched: ${m.title}${m.year ? ` (${m.year})` : ""}${alias}${known ? ` — ${known}` : ""}` }));
  }
  if (lookup.candidates && lookup.candidates.length) {
    lines.push(el("p", { textContent: "Other films of that title (pick one):" }));
    lines.push(el("ul", { className: "candidates" }, ...lookup.candidates.map(candidateLink)));
  }
  if (lookup.company) {
    const c = lookup.company;
    lines.push(el("p", { textContent: `Company: ${c.name}, ${c.films} films (${c.source === "tmdb" ? "TMDb" : "the reference"})` }));
    if (c.titles.length) lines.push(el("p", { className: "meta", textContent: `Its films: ${c.titles.join(", ")}` }));
  }
  for (const note of lookup.notes) lines.push(el("p", { className: "meta", textContent: note }));
  box.replaceChildren(...lines);
}

function drawNeighbours(neighbours) {
  const rows = (neighbours || []).map((n) => el("tr", {},
    el("td", { textContent: n.title }), el("td", { textContent: n.year ?? "–" }),
    el("td", { textContent: n.genres.join(", ") }), el("td", { className: "num", textContent: n.similarity.toFixed(2) })));
  document.querySelector("#neighbours tbody").replaceChildren(...rows);
}

// whether an LLM is configured, read once from /health: without one there is nothing to refine
const llmConfigured = health.then((h) => Boolean(h && h.llm.configured));
let asked = 0;  // the latest submission: answers to earlier ones are dropped

function classify(chosen, payload, withLlm) {
  return fetch(`/classify?mode=${chosen}&explain=true&llm=${withLlm}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
  });
}

function draw(body, elapsedMs, classified) {
  drawChips(body);
  drawCorrection(body, classified);
  drawMeta(body, elapsedMs);
  drawLookup(body.lookup);
  drawNeighbours(body.neighbours);
  result.hidden = false;
}

function showRefine(message, pending) {
  const refine = document.getElementById("refine");
  refine.hidden = !message;
  refine.textContent = message || "";
  refine.classList.toggle("pending", pending);
}

async function refine(id, chosen, payload, started) {
  showRefine("Asking the LLM to refine these genres…", true);
  try {
    const response = await classify(chosen, payload, true);
    if (id !== asked) return;
    if (!response.ok) return showRefine(`The LLM's refinement failed: ${await errorMessage(response)}`, false);
    const body = await response.json();
    if (id !== asked) return;
    draw(body, performance.now() - started, payload.description);
    // a busy or failing LLM leaves the vote's answer, and says why
    const why = body.fallback_reason ? ` — ${body.fallback_reason}` : "";
    showRefine(body.llm_genres ? `Refined by the LLM (it picked ${body.llm_genres.join(", ")}).`
      : `The vote's genres stand${why}.`, false);
  } catch (_) {
    if (id === asked) showRefine("The LLM's refinement did not arrive: the vote's genres stand.", false);
  }
}

async function submit(extra = {}) {
  errorBox.hidden = true;
  const value = text.value.trim();
  if (!value) return showError("Please type something first: a description, a title, a review or a studio.");
  if (value.length > maxChars) return showError(`That is too long: at most ${maxChars.toLocaleString()} characters.`);
  const id = ++asked;
  setBusy(true);
  showRefine("", false);
  const started = performance.now();
  const chosen = extra.kind && mode() === "description" ? "auto" : mode();
  const payload = { description: value, ...extra };
  let body;
  try {
    const response = await classify(chosen, payload, false);
    if (!response.ok) return showError(await errorMessage(response));
    body = await response.json();
    if (id === asked) draw(body, performance.now() - started, value);
  } catch (_) {
    return showError("The service cannot be reached. Is it running?");
  } finally {
    setBusy(false);
  }
  // a film recognised in the reference is answered with its own labels: the LLM is not asked about it
  if (id === asked && !body.recognised && await llmConfigured) refine(id, chosen, payload, started);
}

form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
});
text.addEventListener("input", () => { counter.textContent = `${text.value.length} / ${maxChars}`; });
form.addEventListener("change", () => {
  const [label, placeholder] = labels[mode()];
  document.getElementById("text-label").textContent = label;
  text.placeholder = placeholder;
});
