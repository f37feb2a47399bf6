// Builds the benchmark document github-webhooks-as-paths.3.1.json, deterministically,
// from GitHub's webhooks description (OpenAPI 3.1.0) shipped in the npm package
// @octokit/openapi-webhooks@12.1.0 (MIT): every webhook becomes a path
// `/webhooks/<name>` so that both converters have to walk it (a converter that just
// drops `webhooks` would otherwise have little to do). Components are kept as they are.
//
// usage: node make-large.mjs PATH/TO/generated/api.github.com.json OUT.json
import { readFileSync, writeFileSync } from "node:fs";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node make-large.mjs api.github.com.json OUT.json");
  process.exit(2);
}
const src = JSON.parse(readFileSync(input, "utf8"));
if (!String(src.openapi).startsWith("3.1.")) {
  throw new Error(`expected an OpenAPI 3.1 document, got ${src.openapi}`);
}
const paths = {};
for (const name of Object.keys(src.webhooks).sort()) {
  paths[`/webhooks/${name}`] = src.webhooks[name];
}
const doc = {
  openapi: src.openapi,
  info: {
    ...src.info,
    title: `${src.info.title} (webhooks as paths, benchmark document)`,
  },
  paths,
  webhooks: Object.fromEntries(Object.keys(src.webhooks).sort().slice(0, 5).map((k) => [k, src.webhooks[k]])),
  components: src.components,
};
writeFileSync(output, JSON.stringify(doc) + "\n");
console.error(`${output}: ${Object.keys(paths).length} paths, ${JSON.stringify(doc).length} bytes`);
