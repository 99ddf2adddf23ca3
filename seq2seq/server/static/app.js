// The page of `seq2seq serve`: calls the server's TF-Serving-style REST API and draws the attention.
// Translation: signature `translate_with_attention` (one request per sentence) and, for the n-best list,
// `translate_nbest`. Captioning: `caption_with_attention`; the regions form a square grid (row-major).
"use strict";

const PAD = "<pad>";
const EOS = "</s>";

function $(id) { return document.getElementById(id); }

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function predict(model, signature, instances) {
  const response = await fetch(`/v1/models/${encodeURIComponent(model)}:predict`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({signature_name: signature, instances: instances}),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body.predictions;
}

// A table: one row per target piece, one column per source piece, cell darkness = attention weight.
function attentionTable(rowLabels, columnLabels, weights) {
  const table = document.createElement("table");
  table.className = "attention";
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const label of columnLabels) {
    const th = document.createElement("th");
    th.textContent = label;
    head.appendChild(th);
  }
  const body = table.createTBody();
  rowLabels.forEach((label, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = label;
    row.appendChild(th);
    columnLabels.forEach((_, j) => {
      const cell = row.insertCell();
      const w = weights[i][j];
      cell.style.background = `rgba(20, 60, 200, ${w.toFixed(3)})`;
      cell.title = `${label} ← ${columnLabels[j]}: ${w.toFixed(3)}`;
    });
  });
  return table;
}

// Pieces up to and including the first EOS; source padding dropped.
function targetLength(pieces) {
  const eos = pieces.indexOf(EOS);
  const pad = pieces.indexOf(PAD);
  return eos >= 0 ? eos + 1 : (pad >= 0 ? pad : pieces.length);
}

async function translate() {
  const model = $("translation-model").value;
  const sentences = $("source").value.split("\n").map(s => s.trim()).filter(s => s.length > 0);
  const out = $("translations");
  out.replaceChildren();
  if (!sentences.length) { setStatus("Type a sentence first.", true); return; }
  setStatus(`Translating ${sentences.length} sentence(s)…`);
  try {
    const nbest = $("nbest").checked ? await predict(model, "translate_nbest", sentences) : null;
    for (const [i, sentence] of sentences.entries()) {
      const [p] = await predict(model, "translate_with_attention", [sentence]);
      const div = document.createElement("div");
      div.className = "result";
      const text = document.createElement("p");
      text.className = "translation";
      text.textContent = p.translation;
      div.appendChild(text);
      if (nbest) {
        const list = document.createElement("ol");
        list.className = "nbest";
        nbest[i].translations.forEach((t, k) => {
          const item = document.createElement("li");
          item.textContent = `${t} (${nbest[i].scores[k].toFixed(3)})`;
          list.appendChild(item);
        });
        div.appendChild(list);
      }
      const source = p.source_pieces.filter(s => s !== PAD);
      const rows = targetLength(p.target_pieces);
      const weights = p.attention.slice(0, rows).map(r => r.slice(0, source.length));
      div.appendChild(attentionTable(p.target_pieces.slice(0, rows), source, weights));
      out.appendChild(div);
    }
    setStatus(`Translated ${sentences.length} sentence(s).`);
  } catch (err) {
    setStatus(`Error: ${err.message}`, true);
  }
}

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({url: reader.result, b64: reader.result.split(",", 2)[1]});
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the browser cannot show this image"));
    image.src = url;
  });
}

// One canvas per word: the image, darkened where the word's attention is low (grid stretched over it).
function wordCanvas(image, word, weights) {
  const side = Math.round(Math.sqrt(weights.length));
  const [rows, cols] = side * side === weights.length ? [side, side] : [1, weights.length];
  const canvas = document.createElement("canvas");
  canvas.width = 112;
  canvas.height = 112;
  canvas.className = "word-attention";
  canvas.dataset.word = word;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  const top = Math.max(...weights) || 1;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = `rgba(0, 0, 0, ${(0.85 * (1 - weights[r * cols + c] / top)).toFixed(3)})`;
      ctx.fillRect(c * canvas.width / cols, r * canvas.height / rows, canvas.width / cols, canvas.height / rows);
    }
  }
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = word;
  figure.append(canvas, caption);
  return figure;
}

async function caption(file) {
  const model = $("caption-model").value;
  $("caption").textContent = "";
  $("caption-attention").replaceChildren();
  setStatus(`Captioning ${file.name}…`);
  try {
    const {url, b64} = await readAsBase64(file);
    const [p] = await predict(model, "caption_with_attention", [{b64: b64}]);
    $("caption").textContent = p.caption;
    const image = await loadImage(url);
    for (let t = 0; t < p.lengths; t++) {
      $("caption-attention").appendChild(wordCanvas(image, p.target_pieces[t], p.attention[t]));
    }
    setStatus(`Captioned ${file.name}.`);
  } catch (err) {
    setStatus(`Error: ${err.message}`, true);
  }
}

function fillSelect(select, models) {
  for (const m of models) {
    const option = document.createElement("option");
    option.value = option.textContent = m.name;
    select.appendChild(option);
  }
}

async function start() {
  try {
    const {models} = await (await fetch("/api/models")).json();
    const translation = models.filter(m => m.task === "translation");
    const captioning = models.filter(m => m.task === "captioning");
    fillSelect($("translation-model"), translation);
    fillSelect($("caption-model"), captioning);
    $("translate-section").hidden = !translation.length;
    $("caption-section").hidden = !captioning.length;
    setStatus(`Serving ${models.map(m => `${m.name} (${m.task})`).join(", ")}.`);
  } catch (err) {
    setStatus(`Error: cannot list the models: ${err.message}`, true);
  }
  $("translate-button").addEventListener("click", translate);
  $("image-file").addEventListener("change", e => { if (e.target.files.length) caption(e.target.files[0]); });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", e => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", e => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) caption(e.dataTransfer.files[0]);
  });
}

start();
