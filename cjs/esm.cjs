"use strict";
// The CommonJS entries (package.json "exports", condition "require") load Ominipg's ES modules with
// require(), which Node.js supports from 20.19 and 22.12 on: require("ominipg") then returns the very module
// import("ominipg") does. An older Node.js cannot: it gets this message instead of a bare ERR_REQUIRE_ESM.
module.exports = function esm(load, name) {
  try {
    return load();
  } catch (err) {
    if (err === null || typeof err !== "object" || err.code !== "ERR_REQUIRE_ESM") throw err;
    const error = new Error(
      `${name} is an ES module, and this Node.js (${process.version}) cannot load ES modules with require(): ` +
        `use import("${name}") (or import ... from "${name}" in an ES module), or Node.js >= 20.19 or >= 22.12, ` +
        `whose require("${name}") works`,
      { cause: err },
    );
    error.code = err.code;
    throw error;
  }
};
