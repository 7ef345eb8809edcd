// The first load's JavaScript, compressed (gzip -9), must stay under the budget
// (issue 13: 200 kB). Counts every script and module preload index.html names.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const BUDGET = 200 * 1024;
const dist = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "dist");
const html = fs.readFileSync(path.join(dist, "index.html"), "utf8");
const refs = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+)"/g)].map((m) => m[1]);
if (/<script(?![^>]*\ssrc=)[^>]*>/.test(html)) {
  console.error("index.html has an inline script: the Content-Security-Policy forbids it");
  process.exit(1);
}
let raw = 0;
let gz = 0;
for (const r of refs) {
  const b = fs.readFileSync(path.join(dist, r.replace(/^\//, "")));
  raw += b.length;
  gz += zlib.gzipSync(b, { level: 9 }).length;
}
console.log(JSON.stringify({ scripts: refs, bytes: raw, gzip_bytes: gz, budget_bytes: BUDGET }));
if (refs.length === 0 || gz > BUDGET) {
  console.error(refs.length === 0 ? "no script found in index.html" : `first-load JavaScript ${gz} B gzip > ${BUDGET} B`);
  process.exit(1);
}
