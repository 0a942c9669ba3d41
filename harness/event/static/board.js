// The board: polls /api/state and redraws what changed, without a reload. Every text from the server goes in
// through textContent (a reason or a note is data, never markup). The token is sent once, to /api/login, which
// answers with an HttpOnly cookie: this script never keeps it.
"use strict";

const POLL_MS = 1000;
let shown = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key === "class") node.className = value;
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function refresh() {
  let response;
  try {
    response = await fetch("/api/state", { credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    document.getElementById("updated").textContent = "board unreachable, retrying";
    return;
  }
  if (response.status === 401) {  // a token that no longer opens anything (renewed): back to public
    await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    return refresh();
  }
  const text = await response.text();
  if (text === shown) return;
  shown = text;
  draw(JSON.parse(text));
}

function draw(state) {
  document.getElementById("event").textContent = state.event;
  const view = document.getElementById("view");
  view.dataset.view = state.view;
  view.textContent = state.view === "public" ? "Public view: participants appear under anonymous labels."
    : state.view === "organiser" ? "Organiser view: every participant, every cell."
    : `Participant view: ${state.me.id} (${state.me.organisation}), shown to others as ${state.me.label}.`;
  document.getElementById("login").hidden = state.view !== "public";
  document.getElementById("logout").hidden = state.view === "public";

  const schedule = document.querySelector("#schedule tbody");
  schedule.replaceChildren(...state.schedule.map(s => el("tr", { class: s.status, "data-slot": s.slot, "data-status": s.status },
    el("td", {}, s.slot), el("td", {}, s.round), el("td", {}, s.protocol), el("td", {}, `${s.a} \u2194 ${s.b}`),
    el("td", {}, s.cells), el("td", {}, s.status))));

  const cells = document.querySelector("#cells tbody");
  cells.replaceChildren(...state.cells.map(c => el("tr", { "data-cell": c.id, "data-verdict": c.verdict, "data-state": c.state },
    el("td", {}, c.protocol), el("td", {}, c.case), el("td", {}, c.a), el("td", {}, c.b),
    el("td", { class: c.verdict.replace(" ", "-"), title: c.reason || "" }, c.verdict), el("td", {}, c.state),
    el("td", {}, c.tries))));

  const mine = state.cells.filter(c => c.history);
  document.getElementById("mine").hidden = mine.length === 0;
  document.querySelector("#mine h2").textContent = state.view === "organiser" ? "Every cell" : "Your cells";
  const box = document.getElementById("my-cells");
  const notes = {};  // what someone is typing survives a redraw
  for (const area of box.querySelectorAll("textarea")) notes[area.dataset.cell] = area.value;
  box.replaceChildren(...mine.map(c => myCell(c, state, notes[c.id] || "")));
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function myCell(c, state, note) {
  const tries = el("ol", {}, ...c.history.map(t => el("li", { "data-try": t.try },
    `try ${t.number}: ${t.verdict}${t.reason ? " \u2014 " + t.reason : ""} `,
    ...t.files.map(f => el("a", { href: f.url, class: "evidence" }, f.name)).flatMap(a => [a, " "]))));
  const words = el("ul", {}, ...Object.entries(c.signoffs).map(([who, s]) =>
    el("li", { "data-signed": who }, `${who}: ${s.state}${s.note ? " (" + s.note + ")" : ""}${s.current ? "" : " (an earlier try)"}`)));
  const node = el("div", { class: "cell", "data-cell": c.id, "data-state": c.state },
    el("h3", {}, `${c.key}: ${c.verdict} (${c.state})`), tries, words);
  if (state.view === "participant" && c.mine && c.tries > 0) {
    const area = el("textarea", { "data-cell": c.id, placeholder: "note (required to dispute)" });
    area.value = note;
    const buttons = [["verified", "Confirm"], ["disputed", "Dispute"], ["re-test requested", "Request re-test"]]
      .map(([word, label]) => el("button", { type: "button", "data-word": word,
        onclick: () => signoff(c.id, c.history[c.history.length - 1].try, word, area) }, label));
    node.append(area, ...buttons, el("span", { class: "signoff-error", role: "alert" }));
  }
  return node;
}

async function signoff(cell, seen, word, area) {
  const response = await fetch("/api/signoff", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ cell, try: seen, state: word, note: area.value }),
  });
  if (!response.ok) {
    area.parentNode.querySelector(".signoff-error").textContent = (await response.json()).error;
    return;
  }
  area.value = "";
  shown = "";
  refresh();
}

document.getElementById("login").addEventListener("submit", async event => {
  event.preventDefault();
  const input = document.getElementById("token");
  const response = await fetch("/api/login", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: input.value }),
  });
  input.value = "";
  document.getElementById("login-error").textContent = response.ok ? "" : "unknown token";
  shown = "";
  refresh();
});

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  shown = "";
  refresh();
});

refresh();
setInterval(refresh, POLL_MS);
