// Builds the run view (web/run-view) into one self-contained HTML file: the script (with the ext-apps App class
// bundled in) and the style inlined, nothing loaded from the network. The build is deterministic: the same sources
// and pinned esbuild give the same bytes, and tests/test_run_view.py checks the shipped file equals a fresh build.
//
// Usage: node scripts/build_run_view.mjs [OUTPUT]   (default: acp_mcp/run_view.html; after `npm ci`)

import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join(ROOT, "web", "run-view");
const OUTPUT = process.argv[2] ?? join(ROOT, "acp_mcp", "run_view.html");

const script = await build({
  entryPoints: [join(SOURCE, "main.js")],
  bundle: true,
  write: false,
  format: "iife",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  absWorkingDir: ROOT,
  logLevel: "warning",
});
const style = await transform(await readFile(join(SOURCE, "style.css"), "utf8"), {
  loader: "css",
  minify: true,
  charset: "utf8",
});
const js = script.outputFiles[0].text.trim();
if (/<\/script/i.test(js)) throw new Error("the bundled script contains </script: it cannot be inlined");

const template = await readFile(join(SOURCE, "index.html"), "utf8");
const html = template
  .replace("/*STYLE*/", () => style.code.trim())
  .replace("/*SCRIPT*/", () => js);
await writeFile(OUTPUT, html, "utf8");
process.stderr.write(`wrote ${OUTPUT} (${Buffer.byteLength(html)} bytes)\n`);
