// singularity-workflow dashboard: confirmations and live updates (no build step, no library).
//
// Every value from the server is written with textContent or setAttribute, never innerHTML,
// except the list fragments (/runs/live, /queues/live, /charts/live, a run's timeline), which the
// server renders with Jinja2's escaping (the charts' SVG with html.escape) like the page itself.
"use strict";

(function () {
  const indicator = () => document.getElementById("live-indicator");
  function setLive(ok) {
    const el = indicator();
    if (el) el.dataset.ok = ok ? "yes" : "no";
  }

  // Each action form asks first; a declined dialog sends nothing.
  function wireConfirmations() {
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (e) => {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
  }

  function stream(url, handlers) {
    const source = new EventSource(url);
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => {
        setLive(true);
        fn(e.data ? JSON.parse(e.data) : {});
      });
    }
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setState(el, state) {
    if (!el) return;
    el.setAttribute("class", el.getAttribute("class").replace(/\bstate-[a-z]+/, "state-" + state));
    el.dataset.state = state;
  }

  // ---- run page: apply the snapshot the server streams ----
  function applyRun(snap) {
    const badge = document.getElementById("run-state");
    setState(badge, snap.state);
    setText(badge, snap.state);
    setText(document.getElementById("run-progress"), snap.progress);
    const bar = document.getElementById("run-bar");
    if (bar) bar.value = snap.percentage;
    setText(document.getElementById("run-ended"), snap.ended);
    setText(document.getElementById("run-duration"), snap.duration);
    const err = document.getElementById("run-error");
    if (err && snap.error && !err.textContent.includes(snap.error)) setText(err, snap.error);
    setText(document.getElementById("run-output"), snap.output);
    for (const s of snap.steps) {
      const node = document.querySelector('#dag g.node[data-step="' + CSS.escape(s.step) + '"]');
      if (node) {
        setState(node, s.state);
        setText(node.querySelector(".st"), s.state);
        setText(node.querySelector("title"), s.step + ": " + s.state);
        if (s.type === "map") setText(node.querySelector(".tasks"), s.tasks ? s.tasks + " tasks" : "");
      }
      const row = document.querySelector('#steps-table tr[data-step="' + CSS.escape(s.step) + '"]');
      if (row) {
        const cell = (f) => row.querySelector('[data-field="' + f + '"]');
        setState(cell("state"), s.state);
        for (const f of ["state", "tasks", "attempts", "started", "ended", "duration", "waiting"]) setText(cell(f), s[f]);
        setText(cell("error"), s.error.split("\n")[0].slice(0, 80));
      }
    }
    for (const [name, allowed] of Object.entries(snap.actions)) {
      const form = document.getElementById("act-" + name);
      if (form) form.hidden = !allowed;
    }
    document.body.dataset.runState = snap.state;
  }

  // ---- lists: re-fetch the server-rendered fragment ----
  async function refresh(container) {
    const response = await fetch(container.dataset.src, { credentials: "same-origin" });
    if (!response.ok) return;
    container.innerHTML = await response.text(); // escaped by the server's templates
    container.dataset.refreshed = String(Date.now());
  }

  function runsPage() {
    const container = document.getElementById("runs-live");
    const auto = document.getElementById("auto-update");
    if (!container) return;
    stream("/live/runs", {
      changed: () => {
        if (auto && auto.checked) refresh(container);
      },
    });
  }

  function runPage() {
    const root = document.getElementById("run");
    if (!root) return;
    stream("/live/runs/" + encodeURIComponent(root.dataset.run), { status: applyRun });
  }

  // ---- fragments that refresh themselves: data-live-src, every data-live-every ms ----
  // (the charts page, a run's timeline); the server renders them with escaping.
  function liveFragments() {
    document.querySelectorAll("[data-live-src]").forEach((el) => {
      const load = async () => {
        const response = await fetch(el.dataset.liveSrc, { credentials: "same-origin" });
        if (!response.ok) return;
        el.innerHTML = await response.text();
        el.dataset.refreshed = String(Date.now());
      };
      if (!el.children.length) load();
      setInterval(load, Number(el.dataset.liveEvery || 5000));
    });
  }

  function queuesPage() {
    const container = document.getElementById("queues-live");
    if (!container) return;
    setLive(true);
    setInterval(() => refresh(container), 2000);
  }

  function channelPage() {
    const table = document.getElementById("messages");
    if (!table) return;
    const body = table.querySelector("tbody");
    const url = "/live/channels/" + encodeURIComponent(table.dataset.channel) + "?after=" + encodeURIComponent(table.dataset.after);
    stream(url, {
      messages: (list) => {
        for (const m of list) {
          if (body.querySelector('tr[data-id="' + m.id + '"]')) continue;
          const tr = document.createElement("tr");
          tr.dataset.id = String(m.id);
          const cells = [String(m.id), m.at, m.acked ? "yes" : ""];
          cells.forEach((text, i) => {
            const td = document.createElement("td");
            td.textContent = text;
            td.className = i === 0 ? "num" : i === 1 ? "mono" : "";
            tr.appendChild(td);
          });
          const td = document.createElement("td");
          const pre = document.createElement("pre");
          pre.className = "json";
          pre.textContent = m.text;
          td.appendChild(pre);
          tr.appendChild(td);
          body.appendChild(tr);
          tr.classList.add("fresh");
        }
        const empty = document.getElementById("messages-empty");
        if (empty) empty.hidden = body.children.length > 0;
      },
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wireConfirmations();
    liveFragments();
    const page = document.body.dataset.page;
    if (page === "runs") runsPage();
    else if (page === "run") runPage();
    else if (page === "queues") queuesPage();
    else if (page === "channel") channelPage();
  });
})();
