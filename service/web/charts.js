// Two charts drawn by hand as SVG (nothing fetched, no library): bars of a count per name, and a histogram of
// counts per range. Each is an image with a summary for screen readers, and its numbers as a table beside it.
import { el } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;

function svg(tag, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function figure(container, chart, summary, header, rows) {
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", summary);
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ...header.map((h) => el("th", { scope: "col", textContent: h })))),
    el("tbody", {}, ...rows.map(([name, count]) => el("tr", {}, el("td", { textContent: name }),
      el("td", { className: "num", textContent: count.toLocaleString() })))));
  container.replaceChildren(chart, el("details", {}, el("summary", { textContent: "The numbers" }), table));
}

// one horizontal bar per [name, count], the largest first
export function barChart(container, entries, title) {
  const row = 24, label = 130, room = WIDTH - label - 70;
  const most = Math.max(1, ...entries.map(([, n]) => n));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${Math.max(row, entries.length * row)}`, class: "bars" });
  entries.forEach(([name, count], i) => {
    const y = i * row;
    chart.append(svg("text", { x: label - 8, y: y + 16, "text-anchor": "end", class: "label" }, name),
      svg("rect", { x: label, y: y + 4, height: row - 8, width: Math.max(1, (count / most) * room), rx: 3 }),
      svg("text", { x: label + (count / most) * room + 6, y: y + 16, class: "value" }, count.toLocaleString()));
  });
  const top = entries.slice(0, 3).map(([name, count]) => `${name} ${count}`).join(", ");
  figure(container, chart, `${title}: ${top}${entries.length > 3 ? ", …" : ""}`, ["Genre", "Rows"], entries);
}

// one column per bin ({from, to, rows}), left to right
export function histogram(container, bins, title) {
  const height = 180, base = height - 24, width = WIDTH / bins.length;
  const most = Math.max(1, ...bins.map((b) => b.rows));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "columns" });
  const named = bins.map((b) => [`${b.from.toFixed(1)}–${b.to.toFixed(1)}`, b.rows]);
  bins.forEach((bin, i) => {
    const tall = (bin.rows / most) * (base - 20);
    const x = i * width;
    chart.append(svg("rect", { x: x + 4, y: base - tall, width: width - 8, height: Math.max(tall, 0.5), rx: 2 }),
      svg("text", { x: x + width / 2, y: base - tall - 4, "text-anchor": "middle", class: "value" },
        bin.rows ? bin.rows.toLocaleString() : ""),
      svg("text", { x: x + width / 2, y: height - 6, "text-anchor": "middle", class: "label" }, named[i][0]));
  });
  const sure = bins.filter((b) => b.from >= 0.5).reduce((n, b) => n + b.rows, 0);
  const all = bins.reduce((n, b) => n + b.rows, 0);
  figure(container, chart, `${title}: ${sure} of ${all} rows scored 0.5 or more`, ["First genre's score", "Rows"],
    named);
}
