// Print every request schema of an unpacked npm `chargebee` package as JSON Schema.
// Usage: node zod_to_json.cjs PACKAGE_DIR RESOURCE... (zod must be resolvable from PACKAGE_DIR)
"use strict";
const path = require("path");
const [packageDir, ...resources] = process.argv.slice(2);
const { z } = require(require.resolve("zod", { paths: [packageDir] }));
const out = {};
for (const resource of resources) {
  const module = require(path.join(packageDir, "cjs", "schema", `${resource}.schema.js`));
  out[resource] = {};
  for (const [name, schema] of Object.entries(module)) {
    out[resource][name] = z.toJSONSchema(schema, { unrepresentable: "any", io: "input" });
  }
}
process.stdout.write(JSON.stringify(out));
