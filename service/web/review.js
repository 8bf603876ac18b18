// The editors' view: sign in with an editor's token (kept in this tab only), then the review queue of the page's
// corrections (approve, reject, reject a sender's or the old ones at once) and the served corrections (search,
// revoke). Every action says what it did, and offers Undo where the API can undo it: an approval is undone by
// revoking the correction, a revocation by sending its genres again as this editor's correction. Rejections
// cannot be undone (a rejected correction stays revoked), so the bulk ones ask first.
import { ago, el, errorMessage, key, showError, withKey } from "./common.js";

const PENDING_PAGE = 50;  // with each one's answer today: at most MOVIEGENRE_MAX_BATCH_ITEMS (64)
const SERVED_PAGE = 20;
const $ = (id) => document.getElementById(id);
const errorBox = $("error");
const view = { pending: 0, served: 0, query: "" };  // the offsets shown, and the search

class SignedOut extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: withKey(options.headers) });
  if (response.status === 401) {
    signOut();
    throw new SignedOut("That token was not accepted: the service does not know it. Check it and sign in again.");
  }
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

async function guarded(work) {
  showError(errorBox, "");
  try {
    await work();
  } catch (error) {
    showError(errorBox, error.message || "The service cannot be reached. Is it running?");
    if (error instanceof SignedOut) $("token").focus();
  }
}

function showSignedIn(on) {
  $("sign-in").hidden = on;
  $("signed-in").hidden = !on;
  $("queue").hidden = !on;
  $("served").hidden = !on;
}

function signOut() {
  key.clear();
  showSignedIn(false);
  say("");
}

function say(message, undo = null) {
  $("status").hidden = !message;
  $("status-text").textContent = message;
  const button = $("undo");
  button.hidden = !undo;
  button.onclick = undo && (() => guarded(async () => {
    button.hidden = true;
    say(await undo());
    await refresh();
  }));
}

function confirmed(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "cancel";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"),
    { once: true }));
}

function film(c) {
  if (!c.title) return "the film its text tells of";
  return `${c.title}${c.year ? ` (${c.year})` : ""}`;
}

function filmField(c) {
  return field("Film", c.title ? film(c) : "its own (the text names no film of the reference)");
}

function field(term, value) {
  return [el("dt", { textContent: term }), el("dd", { textContent: value })];
}

function card(c, fields, actions) {
  const title = el("h3", { id: `correction-${c.id}`, textContent: `Correction ${c.id}` });
  const text = el("p", { className: "text", textContent: c.text });
  const buttons = actions.map(([label, name, act, style]) => {
    const button = el("button", { type: "button", textContent: label, className: style || "" });
    button.setAttribute("aria-label", `${name} correction ${c.id}`);
    button.addEventListener("click", () => guarded(() => act(c, button)));
    return button;
  });
  const article = el("article", {}, title, text, el("dl", {}, ...fields.flat()),
    el("div", { className: "actions" }, ...buttons));
  article.setAttribute("aria-labelledby", title.id);
  return el("li", { className: "card" }, article);
}

function pendingCard(c) {
  return card(c, [
    field("Asks for", c.genres.join(", ")),
    field("The service answers today", c.answer ? c.answer.join(", ") || "no genre" : "–"),
    filmField(c),
    field("Sent by", `${c.client ?? "an unknown client"}, ${ago(c.created_at)}`),
  ], [["Approve", "Approve", approve], ["Reject", "Reject", reject, "danger"]]);
}

function servedCard(c) {
  const state = c.status === "superseded" ? "superseded: a later correction of this film answers instead" : "served";
  const by = c.author === "page" ? `the page (${c.client ?? "unknown client"}), approved by ${c.approved_by}` : c.author;
  return card(c, [
    field("Genres", c.genres.join(", ")),
    filmField(c),
    field("Sent by", `${by}, ${ago(c.created_at)}`),
    field("State", state),
  ], [["Revoke", "Revoke", revoke, "danger"]]);
}

async function approve(c) {
  const approved = await api(`/feedback/${c.id}/approve`, { method: "POST" });
  say(`Approved correction ${c.id}: the service answers ${film(c)} with ${approved.genres.join(", ")} from now on.`,
    async () => {
      await api(`/feedback/${c.id}`, { method: "DELETE" });
      return `Undone: correction ${c.id} is revoked, and the service answers as it did before.`;
    });
  await refresh("pending");
}

async function reject(c) {
  await api(`/feedback/${c.id}`, { method: "DELETE" });
  say(`Rejected correction ${c.id} (${film(c)}): it will never be served.`);
  await refresh("pending");
}

async function revoke(c) {
  await api(`/feedback/${c.id}`, { method: "DELETE" });
  say(`Revoked correction ${c.id}: the service no longer answers ${film(c)} with ${c.genres.join(", ")}.`,
    async () => {
      const again = await api("/feedback", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: c.text, genres: c.genres, ...(c.title ? { title: c.title, year: c.year } : {}) }),
      });
      return `Undone: ${film(c)} is answered with ${again.genres.join(", ")} again (as correction ${again.id}).`;
    });
  await refresh("served");
}

async function rejectMany(body, what) {
  if (!await confirmed(`Reject ${what}?`)) return;
  const result = await api("/feedback/reject", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  say(`Rejected ${result.rejected} correction${result.rejected === 1 ? "" : "s"}: ${what}.`);
  view.pending = 0;
  await refresh("pending");
}

function share(client, queue) {
  const percent = queue.waiting ? Math.round((client.waiting / queue.waiting) * 100) : 0;
  const who = client.client ?? "clients not kept (sent before clients were kept)";
  const bar = el("span", { className: "share-bar" }, el("span"));
  bar.firstChild.style.width = `${percent}%`;
  bar.setAttribute("aria-hidden", "true");
  const line = el("span", {
    textContent: `${who}: ${client.waiting} waiting (${percent}% of the queue, at most ${queue.client_share} ` +
      `each), the oldest ${ago(client.oldest)}`,
  });
  const items = [line, bar];
  if (client.client) {
    const button = el("button", { type: "button", className: "danger", textContent: `Reject all ${client.waiting}` });
    button.setAttribute("aria-label", `Reject all ${client.waiting} from ${client.client}`);
    button.addEventListener("click", () => guarded(() => rejectMany(
      { client: client.client }, `all ${client.waiting} waiting from ${client.client}`)));
    items.push(button);
  }
  return el("li", {}, ...items);
}

function pager(name, offset, size, total) {
  const last = Math.max(0, Math.ceil(total / size) - 1);
  $(`${name}-page`).textContent = total ? `${offset + 1}–${Math.min(offset + size, total)} of ${total}` : "";
  $(`${name}-newer`).disabled = offset === 0;
  $(`${name}-older`).disabled = offset / size >= last;
}

async function loadPending() {
  const [queue, page] = await Promise.all([
    api("/feedback/queue"),
    api(`/feedback?status=pending&answers=true&limit=${PENDING_PAGE}&offset=${view.pending}`),
  ]);
  $("queue-count").textContent = `${queue.waiting} waiting of at most ${queue.max_waiting}.`;
  $("shares").replaceChildren(...queue.clients.map((c) => share(c, queue)));
  $("pending").replaceChildren(...page.corrections.map(pendingCard));
  $("pending-empty").hidden = page.corrections.length > 0;
  $("pending-note").textContent = page.note ?? "";
  $("pending-note").hidden = !page.note;
  pager("pending", view.pending, PENDING_PAGE, page.total);
}

async function loadServed() {
  const query = view.query ? `&q=${encodeURIComponent(view.query)}` : "";
  const page = await api(`/feedback?status=served&limit=${SERVED_PAGE}&offset=${view.served}${query}`);
  $("served-list").replaceChildren(...page.corrections.map(servedCard));
  $("served-empty").hidden = page.corrections.length > 0;
  pager("served", view.served, SERVED_PAGE, page.total);
}

// after an action the lists are read again; the focus goes to the first action left in the list acted on
async function refresh(acted) {
  await Promise.all([loadPending(), loadServed()]);
  if (acted === "pending" || acted === "served") {
    const next = document.querySelector(`#${acted === "pending" ? "pending" : "served-list"} .actions button`);
    (next || $("status")).focus?.();
  }
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  key.set(token);
  $("token").value = "";
  guarded(async () => {
    const check = await fetch("/feedback/queue", { headers: withKey() });
    if (check.status === 403) {
      key.clear();
      throw new Error(await errorMessage(check));
    }
    if (check.status === 401) await api("/feedback/queue");  // says so, signed out
    showSignedIn(true);
    await refresh();
    $("queue-title").focus?.();
  });
});
$("sign-out").addEventListener("click", () => { signOut(); $("token").focus(); });
$("reject-old").addEventListener("submit", (event) => {
  event.preventDefault();
  const hours = Number($("older-than").value);
  guarded(() => rejectMany({ older_than_hours: hours }, `everything that has waited ${hours} hours or longer`));
});
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  view.query = $("q").value.trim();
  view.served = 0;
  guarded(loadServed);
});
for (const [name, size] of [["pending", PENDING_PAGE], ["served", SERVED_PAGE]]) {
  const load = name === "pending" ? loadPending : loadServed;
  $(`${name}-newer`).addEventListener("click", () => { view[name] = Math.max(0, view[name] - size); guarded(load); });
  $(`${name}-older`).addEventListener("click", () => { view[name] += size; guarded(load); });
}

if (key.get()) {  // signed in earlier in this tab
  showSignedIn(true);
  guarded(refresh);
}
