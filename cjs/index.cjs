"use strict";
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS entry: require() is what it is for */
// require("ominipg"): see esm.cjs.
module.exports = require("./esm.cjs")(() => require("../dist/index.js"), "ominipg");
