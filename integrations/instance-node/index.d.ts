/** fleetgate's `GET /v1/instances/{id}/config` answer. */
export interface InstanceConfig {
  instance_id: string;
  /** The tenant's base URL (where its signing keys are discovered). */
  auth0_domain: string;
  /** How the instance logs in: at the tenant, or through fleetgate's login relay. */
  login: 'direct' | 'relay';
  /** auth0-spa-js's `domain`: the tenant's base URL, or the relay's. */
  domain: string;
  /** auth0-spa-js's `issuer`: the tenant's issuer, which signs every token either way. */
  issuer: string;
  /** The application the instance's SPA logs in with (the relay's, when relayed). */
  client_id: string;
  /** The instances' API audience. */
  audience: string;
  /** The claim naming the instance a token was issued at. */
  instance_claim: string;
}

export interface Grant {
  id: string;
  user_id: string | null;
  email: string | null;
  role: string;
  created_at: string;
  updated_at: string;
  bound_at: string | null;
}

export interface GrantsSnapshot {
  instance_id: string;
  revision: number;
  owner: string;
  grants: Grant[];
}

export interface GrantsDelta {
  instance_id: string;
  from: number;
  revision: number;
  owner?: string;
  added: Grant[];
  updated: Grant[];
  removed: string[];
}

export interface Options {
  /** fleetgate's base URL (else `FLEETGATE_URL`). */
  fleetgateUrl?: string;
  /** This instance's id (else `FLEETGATE_INSTANCE_ID`). */
  instanceId?: string;
  /** This instance's key, `fgi_…` (else `FLEETGATE_INSTANCE_KEY`). */
  instanceKey?: string;
  /** The tenant (else `AUTH0_DOMAIN`, else fleetgate's `/config`). */
  auth0Domain?: string;
  /** The `iss` of the tenant's tokens (AUTH0_ISSUER); default: fleetgate's `/config` answer. */
  issuer?: string;
  /** The audience tokens must have (else `AUTH0_AUDIENCE`, else fleetgate's `/config`). */
  audience?: string;
  /** The Action's `CLAIM_NAMESPACE` (else `FLEETGATE_CLAIM_NAMESPACE`, else fleetgate's `/config`). */
  claimNamespace?: string;
  /** Accept tokens without the instance claim (logins the Action let through when fleetgate was unreachable with FAIL_OPEN). Default false. */
  allowUnboundTokens?: boolean;
  /** Called with the new snapshot after every change (and the delta, but for snapshots). */
  onChange?: (snapshot: GrantsSnapshot, delta: GrantsDelta | null) => void;
  /** Called when following the grants fails (it goes on, with backoff). Default: a warning. */
  onError?: (error: Error) => void;
  /** How long `createInstance` retries `/config` while the instance is not placed yet (409) or fleetgate is away (ms, default 60000). */
  startTimeoutMs?: number;
  /** Seconds a long-poll waits for a change (0–60, default 30). */
  waitSeconds?: number;
  /** How long the grants held are trusted without fleetgate confirming them (ms, default 60000, at least twice `waitSeconds`); past it every request is refused with 503. */
  maxStalenessMs?: number;
  /** Where the environment variables are read (default `process.env`). */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

/** A refusal, as problem+json. */
export interface Refusal {
  ok: false;
  /** 401/403: the token; 503: the grants cannot be confirmed now (`grants_unavailable`). */
  status: 401 | 403 | 503;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; code: string };
}

export interface Verified {
  ok: true;
  userId: string;
  /** `owner` or the user's grant's role. */
  role: string;
  instanceId: string;
  claims: Record<string, unknown>;
}

export interface Instance {
  instanceId: string;
  config: InstanceConfig;
  /** Checks a request (anything with `headers`: Node, Express, Fetch). */
  verify(request: { headers: unknown }): Promise<Verified | Refusal>;
  /** Express/Connect middleware: sets `req.fleetgate = { userId, role, instanceId }`, or answers the refusal. */
  middleware(): (req: any, res: any, next: (err?: unknown) => void) => void;
  /** The user's role here now, or null. */
  role(userId: string): string | null;
  grants(): GrantsSnapshot | null;
  /** Whether the grants held are confirmed now; while not, every request is refused (503). */
  freshness(): { ok: true } | { ok: false; reason: string };
  /** Stops following the grants. */
  close(): Promise<void>;
}

export function createInstance(options?: Options): Promise<Instance>;
export function issuerOf(domain: string): string;
export function apply(snapshot: GrantsSnapshot, delta: GrantsDelta): GrantsSnapshot;
export function roleIn(snapshot: GrantsSnapshot | null, userId: string): string | null;
export function backoff(attempt: number, random?: () => number): number;

declare global {
  namespace Express {
    interface Request {
      fleetgate?: { userId: string; role: string; instanceId: string };
    }
  }
}
