// Finds or makes the passman binary the action runs, on any runner
// (Linux, macOS, Windows; x64 or arm64). In order:
//   1. input "binary": a passman binary already on the runner;
//   2. the tool cache, from an earlier step of the job;
//   3. the release named in action/release.json (committed with the action,
//      so the version and every platform's SHA-256 are pinned by the ref the
//      workflow uses), downloaded and verified before it is ever run;
//   4. `go build` from the action's own checkout (a ref without a release,
//      such as a branch or a fork), with the runner's Go.
// Only Node's standard library is used: an action cannot run npm install.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const https = require("https");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");

const actionRoot = path.resolve(__dirname, "..", "..");
const exe = process.platform === "win32" ? ".exe" : "";

function platform() {
  const goos = { linux: "linux", darwin: "darwin", win32: "windows" }[process.platform];
  const goarch = { x64: "amd64", arm64: "arm64" }[process.arch];
  if (!goos || !goarch) {
    throw new Error(`passman has no build for ${process.platform}/${process.arch}`);
  }
  return `${goos}_${goarch}`;
}

function readRelease() {
  try {
    return JSON.parse(fs.readFileSync(path.join(actionRoot, "action", "release.json"), "utf8"));
  } catch (e) {
    return {};
  }
}

function sha256(file) {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function get(url, redirects) {
  return new Promise((resolve, reject) => {
    if (!url.startsWith("https://")) {
      reject(new Error(`refusing a non-https download: ${url}`));
      return;
    }
    https
      .get(url, { headers: { "User-Agent": "passman-action" } }, (res) => {
        if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location) {
          res.resume();
          if (redirects <= 0) {
            reject(new Error("too many redirects"));
            return;
          }
          resolve(get(new URL(res.headers.location, url).toString(), redirects - 1));
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          return;
        }
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

async function download(release, plat, dest) {
  const want = (release.sha256 || {})[plat];
  if (!release.version || !want) {
    return false;
  }
  const base = release.url || "https://github.com/passman-dev/passman/releases/download";
  const url = `${base}/${release.version}/passman_${plat}${exe}`;
  let body;
  try {
    body = await get(url, 5);
  } catch (e) {
    console.log(`::warning::passman ${release.version} download failed (${e.message}); building from source`);
    return false;
  }
  const got = crypto.createHash("sha256").update(body).digest("hex");
  if (got !== want) {
    // A mismatch is an attack or a broken release, never a reason to fall
    // back silently to something else.
    throw new Error(`passman_${plat}${exe} has SHA-256 ${got}, action/release.json pins ${want}`);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = dest + ".tmp" + process.pid;
  fs.writeFileSync(tmp, body, { mode: 0o755 });
  fs.renameSync(tmp, dest);
  return true;
}

function build(dest) {
  console.log("building passman from the action's checkout (go build)");
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  execFileSync("go", ["build", "-trimpath", "-o", dest, "./cmd/passman"], {
    cwd: actionRoot,
    stdio: ["ignore", "inherit", "inherit"],
    env: Object.assign({}, process.env, { CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" }),
  });
}

async function resolveBinary() {
  const given = (process.env.INPUT_BINARY || "").trim();
  if (given) {
    return path.resolve(process.env.GITHUB_WORKSPACE || ".", given);
  }
  const plat = platform();
  const release = readRelease();
  const cacheRoot = process.env.RUNNER_TOOL_CACHE || path.join(os.tmpdir(), "passman-tool-cache");
  const version = release.version || "source";
  const dest = path.join(cacheRoot, "passman", version, plat, "passman" + exe);
  if (fs.existsSync(dest)) {
    if (!release.version || sha256(dest) === (release.sha256 || {})[plat]) {
      return dest;
    }
  }
  if (await download(release, plat, dest)) {
    return dest;
  }
  build(dest);
  return dest;
}

module.exports = { resolveBinary, platform };
