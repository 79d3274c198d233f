// Runs one Auth0 post-login Action the way Auth0 does, for the fleetgate emulator: reads
// {"file": path, "event": {...}} on stdin, calls the file's onExecutePostLogin(event, api)
// and writes what the Action did as one JSON line on stdout. console output of the Action is
// collected (Auth0 shows it in the Action's logs) instead of being mixed into the answer.
'use strict';
const fs = require('node:fs');

const logs = [];
const keep = (...args) => logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
console.log = keep;
console.info = keep;
console.warn = keep;
console.error = keep;

const out = { denied: null, access: {}, id: {}, metadata: {}, error: null, logs };
const api = {
  access: {
    deny(reason) {
      if (out.denied === null) out.denied = String(reason);
      return api;
    },
  },
  accessToken: {
    setCustomClaim(key, value) {
      out.access[key] = value;
      return api;
    },
  },
  idToken: {
    setCustomClaim(key, value) {
      out.id[key] = value;
      return api;
    },
  },
  refreshToken: {
    setMetadata(key, value) {
      out.metadata[key] = value;
      return api;
    },
  },
};

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const action = require(input.file);
  if (typeof action.onExecutePostLogin !== 'function') {
    throw new Error('the Action does not export onExecutePostLogin');
  }
  await action.onExecutePostLogin(input.event, api);
}

main().then(
  () => process.stdout.write(JSON.stringify(out) + '\n'),
  (e) => {
    out.error = e && e.message ? e.message : String(e);
    process.stdout.write(JSON.stringify(out) + '\n');
  },
);
