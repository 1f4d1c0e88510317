// A small bar chart on a <canvas>: alerts and incidents per time bucket, drawn by hand.

import { formatTime } from "./dom.js";

const COLOURS = { alerts: "#3b82f6", incidents: "#dc2626" };
const PAD = { left: 36, right: 10, top: 10, bottom: 22 };

function niceMax(value) {
  if (value <= 5) return Math.max(1, value);
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((factor) => factor * power).find((step) => step >= value);
}

/** Draw `rows` ({start_ns, alerts, incidents}) into `canvas`, sized to its box. */
export function drawTimeline(canvas, rows) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 200;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  context.fillStyle = "#6b7280";
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  if (rows.length === 0) {
    context.fillText("No alerts or incidents yet.", PAD.left, PAD.top + plotHeight / 2);
    return;
  }
  const top = niceMax(Math.max(...rows.map((row) => Math.max(row.alerts, row.incidents))));
  context.strokeStyle = "#e5e7eb";
  context.textAlign = "right";
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + plotHeight * (1 - fraction);
    context.beginPath();
    context.moveTo(PAD.left, y);
    context.lineTo(width - PAD.right, y);
    context.stroke();
    context.fillText(String(Math.round(top * fraction)), PAD.left - 4, y + 4);
  }
  const slot = plotWidth / rows.length;
  const bar = Math.max(1, Math.min(18, (slot - 4) / 2));
  rows.forEach((row, index) => {
    const x = PAD.left + index * slot + slot / 2;
    for (const [offset, key] of [[-bar, "alerts"], [0, "incidents"]]) {
      const barHeight = (row[key] / top) * plotHeight;
      context.fillStyle = COLOURS[key];
      context.fillRect(x + offset, PAD.top + plotHeight - barHeight, bar - 1, barHeight);
    }
  });
  context.fillStyle = "#6b7280";
  context.textAlign = "center";
  const every = Math.max(1, Math.ceil(rows.length / 6));
  rows.forEach((row, index) => {
    if (index % every !== 0) return;
    const x = PAD.left + index * slot + slot / 2;
    context.fillText(formatTime(row.start_ns).slice(5, 16), x, height - 6);
  });
}
