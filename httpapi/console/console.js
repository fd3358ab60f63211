// stateloop web console: renders the JSON API of package httpapi
// (GET v1/console/app, v1/console/partitions, v1/console/dead-letters,
// v1/console/rates, v1/console/ids/..., v1/state/{namespace}/{name}/{id}
// and v1/timers; POST v1/console/send/... and v1/dead-letters/replay).
// Plain JS, no dependencies. URLs are relative, so the console also works
// behind a proxy under a path prefix. ?lookup=namespace/name/id looks an
// address up when the page loads, ?ids=namespace/name lists the ids of a
// type, ?timers=namespace/name[/id] its delayed messages.
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
  function getJSON(path) {
    return requestJSON("GET", path);
  }

  // requestJSON sends a request (with a JSON body, if given) and returns
  // the JSON answer; a non-2xx answer throws its "error", with its status.
  async function requestJSON(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let answer = null;
    try {
      answer = await resp.json();
    } catch (e) {
      // not JSON: the status says it
    }
    if (!resp.ok) {
      const err = new Error((answer && answer.error) || resp.status + " " + resp.statusText);
      err.status = resp.status;
      if (resp.status === 401) {
        askForToken(token() ? "rejected" : "needed", token()
          ? "The listener refused the token this tab has: enter its token."
          : "This listener needs its token: enter it to see the application.");
      }
      throw err;
    }
    answer = answer || {};
    answer.httpStatus = resp.status;
    return answer;
  }

  // typePath is "namespace/name" with both parts escaped for a URL path.
  function typePath(type) {
    return type.split("/").map(encodeURIComponent).join("/");
  }

  function validType(type) {
    const t = type.split("/");
    return t.length === 2 && t[0] !== "" && t[1] !== "";
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
      let status;
      if (d.replayed) status = h("span", { class: "replayed" }, "replayed " + time(d.replayed));
      else if (d.not_replayable) status = h("span", { class: "muted", title: d.not_replayable }, "cannot be replayed");
      else status = h("button", { type: "button", class: "replay", "data-ref": d.ref, title: "Deliver the message to its address again, once" }, "Replay");
      return h("tr", { class: "dead-letter", "data-ref": d.ref },
        h("td", null, time(d.time)),
        h("td", { class: "reason" }, d.reason),
        h("td", null, h("code", null, addr)),
        h("td", null, h("code", null, src)),
        h("td", null, value, d.truncated ? h("span", { class: "muted" }, " (truncated)") : ""),
        h("td", { class: "muted" }, d.partition + "@" + d.offset),
        h("td", { class: "replay-status" }, status));
    });
    show("dead-letters", "loaded",
      rows.length
        ? table(["Time", "Reason", "Address", "Source", "Message", "Record", "Replay"], rows, { id: "dead-letter-table" })
        : h("p", { class: "muted" }, "No dead letters in ", h("code", null, info.topic), "."),
      ...errors(info.errors));
  }


  // replay replays one dead letter through the runtime (POST
  // v1/dead-letters/replay), which delivers it once however often it is
  // asked, and shows the outcome in its row.
  async function replay(button) {
    const ref = button.dataset.ref;
    const cell = button.closest("td");
    button.disabled = true;
    cell.replaceChildren(h("span", { class: "muted" }, "replaying…"));
    let res;
    try {
      res = await requestJSON("POST", "v1/dead-letters/replay", { refs: [ref] });
    } catch (err) {
      cell.replaceChildren(h("span", { class: "error replay-outcome" }, String(err.message)));
      return;
    }
    const o = (res.results || [])[0] || { status: "unknown" };
    cell.replaceChildren(h("span", { class: "replay-outcome " + (o.error ? "error" : "replayed"), "data-status": o.status },
      o.status + (o.error ? ": " + o.error : "")));
    loadDeadLetters();
  }

  // ---- invocation and failure rates

  function rate(v) {
    if (v === null || v === undefined) return "–";
    return v === 0 ? "0" : v < 0.01 ? "< 0.01" : v.toFixed(2);
  }

  async function loadRates() {
    let info;
    try {
      info = await getJSON("v1/console/rates");
    } catch (err) {
      showError("rates", err);
      return;
    }
    const rows = info.functions.map((f) => h("tr", { class: "rate", "data-type": f.type },
      h("td", null, h("code", null, f.type)),
      num(f.invocations, "invocations"),
      num(rate(f.invocations_per_second), "invocations-rate"),
      num(f.failures, f.failures > 0 ? "failures bad-count" : "failures"),
      num(rate(f.failures_per_second), f.failures_per_second > 0 ? "failures-rate bad-count" : "failures-rate"),
      num(f.dead_letters, "dead-letters")));
    const window = info.window_seconds > 0
      ? "rates per second over the last " + Math.round(info.window_seconds) + " s"
      : "rates from the next refresh on";
    show("rates", "loaded",
      rows.length
        ? table(["Function type", { text: "Invocations", attrs: { class: "num" } }, { text: "/ s", attrs: { class: "num" } },
          { text: "Failures", attrs: { class: "num" } }, { text: "/ s", attrs: { class: "num" } },
          { text: "Dead letters", attrs: { class: "num" } }], rows, { id: "rate-table" })
        : h("p", { class: "muted" }, "No invocations yet."),
      h("p", { class: "muted" }, "Counted by this instance (", h("code", null, info.instance), ") since it started; ", window,
        ". Failures are failed attempts, retries included. Each instance counts its own invocations: its /metrics has them."),
      ...errors(info.error ? [info.error] : []));
  }

  // ---- ids of a function type

  let idsQuery = null; // {type, prefix, after}: the page shown

  async function loadIDs(type, prefix, after) {
    if (!validType(type)) {
      show("ids", "error", h("p", { class: "error" }, "want a function type namespace/name, got " + JSON.stringify(type)));
      return;
    }
    $("ids-type").value = type;
    $("ids-prefix").value = prefix;
    idsQuery = { type, prefix, after };
    const q = new URLSearchParams({ n: "50" });
    if (prefix) q.set("prefix", prefix);
    if (after) q.set("after", after);
    show("ids", "loading", h("p", { class: "muted" }, "Reading the ids of " + type + "…"));
    let info;
    try {
      info = await getJSON("v1/console/ids/" + typePath(type) + "?" + q);
    } catch (err) {
      show("ids", err.status === 404 ? "not-found" : "error", h("p", { class: err.status === 404 ? "muted" : "error" }, String(err.message)));
      return;
    }
    const rows = info.ids.map((id) => h("tr", { class: "id", "data-id": id },
      h("td", null, h("code", null, id)),
      h("td", null,
        h("button", { type: "button", class: "link look-up", "data-type": type, "data-id": id }, "state"), " ",
        h("button", { type: "button", class: "link send-to", "data-type": type, "data-id": id }, "send"), " ",
        h("button", { type: "button", class: "link timers-of", "data-type": type, "data-id": id }, "delayed"))));
    const pager = h("p", { class: "pager" },
      info.total + (info.total === 1 ? " id" : " ids") + (prefix ? " starting with " + JSON.stringify(prefix) : "") + " with state",
      info.ids.length ? "; showing " + JSON.stringify(info.ids[0]) + " to " + JSON.stringify(info.ids[info.ids.length - 1]) : "",
      " ",
      after ? h("button", { type: "button", class: "link", id: "ids-first" }, "first page") : "", " ",
      info.next ? h("button", { type: "button", class: "link", id: "ids-next", "data-after": info.next }, "next page") : "");
    show("ids", "loaded", pager,
      rows.length ? h("div", { class: "scroll" }, table(["ID", ""], rows, { id: "id-table" })) : h("p", { class: "muted" }, "No ids."));
  }

  // ---- sending a message

  async function send(type, id, messageType, value, wait) {
    if (!validType(type) || !id) {
      show("send", "error", h("p", { class: "error" }, "want a function type namespace/name and an id"));
      return;
    }
    const addr = type + "/" + id;
    show("send", "sending", h("p", { class: "muted" }, "Sending to " + addr + "…"));
    let res;
    try {
      res = await requestJSON("POST", "v1/console/send/" + typePath(type) + "/" + encodeURIComponent(id) + (wait ? "?wait=5s" : ""),
        { type: messageType, value });
    } catch (err) {
      show("send", "error", h("p", { class: "error" }, String(err.message)));
      return;
    }
    if (res.httpStatus === 200) {
      show("send", "replied",
        h("p", null, "Sent to ", h("code", null, addr), "; ", h("code", null, res.replier || addr), " replied:"),
        table(["Type", "Value"], [h("tr", { id: "send-reply" }, h("td", null, h("code", null, res.type)),
          h("td", { class: "value" }, h("pre", null, display(res.value))))]));
    } else {
      show("send", "accepted",
        h("p", null, "Sent to ", h("code", null, addr), ": written to ", h("code", null, res.topic + "/" + res.partition + "@" + res.offset), "."),
        res.error ? h("p", { class: "muted" }, res.error) : "");
    }
    refresh();
  }

  // ---- delayed messages

  let timersQuery = null;

  async function loadTimers(type, id) {
    if (!validType(type)) {
      show("timers", "error", h("p", { class: "error" }, "want a function type namespace/name, got " + JSON.stringify(type)));
      return;
    }
    $("timers-type").value = type;
    $("timers-id").value = id;
    timersQuery = { type, id };
    const q = new URLSearchParams({ type });
    if (id) q.set("id", id);
    show("timers", "loading", h("p", { class: "muted" }, "Reading the delayed messages of " + type + (id ? "/" + id : "") + "…"));
    let info;
    try {
      info = await getJSON("v1/timers?" + q);
    } catch (err) {
      showError("timers", err);
      return;
    }
    const rows = info.timers.map((t) => h("tr", { class: "timer" },
      h("td", { class: "nowrap" }, dueIn(t.due), h("br"), h("span", { class: "muted small" }, time(t.due))),
      h("td", null, h("code", null, t.sender), h("br"), h("code", { class: "muted small token" }, t.token)),
      h("td", null, h("code", null, t.message ? t.message.target : "")),
      h("td", null, t.message ? [h("code", { class: "small" }, t.message.type), h("pre", null, display(t.message.value))] : ""),
      h("td", { class: "cancel-cell" }, h("button", { type: "button", class: "cancel-timer", "data-sender": t.sender, "data-token": t.token,
        title: "Cancel this delayed message: it is not sent" }, "Cancel"))));
    show("timers", "loaded",
      rows.length
        ? table(["Due", "Sender and token", "Target", "Message", ""], rows, { id: "timer-table" })
        : h("p", { class: "muted" }, "No delayed messages of ", h("code", null, type + (id ? "/" + id : "")), " are waiting."),
      ...errors(info.errors));
  }

  // dueIn says how long until a time: "in 5 min".
  function dueIn(t) {
    const s = Math.round((Date.parse(t) - Date.now()) / 1000);
    if (s <= 0) return "due now";
    if (s < 120) return "in " + s + " s";
    if (s < 7200) return "in " + Math.round(s / 60) + " min";
    if (s < 172800) return "in " + Math.round(s / 3600) + " h";
    return "in " + Math.round(s / 86400) + " days";
  }

  // cancelTimer cancels a delayed message through the runtime (DELETE
  // v1/timers/{sender}/{token}), in order with its sender's messages.
  async function cancelTimer(button) {
    const sender = parseAddress(button.dataset.sender);
    const cell = button.closest("td");
    button.disabled = true;
    let res;
    try {
      res = await requestJSON("DELETE", "v1/timers/" + typePath(sender.type) + "/" + encodeURIComponent(sender.id) + "/" + encodeURIComponent(button.dataset.token));
    } catch (err) {
      cell.replaceChildren(h("span", { class: "error" }, String(err.message)));
      return;
    }
    cell.replaceChildren(h("span", { class: "muted cancelled" }, res.timers.length ? "cancelled" : "already sent"));
    if (timersQuery) loadTimers(timersQuery.type, timersQuery.id);
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
      await Promise.all([loadApp(), loadPartitions(), loadDeadLetters(), loadRates()]);
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
    $("send-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      send($("send-type").value.trim(), $("send-id").value, $("send-message-type").value.trim(), $("send-value").value, $("send-wait").checked);
    });
    $("ids-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadIDs($("ids-type").value.trim(), $("ids-prefix").value, "");
    });
    $("timers-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadTimers($("timers-type").value.trim(), $("timers-id").value);
    });
    // the buttons of the tables, made anew on every refresh
    document.addEventListener("click", (ev) => {
      const b = ev.target.closest("button");
      if (!b) return;
      if (b.classList.contains("replay")) replay(b);
      else if (b.classList.contains("cancel-timer")) cancelTimer(b);
      else if (b.id === "ids-next") loadIDs(idsQuery.type, idsQuery.prefix, b.dataset.after);
      else if (b.id === "ids-first") loadIDs(idsQuery.type, idsQuery.prefix, "");
      else if (b.classList.contains("look-up")) {
        wanted = { type: b.dataset.type, id: b.dataset.id };
        lookup(b.dataset.type, b.dataset.id);
      } else if (b.classList.contains("send-to")) {
        $("send-type").value = b.dataset.type;
        $("send-id").value = b.dataset.id;
        $("send-value").focus();
      } else if (b.classList.contains("timers-of")) loadTimers(b.dataset.type, b.dataset.id);
    });
    setInterval(() => {
      if ($("auto-refresh").checked && document.visibilityState === "visible") refresh();
    }, REFRESH_MS);

    refresh();
    const params = new URLSearchParams(location.search);
    if (params.get("ids")) loadIDs(params.get("ids"), "", "");
    if (params.get("timers")) {
      const a = parseAddress(params.get("timers"));
      if (a) loadTimers(a.type, a.id);
      else loadTimers(params.get("timers"), "");
    }
    const want = params.get("lookup");
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
