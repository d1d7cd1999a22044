// Finds or makes the passman binary the action runs, on any runner
// (Linux, macOS, Windows; x64 or arm64), with passman-full and
// passman-regal beside it: passman hands `action run|post` to passman-full,
// and `command: policy` lints through passman-regal, both found next to
// passman's own executable. In order:
//   1. input "binary": a passman binary already on the runner (its
//      passman-full and passman-regal beside it or on PATH);
//   2. the tool cache, from an earlier step of the job;
//   3. the release named in action/release.json (committed with the action,
//      so the version and every program's and platform's SHA-256 are pinned
//      by the ref the workflow uses), both downloaded and verified before
//      either is ever run;
//   4. `go build` of both from the action's own checkout (a ref without a
//      release, such as a branch or a fork), with the runner's Go.
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

// The programs a release ships for each platform, passman last: its
// presence in the tool cache means the set is complete.
const programs = ["passman-regal", "passman-full", "passman"];

function asset(prog, plat) {
  return `${prog}_${plat}${exe}`;
}

// download fetches every program of the pinned release into dir, or
// returns false (nothing pinned for this platform, or a download failed)
// so that the caller builds them instead.
async function download(release, plat, dir) {
  const pins = release.sha256 || {};
  if (!release.version || !programs.every((p) => pins[asset(p, plat)])) {
    return false;
  }
  const base = release.url || "https://github.com/passman-dev/passman/releases/download";
  const bodies = [];
  for (const prog of programs) {
    const name = asset(prog, plat);
    let body;
    try {
      body = await get(`${base}/${release.version}/${name}`, 5);
    } catch (e) {
      console.log(`::warning::${name} ${release.version} download failed (${e.message}); building from source`);
      return false;
    }
    const got = crypto.createHash("sha256").update(body).digest("hex");
    if (got !== pins[name]) {
      // A mismatch is an attack or a broken release, never a reason to fall
      // back silently to something else.
      throw new Error(`${name} has SHA-256 ${got}, action/release.json pins ${pins[name]}`);
    }
    bodies.push(body);
  }
  fs.mkdirSync(dir, { recursive: true });
  programs.forEach((prog, i) => {
    const dest = path.join(dir, prog + exe);
    const tmp = dest + ".tmp" + process.pid;
    fs.writeFileSync(tmp, bodies[i], { mode: 0o755 });
    fs.renameSync(tmp, dest);
  });
  return true;
}

function build(dir) {
  console.log("building passman, passman-full and passman-regal from the action's checkout (go build)");
  fs.mkdirSync(dir, { recursive: true });
  // -o with a trailing separator: one binary per package, in dir.
  execFileSync("go", ["build", "-trimpath", "-o", dir + path.sep, "./cmd/passman-regal", "./cmd/passman-full", "./cmd/passman"], {
    cwd: actionRoot,
    stdio: ["ignore", "inherit", "inherit"],
    env: Object.assign({}, process.env, { CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" }),
  });
}

// cached reports whether dir holds every program, each matching its pin
// when a release is pinned.
function cached(release, plat, dir) {
  return programs.every((prog) => {
    const file = path.join(dir, prog + exe);
    if (!fs.existsSync(file)) {
      return false;
    }
    return !release.version || sha256(file) === (release.sha256 || {})[asset(prog, plat)];
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
  const dir = path.join(cacheRoot, "passman", release.version || "source", plat);
  const bin = path.join(dir, "passman" + exe);
  if (cached(release, plat, dir)) {
    return bin;
  }
  if (!(await download(release, plat, dir))) {
    build(dir);
  }
  return bin;
}

module.exports = { resolveBinary, platform };
