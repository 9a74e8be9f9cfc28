"""The page at GET /: type or paste text, see the picture of what the server found.

Plain HTML and an inline script, nothing from a CDN, so it works offline. The
script POSTs the text to ``extract``, then the answer to ``render`` (the server
draws it with ``spacy_pmei.render``) and shows the picture and the JSON. A
``?text=...`` parameter fills the box and runs at once (for links and tests).
Paths are relative, so the page also works under a route prefix.
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spacy-pmei</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
       max-width: 980px; padding: 16px; color: #111; }
h1 { font-size: 1.4em; margin: 0 0 4px; }
#model { color: #555; font-size: 0.9em; margin-bottom: 12px; }
textarea { width: 100%; box-sizing: border-box; font: inherit; padding: 8px; }
.row { display: flex; gap: 12px; align-items: center; margin: 8px 0; flex-wrap: wrap; }
button { font: inherit; padding: 6px 18px; cursor: pointer; }
#status { color: #555; min-height: 1.4em; }
#status.error { color: #b00020; }
#picture { margin: 12px 0; overflow-x: auto; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
</style>
</head>
<body>
<h1>spacy-pmei</h1>
<div id="model">entities and relations (PMEI)</div>
<form id="form">
<textarea id="text" rows="5" placeholder="Type or paste text, then press Extract (Ctrl+Enter)"></textarea>
<div class="row">
<button type="submit" id="go">Extract</button>
<label>threshold <input id="threshold" type="number" min="0.01" max="0.99" step="0.05" placeholder="pipeline's"></label>
<span id="status" role="status"></span>
</div>
</form>
<div id="picture"></div>
<details><summary>JSON answer</summary><pre id="json"></pre></details>
<script>
"use strict";
const $ = (id) => document.getElementById(id);

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)
  });
  let data;
  try { data = await response.json(); } catch (err) { throw new Error("HTTP " + response.status); }
  if (!response.ok) throw new Error(data.message || ("HTTP " + response.status));
  return data;
}

async function run() {
  const text = $("text").value;
  const request = {texts: [text]};
  const threshold = parseFloat($("threshold").value);
  if (!isNaN(threshold)) request.threshold = threshold;
  $("status").className = "";
  $("status").textContent = "extracting...";
  $("go").disabled = true;
  try {
    const answer = await post("extract", request);
    const docs = answer.records.map((record) => Object.assign({text: text}, record));
    const width = Math.max(300, Math.min(1200, $("picture").clientWidth || 900));
    const picture = await post("render", {docs: docs, width: width});
    $("picture").innerHTML = picture.html;
    $("json").textContent = JSON.stringify(answer, null, 2);
    const record = answer.records[0];
    $("status").textContent = record.entities.length + " entities, " + record.relations.length + " relations";
    $("picture").setAttribute("data-relations", String(record.relations.length));
  } catch (err) {
    $("status").className = "error";
    $("status").textContent = err.message;
  } finally {
    $("go").disabled = false;
  }
}

$("form").addEventListener("submit", (event) => { event.preventDefault(); run(); });
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
});
fetch("meta").then((r) => r.json()).then((meta) => {
  const m = meta.meta || {};
  $("model").textContent = (m.lang || "") + "_" + (m.name || "pipeline") + " " + (m.version || "") +
    ": relations " + (meta.labels ? meta.labels.relations.join(", ") : "");
}).catch(() => {});
const given = new URLSearchParams(window.location.search).get("text");
if (given !== null) { $("text").value = given; run(); }
</script>
</body>
</html>
"""
