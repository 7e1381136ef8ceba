// Print the launch command a bundle host derives from a manifest, as JSON, using mcpb's own
// getMcpConfigForManifest (the code hosts use): ${__dirname} and ${user_config.*} expanded, the
// user_config defaults applied, the platform override for this OS chosen.
//
//   node scripts/mcpb_launch_config.mjs BUNDLE_DIR '{"api_key": "..."}'
// prints {"command": ..., "args": [...], "env": {...}}, or null while a required setting is missing.
import { readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";

const [dir, userConfigJson = "{}"] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath: dir,
  systemDirs: {},
  userConfig: JSON.parse(userConfigJson),
  pathSeparator: sep,
});
process.stdout.write(JSON.stringify(config ?? null) + "\n");
