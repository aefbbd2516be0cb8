// Charts drawn as SVG from the statistics API's buckets (no chart library: two kinds of chart are all the
// pages need). Each chart has a text summary for screen readers and a <title> per bar for a pointer's hover.

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function label(iso, bucketSeconds) {
  const date = new Date(iso);
  if (bucketSeconds >= 86400) return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// The top of the scale: at least the largest value, with a whole number at its middle line (1, 2, 4, 6, 8 or 10
// times a power of ten), so the axis never reads "0, 1, 1".
function niceMax(value) {
  if (value <= 2) return 2;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 4, 6, 8, 10].find((m) => m * magnitude >= value);
  return step * magnitude;
}

// Stacked bars: `series` is [{key, name, className}], each bucket has a number per key.
export function barChart({ buckets, series, bucketSeconds, title, height = 180 }) {
  const width = 720;
  const pad = { top: 10, right: 8, bottom: 24, left: 44 };
  const totals = buckets.map((b) => series.reduce((sum, serie) => sum + (b[serie.key] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const step = innerW / Math.max(1, buckets.length);
  const barW = Math.max(1, step * 0.8);
  const total = totals.reduce((a, b) => a + b, 0);
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": `${title}: ${total} in ${buckets.length} intervals, at most ${Math.max(0, ...totals)} in one`,
    preserveAspectRatio: "none",
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + innerH * (1 - fraction);
    svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    svg.append(s("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, Math.round(max * fraction)));
  }
  buckets.forEach((bucket, i) => {
    let y = pad.top + innerH;
    const x = pad.left + i * step + (step - barW) / 2;
    for (const serie of series) {
      const value = bucket[serie.key] || 0;
      if (!value) continue;
      const h = (value / max) * innerH;
      y -= h;
      svg.append(
        s("rect", { x, y, width: barW, height: h, class: serie.className },
          s("title", {}, `${label(bucket.start, bucketSeconds)} — ${serie.name}: ${value}`)),
      );
    }
  });
  const ticks = Math.min(6, buckets.length);
  for (let t = 0; t < ticks; t++) {
    const i = Math.floor((t * (buckets.length - 1)) / Math.max(1, ticks - 1));
    const x = pad.left + i * step + step / 2;
    // The first and last labels lean inwards so they are not cut at the chart's edges.
    const anchor = ticks > 1 && t === 0 ? "start" : ticks > 1 && t === ticks - 1 ? "end" : "middle";
    svg.append(s("text", { x, y: height - 6, class: "axis", "text-anchor": anchor }, label(buckets[i].start, bucketSeconds)));
  }
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const serie of series) {
    const key = document.createElement("span");
    key.className = `key ${serie.className}`;
    legend.append(key, ` ${serie.name} `);
  }
  const figure = document.createElement("figure");
  figure.className = "chart-box";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, svg, legend);
  return figure;
}
