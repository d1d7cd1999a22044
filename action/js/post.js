// The action's post step: `passman action post` (revokes the token the
// secrets command obtained, removes its files). Never fails the job.
"use strict";

const { spawnSync } = require("child_process");
const { resolveBinary } = require("./binary");

resolveBinary()
  .then((bin) => {
    spawnSync(bin, ["action", "post"], { stdio: "inherit", env: process.env });
  })
  .catch((e) => {
    console.log(`::warning::passman post step: ${e.message}`);
  });
