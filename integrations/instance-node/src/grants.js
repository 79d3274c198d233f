// Following an instance's grants with its instance key: a snapshot, then long-polls for the
// changes after the revision held (`since` + `wait`, `If-None-Match`), a new snapshot when the
// changes are no longer kept (410), jittered backoff while fleetgate cannot be reached. The
// grants held are trusted only while fleetgate confirms them: see `freshness()`.

import { detailOf } from './problem.js';

const WAIT_SECONDS = 30;
const MAX_STALENESS_MS = 60_000;
/** How much longer than its `wait` a long-poll may take before it is given up as lost. */
const POLL_SLACK_MS = 10_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_CAP_MS = 30_000;

/** The delay before retry number `attempt` (1, 2, …): doubling, capped, with full jitter. */
export function backoff(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt - 1, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** A snapshot with a delta applied (the delta's `from` must be the snapshot's revision). */
export function apply(snapshot, delta) {
  const grants = new Map(snapshot.grants.map((g) => [g.id, g]));
  for (const g of [...delta.added, ...delta.updated]) grants.set(g.id, g);
  for (const id of delta.removed) grants.delete(id);
  return {
    instance_id: snapshot.instance_id,
    revision: delta.revision,
    owner: delta.owner ?? snapshot.owner,
    grants: [...grants.values()],
  };
}

/** The role a snapshot gives a user: `owner`, a grant's role, or null. */
export function roleIn(snapshot, userId) {
  if (!snapshot || !userId) return null;
  if (snapshot.owner === userId) return 'owner';
  const grant = snapshot.grants.find((g) => g.user_id === userId);
  return grant ? grant.role : null;
}

export class GrantsFollower {
  constructor({
    fleetgateUrl, instanceId, instanceKey, onChange, onError, fetchImpl = fetch,
    waitSeconds = WAIT_SECONDS, maxStalenessMs = MAX_STALENESS_MS, now = Date.now,
    pollTimeoutMs = waitSeconds * 1000 + POLL_SLACK_MS,
  }) {
    if (!(maxStalenessMs >= 2 * waitSeconds * 1000)) {
      // A healthy follower confirms its grants once per long-poll (every `waitSeconds`).
      throw new Error(`maxStalenessMs (${maxStalenessMs}) must be at least twice waitSeconds (${waitSeconds} s) in milliseconds`);
    }
    this.url = new URL(`v1/instances/${encodeURIComponent(instanceId)}/grants`, fleetgateUrl.endsWith('/') ? fleetgateUrl : `${fleetgateUrl}/`);
    this.key = instanceKey;
    this.onChange = onChange || (() => {});
    this.onError = onError || (() => {});
    this.fetch = fetchImpl;
    this.wait = waitSeconds;
    this.maxStaleness = maxStalenessMs;
    this.pollTimeout = pollTimeoutMs;
    this.now = now;
    /** When fleetgate last confirmed the grants held (a 200 or a 304). */
    this.confirmedAt = null;
    /** fleetgate's refusal of the key (401) or of the instance (404), until a new confirmation. */
    this.refused = null;
    this.snapshot = null;
    this.stopped = false;
    this.abort = new AbortController();
    this.ready = new Promise((resolve) => { this.resolveReady = resolve; });
  }

  /**
   * Whether the grants held may be trusted now: `{ ok: true }`, or `{ ok: false, reason }`
   * when fleetgate refused the instance's key (401) or the instance (404), or has not
   * confirmed the grants for longer than `maxStalenessMs` (unreachable, or a poll lost).
   */
  freshness() {
    if (this.refused) return { ok: false, reason: this.refused };
    if (this.confirmedAt === null) return { ok: false, reason: 'the grants are not loaded yet' };
    const age = this.now() - this.confirmedAt;
    if (age > this.maxStaleness) {
      return { ok: false, reason: `fleetgate has not confirmed the grants for ${Math.round(age / 1000)} s (maxStalenessMs ${this.maxStaleness})` };
    }
    return { ok: true };
  }

  /** The role of `userId` from the grants held now (null before the first snapshot). */
  role(userId) {
    return roleIn(this.snapshot, userId);
  }

  start() {
    this.running = this.loop();
    return this.ready;
  }

  async stop() {
    this.stopped = true;
    this.abort.abort();
    await this.running?.catch(() => {});
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.step();
        failures = 0;
      } catch (e) {
        if (this.stopped) return;
        failures += 1;
        this.onError(e);
        await this.sleep(backoff(failures));
      }
    }
  }

  /** One request: a snapshot when none is held, else a long-poll for the next changes. */
  async step() {
    const held = this.snapshot;
    const url = new URL(this.url);
    const headers = { authorization: `Bearer ${this.key}` };
    if (held) {
      url.searchParams.set('since', String(held.revision));
      url.searchParams.set('wait', String(this.wait));
      headers['if-none-match'] = `"${held.revision}"`;
    }
    const res = await this.request(url, headers);
    if (res.status === 304) {
      await res.body?.cancel();
      this.confirmed();
      return;
    }
    if (res.status === 410) {
      // The changes after our revision are no longer kept: start again from a snapshot.
      await res.body?.cancel();
      this.snapshot = null;
      return;
    }
    if (res.status === 429) {
      await res.body?.cancel();
      const after = Number(res.headers.get('retry-after')) || 1;
      await this.sleep(after * 1000);
      return;
    }
    if (res.status !== 200) {
      const error = new Error(`fleetgate answered ${res.status} ${await detailOf(res)}`.trim());
      error.status = res.status;
      if (res.status === 401 || res.status === 404) {
        // The key was revoked or rotated out, or the instance is gone: nothing held is
        // trusted until fleetgate confirms the grants again.
        this.refused = res.status === 401
          ? "fleetgate refused the instance's key (401)"
          : 'fleetgate does not know the instance (404)';
      }
      throw error;
    }
    const body = await res.json();
    const next = held ? apply(held, body) : body;
    this.snapshot = next;
    this.confirmed();
    this.resolveReady(next);
    this.onChange(next, held ? body : null);
  }

  confirmed() {
    this.confirmedAt = this.now();
    this.refused = null;
  }

  /** One GET, given up when stopped or when it takes longer than a long-poll can. */
  async request(url, headers) {
    const lost = new AbortController();
    const timer = setTimeout(() => lost.abort(new Error('the long-poll took too long; polling again')), this.pollTimeout);
    const stop = () => lost.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', stop, { once: true });
    try {
      return await this.fetch(url, { headers, signal: lost.signal });
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', stop);
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.abort.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
}
