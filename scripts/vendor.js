// Copy pinned front-end files from node_modules into static/vendor (run by the setup scripts).
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const out = path.join(root, "static", "vendor");
fs.mkdirSync(out, { recursive: true });
const files = [["htmx.org/dist/htmx.min.js", "htmx.min.js"]];
for (const [src, dst] of files) {
  fs.copyFileSync(path.join(root, "node_modules", src), path.join(out, dst));
  console.log("vendored", dst);
}
