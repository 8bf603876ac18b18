// What the pages share: making elements, reading an error answer, the key kept for this browser tab, times.

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body.error && body.candidates) {  // a title of several films (409): name them
      return `${body.error} (${body.candidates.map((c) => `${c.title} ${c.year ?? "(no year)"}`).join(", ")})`;
    }
    if (body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `The service answered ${response.status}.`;
}

// An editor's token or an API key, kept in this tab's sessionStorage only: gone when the tab closes or on signing
// out, never in a URL, never in localStorage, never logged. Sent as Authorization: Bearer.
const TOKEN = "moviegenre.token";

export const key = {
  get: () => sessionStorage.getItem(TOKEN),
  set: (value) => sessionStorage.setItem(TOKEN, value),
  clear: () => sessionStorage.removeItem(TOKEN),
};

export function withKey(headers = {}) {
  const token = key.get();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

export function ago(iso, now = Date.now()) {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), "second");
}

export function duration(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function showError(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

// A file the service sends only to a holder of the key: fetched with it, then saved under `name`.
export async function download(url, name) {
  const response = await fetch(url, { headers: withKey() });
  if (!response.ok) throw new Error(await errorMessage(response));
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
