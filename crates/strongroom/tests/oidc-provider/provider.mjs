// Non-interactive OpenID Connect provider for relying-party end-to-end tests.
//
// Built on oidc-provider 8.8.1 (pinned in package-lock.json): the newest release line that supports
// Node 18 (Debian 12's nodejs 18.20.4) as well as Node 20. oidc-provider 9.x does not start on Node 18
// ("URL.parse is not a function") and its runtime check asks for Node 22 LTS or later.
//
// Usage:
//   PORT=9400 \
//   CLIENTS_JSON='[{"client_id":"rp","client_secret":"s3cret","redirect_uris":["https://127.0.0.1:8443/cb"]}]' \
//   USERS_JSON='{"alice":{"email":"alice@example.com","email_verified":true,"name":"Alice"}}' \
//   node provider.mjs
//
// Prints exactly one line "READY <issuer>" on stdout once listening on 127.0.0.1:PORT.
// Issuer is http://127.0.0.1:PORT (plain HTTP, no trailing slash). PORT=0 picks a free port;
// read it back from the READY line.
//
// Optional env:
//   DEFAULT_SUB   account id used when the authorization request has no login_hint
//   DEBUG_OIDC=1  log provider errors to stderr
//
// Non-interactive login: GET /auth?...&login_hint=<account id> logs that account in and
// grants every requested scope in the same request, so the answer is a single 303
// straight to redirect_uri?code=...&state=...&iss=... (no cookies needed).
// Requests the shortcut cannot satisfy in one hop (prompt=login, prompt=consent, max_age=0, ...)
// go through /interaction/<uid>, which completes automatically as well (needs a cookie jar,
// see README.md).

import http from 'node:http';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

function fail(msg) {
  process.stderr.write(`provider.mjs: ${msg}\n`);
  process.exit(2);
}

function parseJsonEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    fail(`${name} is required`);
  }
  try {
    return JSON.parse(raw);
  } catch (e) {
    return fail(`${name} is not valid JSON: ${e.message}`);
  }
}

const PORT = Number.parseInt(process.env.PORT ?? '', 10);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail('PORT must be a TCP port number (0 = pick a free one)');
const HOST = '127.0.0.1';

const CLIENTS = parseJsonEnv('CLIENTS_JSON');
const USERS = parseJsonEnv('USERS_JSON');
if (!Array.isArray(CLIENTS) || CLIENTS.length === 0) fail('CLIENTS_JSON must be a non-empty JSON array');
if (USERS === null || typeof USERS !== 'object' || Array.isArray(USERS)) fail('USERS_JSON must be a JSON object');
const DEFAULT_SUB = process.env.DEFAULT_SUB || undefined;
const DEBUG = process.env.DEBUG_OIDC === '1';

// Bind first so that PORT=0 works: the issuer needs the real port. Requests arriving before the
// provider is configured (i.e. before READY is printed) get a 503.
let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve) => {
  server.once('error', (err) => fail(`cannot listen on ${HOST}:${PORT}: ${err.message}`));
  server.listen(PORT, HOST, resolve);
});
const ISSUER = `http://${HOST}:${server.address().port}`;

const clients = CLIENTS.map((c) => {
  if (!c || typeof c.client_id !== 'string' || typeof c.client_secret !== 'string'
    || !Array.isArray(c.redirect_uris) || c.redirect_uris.length === 0) {
    fail('each client needs client_id, client_secret and a non-empty redirect_uris array');
  }
  return {
    // Confidential "web" client, authorization code flow. Any other client metadata given in
    // CLIENTS_JSON (e.g. post_logout_redirect_uris, id_token_signed_response_alg) is passed through.
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // client_secret_post is accepted too: oidc-provider treats basic and post as interchangeable
    // for clients registered with either of them.
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  };
});

function lookupAccount(id) {
  return typeof id === 'string' && Object.hasOwn(USERS, id) ? USERS[id] : undefined;
}

// Signing keys generated at start: RS256 (default for ID tokens) and ES256 (usable by a client
// that registers id_token_signed_response_alg: "ES256").
function genJwk(type, opts, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}
const jwks = {
  keys: [
    genJwk('rsa', { modulusLength: 2048 }, 'RS256'),
    genJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// Grant covering everything the current authorization request asks for (auto-consent).
async function grantForRequest(ctx, accountId) {
  const { oidc } = ctx;
  const grant = new oidc.provider.Grant({ accountId, clientId: oidc.client.clientId });
  if (oidc.requestParamOIDCScopes?.size) grant.addOIDCScope([...oidc.requestParamOIDCScopes]);
  if (oidc.requestParamClaims?.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
  for (const [indicator, rs] of Object.entries(oidc.resourceServers ?? {})) {
    const scopes = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
    if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
  }
  await grant.save();
  return grant;
}

const configuration = {
  clients,
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the scope claims (email, email_verified, name) into the ID token even though an
  // access token is issued too.
  conformIdTokenClaims: false,
  // PKCE required for every client, S256 only (oidc-provider 8.x could also allow "plain"; 8.x's
  // default is ['S256'] already, stated here so it is not left to a default).
  pkce: { methods: ['S256'], required: () => true },
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  ttl: {
    AuthorizationCode: 600,
    AccessToken: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 86400,
  },

  // The non-interactive login. Declaring login_hint as an "extra param" gives us a validator hook
  // that runs on every authorization request after client, redirect_uri, PKCE and scope checks
  // and before the session/grant/prompt evaluation: log the hinted account in right there.
  extraParams: {
    login_hint(ctx, value) {
      const accountId = value || DEFAULT_SUB;
      if (!accountId) return; // no hint: falls through to /interaction/<uid> (which fails with access_denied)
      if (!lookupAccount(accountId)) {
        throw new errors.AccessDenied(`unknown login_hint ${JSON.stringify(accountId)}`);
      }
      if (ctx.oidc.session.accountId !== accountId) {
        ctx.oidc.session.loginAccount({ accountId, amr: ['pwd'] });
      }
    },
  },

  // Auto-consent: every authorization request gets a fresh grant for exactly what it asks for.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId;
    if (grantId) {
      const grant = await oidc.provider.Grant.find(grantId);
      if (grant && grant.accountId === oidc.session.accountId) return grant;
    }
    if (!oidc.session.accountId) return undefined;
    return grantForRequest(ctx, oidc.session.accountId);
  },

  async findAccount(ctx, sub) {
    const user = lookupAccount(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: user.email,
          email_verified: user.email_verified,
          name: user.name,
        };
      },
    };
  },

  interactions: {
    url(ctx, interaction) {
      return `${ISSUER}/interaction/${interaction.uid}`; // absolute: easier for naive HTTP clients
    },
  },

  renderError(ctx, out) {
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = JSON.stringify(out);
  },
};

const provider = new Provider(ISSUER, configuration);

if (DEBUG) {
  for (const ev of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
    'introspection.error', 'revocation.error', 'end_session.error', 'jwks.error', 'discovery.error']) {
    provider.on(ev, (ctx, err) => process.stderr.write(`[${ev}] ${err?.stack || err}\n`));
  }
}

// Fallback interaction endpoint, reached only when the single-hop shortcut above did not settle the
// request (prompt=login / prompt=consent / max_age / no login_hint). Completes login + consent
// automatically and 303s back to /auth/<uid> (the "resume" step).
async function handleInteraction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const accountId = details.params.login_hint || details.session?.accountId || DEFAULT_SUB;
    if (!accountId || !lookupAccount(accountId)) {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: accountId ? `unknown login_hint ${JSON.stringify(accountId)}` : 'login_hint is required',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    if (details.params.scope) grant.addOIDCScope(String(details.params.scope));
    const missingClaims = details.prompt.details?.missingOIDCClaims;
    if (missingClaims) grant.addOIDCClaims(missingClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: { accountId, amr: ['pwd'] },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    if (DEBUG) process.stderr.write(`[interaction] ${err?.stack || err}\n`);
    res.statusCode = 400;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify({
      error: err.error || 'interaction_failed',
      error_description: err.error_description || err.message,
    }));
  }
}

const oidcCallback = provider.callback();
handler = (req, res) => {
  const { pathname } = new URL(req.url, ISSUER);
  if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(pathname)) {
    handleInteraction(req, res);
    return;
  }
  oidcCallback(req, res);
};
process.stdout.write(`READY ${ISSUER}\n`);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
