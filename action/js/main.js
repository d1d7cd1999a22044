// The action's main step: run `passman action run` with the step's
// environment (INPUT_* included) and exit with its code.
"use strict";

const { spawnSync } = require("child_process");
const { resolveBinary } = require("./binary");

resolveBinary()
  .then((bin) => {
    const res = spawnSync(bin, ["action", "run"], { stdio: "inherit", env: process.env });
    if (res.error) {
      console.log(`::error::passman: ${res.error.message}`);
      process.exit(2);
    }
    process.exit(res.status === null ? 2 : res.status);
  })
  .catch((e) => {
    console.log(`::error::passman: ${e.message}`);
    process.exit(2);
  });
