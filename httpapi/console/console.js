// stateloop web console: renders the JSON API of package httpapi
// (GET v1/console/app, v1/console/partitions, v1/console/dead-letters and
// v1/state/{namespace}/{name}/{id}). Plain JS, no dependencies. URLs are
// relative, so the console also works behind a proxy under a path prefix.
// ?lookup=namespace/name/id looks an address up when the page loads.
//
// A listener with a token answers 401 without it. The page then asks for
// the token, or takes it once from the URL fragment (#token=..., which no
// browser sends to a server), removes it from the address bar, keeps it
// in sessionStorage (this tab only, gone when it closes) and sends it as
// "Authorization: Bearer" with every request. No cookie is ever used, so
// no other site's page can make the browser send the token.
"use strict";

(function () {
  const REFRESH_MS = 10000;

  const $ = (id) => document.getElementById(id);

  // ---- the listener's token

  const TOKEN_KEY = "stateloop.token";
  let memoryToken = ""; // where sessionStorage is not available

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return memoryToken;
    }
  }

  function setToken(t) {
    memoryToken = t;
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // memoryToken serves
    }
    $("forget-token").hidden = !t;
  }

  // takeTokenFromFragment moves a #token=... of the URL into the tab's
  // storage and out of the address bar and history.
  function takeTokenFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has("token")) return;
    setToken(params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }

  // askForToken shows the token form: state "needed" (none was sent) or
  // "rejected" (the one sent is not the listener's).
  function askForToken(state, message) {
    $("auth").hidden = false;
    $("auth").dataset.state = state;
    $("auth-message").textContent = message;
  }

  // h builds an element; children are nodes or strings (set as text, never
  // parsed as HTML).
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function table(head, rows, attrs) {
    return h("table", attrs,
      h("thead", null, h("tr", null, head.map((c) =>
        typeof c === "string" ? h("th", null, c) : h("th", c.attrs, c.text)))),
      h("tbody", null, rows));
  }

  function num(v, cls) {
    return h("td", { class: cls ? "num " + cls : "num" }, v);
  }

  function show(section, state, ...nodes) {
    $(section).dataset.state = state;
    $(section).querySelector(".body").replaceChildren(...nodes);
  }

  function showError(section, err) {
    show(section, "error", h("p", { class: "error" }, String(err.message || err)));
  }

  // getJSON fetches a JSON body; a non-2xx answer throws its "error".
  async function getJSON(path) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const resp = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      // not JSON: the status says it
    }
    if (!resp.ok) {
      const err = new Error((body && body.error) || resp.status + " " + resp.statusText);
      err.status = resp.status;
      if (resp.status === 401) {
        askForToken(token() ? "rejected" : "needed", token()
          ? "The listener refused the token this tab has: enter its token."
          : "This listener needs its token: enter it to see the application.");
      }
      throw err;
    }
    return body;
  }

  function display(v) {
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }

  function time(t) {
    if (!t || t.startsWith("0001-")) return "";
    return t.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
  }

  function errors(list) {
    return (list || []).map((e) => h("p", { class: "error" }, e));
  }

  // ---- application and function types

  async function loadApp() {
    let app;
    try {
      app = await getJSON("v1/console/app");
    } catch (err) {
      $("status").className = err.status === 401 ? "badge warn" : "badge bad";
      $("status").textContent = err.status === 401 ? "token needed" : "unreachable";
      showError("functions", err);
      return;
    }
    document.title = "stateloop " + app.app;
    $("app-name").textContent = app.app;
    $("status").className = "badge " + (app.ready ? "ok" : "warn");
    $("status").textContent = app.ready ? "ready" : "recovering";
    $("status").title = "HTTP instance " + app.instance + (app.ready ? ": the processor owns and has recovered its partitions" : ": the processor is recovering its partitions");

    $("function-types").replaceChildren(...app.functions.map((f) => h("option", { value: f.type })));

    const rows = app.functions.map((f) => h("tr", { "data-type": f.type },
      h("td", null, h("code", { class: "function-type" }, f.type)),
      h("td", null, f.namespace),
      h("td", null, f.listed ? "listed" : "namespace " + f.namespace + "/*"),
      h("td", null, h("code", null, f.table), f.table_exists ? "" : h("span", { class: "muted" }, " (not created yet)")),
      h("td", null, (f.ingresses || []).join(", "))));
    const nodes = [
      table(["Function type", "Namespace", "From", "State table", "Ingresses"], rows, { id: "function-table" }),
    ];
    if (app.namespaces.length) {
      nodes.push(h("p", null, "Namespaces served as a whole: ",
        app.namespaces.map((ns, i) => [i ? ", " : "", h("code", { class: "namespace" }, ns + "/*")]),
        h("span", { class: "muted" }, " (a type of these is listed once its table exists)")));
    }
    if (app.ingresses.length) {
      nodes.push(h("h3", null, "Ingresses"), table(["Topic", "Value type", "Targets"], app.ingresses.map((i) => h("tr", null,
        h("td", null, h("code", null, i.topic)),
        h("td", null, h("code", null, i.value_type)),
        h("td", null, i.router ? "router function" : (i.targets || []).join(", "))))));
    }
    if (app.egresses.length) {
      nodes.push(h("h3", null, "Egresses"), table(["Egress", "Topics"], app.egresses.map((e) => h("tr", null,
        h("td", null, h("code", null, e.id)),
        h("td", null, e.topics.join(", ") + (e.any_topic ? (e.topics.length ? " (or any topic)" : "any topic") : ""))))));
    }
    nodes.push(h("p", { class: "muted" }, app.partitions + " partitions; topics ",
      h("code", null, app.topics.loop), ", ", h("code", null, app.topics.dead_letter), ", ",
      h("code", null, app.topics.replies), ", ", h("code", null, app.topics.timers)));
    nodes.push(...errors(app.error ? [app.error] : []));
    show("functions", "loaded", ...nodes);
  }

  // ---- partitions, owners and lag

  async function loadPartitions() {
    let info;
    try {
      info = await getJSON("v1/console/partitions");
    } catch (err) {
      showError("partitions", err);
      return;
    }
    const members = info.members.map((m) => {
      const parts = Object.entries(m.assignment).sort().map(([t, ps]) => t + ": " + ps.join(","));
      return h("tr", { class: "member" },
        h("td", null, h("code", { class: "member-id" }, m.member_id)),
        h("td", null, h("code", { class: "client-id" }, m.client_id), m.instance_id ? " (" + m.instance_id + ")" : ""),
        h("td", null, m.host),
        h("td", null, parts.join("; ")));
    });
    const parts = info.partitions.map((p) => h("tr", { class: "partition", "data-topic": p.topic, "data-partition": p.partition },
      h("td", null, h("code", null, p.topic)),
      num(p.partition),
      h("td", { class: "owner" }, p.owner
        ? [h("code", null, p.owner), h("span", { class: "muted" }, " " + p.client_id + " @ " + p.host)]
        : h("span", { class: "muted" }, "unassigned")),
      num(p.committed < 0 ? "–" : p.committed),
      num(p.lso),
      num(p.hwm > p.lso ? p.hwm + " (open txn)" : p.hwm),
      num((p.lag_exact ? "" : "≤ ") + p.lag, p.lag > 0 ? "lag" : ""),
      h("td", { class: "error" }, p.error || "")));
    $("summary").textContent = "lag " + info.lag + " · " + info.members.length + (info.members.length === 1 ? " instance" : " instances");
    show("partitions", "loaded",
      h("p", null, "Consumer group ", h("code", null, info.group), ": ", info.state || "unknown",
        ", " + info.members.length + (info.members.length === 1 ? " member" : " members") + ", total lag ", h("strong", { id: "total-lag" }, info.lag)),
      info.members.length
        ? table(["Member", "Client ID", "Host", "Assigned partitions"], members, { id: "member-table" })
        : h("p", { class: "muted" }, "No instance is running."),
      h("h3", null, "Partitions"),
      table(["Topic", { text: "Partition", attrs: { class: "num" } }, "Owner",
        { text: "Committed", attrs: { class: "num" } }, { text: "LSO", attrs: { class: "num" } },
        { text: "HWM", attrs: { class: "num" } }, { text: "Lag", attrs: { class: "num" } }, ""], parts, { id: "partition-table" }),
      h("p", { class: "muted" }, "Lag: committed records between the group's offset and the last stable offset (LSO); commit markers and aborted records do not count."),
      ...errors(info.errors));
  }

  // ---- dead letters

  async function loadDeadLetters() {
    let info;
    try {
      info = await getJSON("v1/console/dead-letters?n=20");
    } catch (err) {
      showError("dead-letters", err);
      return;
    }
    const rows = info.records.map((d) => {
      const addr = d.function_type ? d.function_type + "/" + d.function_id : "";
      const src = d.source ? d.source.topic + "/" + d.source.partition + "@" + d.source.offset : "";
      let value;
      if (d.value_dropped) value = h("span", { class: "muted" }, "(value dropped)");
      else if (d.message) value = [h("code", null, d.message.type), h("pre", null, display(d.message.value))];
      else if (d.value !== undefined) value = h("pre", null, display(d.value));
      return h("tr", { class: "dead-letter" },
        h("td", null, time(d.time)),
        h("td", { class: "reason" }, d.reason),
        h("td", null, h("code", null, addr)),
        h("td", null, h("code", null, src)),
        h("td", null, value, d.truncated ? h("span", { class: "muted" }, " (truncated)") : ""),
        h("td", { class: "muted" }, d.partition + "@" + d.offset));
    });
    show("dead-letters", "loaded",
      rows.length
        ? table(["Time", "Reason", "Address", "Source", "Message", "Record"], rows, { id: "dead-letter-table" })
        : h("p", { class: "muted" }, "No dead letters in ", h("code", null, info.topic), "."),
      ...errors(info.errors));
  }

  // ---- state lookup

  function parseAddress(s) {
    const parts = s.split("/");
    if (parts.length < 3 || parts.some((p, i) => i < 2 && p === "") || parts.slice(2).join("/") === "") {
      return null;
    }
    return { type: parts[0] + "/" + parts[1], id: parts.slice(2).join("/") };
  }

  async function lookup(type, id) {
    const t = type.split("/");
    const addr = type + "/" + id;
    if (t.length !== 2 || !t[0] || !t[1] || !id) {
      show("lookup", "error", h("p", { class: "error" }, "want a function type namespace/name and an id, got " + JSON.stringify(addr)));
      return;
    }
    $("lookup-type").value = type;
    $("lookup-id").value = id;
    show("lookup", "loading", h("p", { class: "muted" }, "Looking up " + addr + "…"));
    let res;
    try {
      res = await getJSON("v1/state/" + t.map(encodeURIComponent).join("/") + "/" + encodeURIComponent(id));
    } catch (err) {
      show("lookup", err.status === 404 ? "not-found" : "error", h("p", { class: err.status === 404 ? "muted" : "error" }, String(err.message)));
      return;
    }
    const rows = Object.entries(res.state).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, v]) => h("tr", { class: "state-value", "data-name": name },
      h("td", null, h("code", null, name)),
      h("td", null, h("code", null, v.type)),
      h("td", { class: "value" }, h("pre", null, display(v.value))),
      h("td", null, time(v.expires_at) || h("span", { class: "muted" }, "never"))));
    show("lookup", "found",
      h("p", null, "State of ", h("code", { id: "lookup-address" }, res.address)),
      table(["State", "Type", "Value", "Expires"], rows, { id: "state-table" }));
  }

  // ---- wiring

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      await Promise.all([loadApp(), loadPartitions(), loadDeadLetters()]);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } finally {
      refreshing = false;
    }
  }

  let wanted = null; // the address of ?lookup=, looked up again with a new token

  document.addEventListener("DOMContentLoaded", () => {
    takeTokenFromFragment();
    $("forget-token").hidden = !token();
    $("forget-token").addEventListener("click", () => {
      setToken("");
      refresh();
    });
    $("auth-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken($("auth-token").value.trim());
      $("auth-token").value = "";
      $("auth").hidden = true;
      $("auth").dataset.state = "idle";
      refresh();
      if (wanted) lookup(wanted.type, wanted.id);
    });
    $("refresh").addEventListener("click", refresh);
    $("lookup-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const type = $("lookup-type").value.trim();
      const id = $("lookup-id").value;
      const url = new URL(location.href);
      url.searchParams.set("lookup", type + "/" + id);
      history.replaceState(null, "", url);
      wanted = { type, id };
      lookup(type, id);
    });
    setInterval(() => {
      if ($("auto-refresh").checked && document.visibilityState === "visible") refresh();
    }, REFRESH_MS);

    refresh();
    const want = new URLSearchParams(location.search).get("lookup");
    if (want) {
      const a = parseAddress(want);
      if (a) {
        wanted = a;
        lookup(a.type, a.id);
      } else {
        show("lookup", "error", h("p", { class: "error" }, "?lookup=" + want + ": want namespace/name/id"));
      }
    }
  });
})();
