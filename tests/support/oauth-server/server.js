// A real OpenID Connect provider (node-oidc-provider, which we did not write) on loopback,
// for tests/login.rs. Prints one line `READY http://127.0.0.1:PORT` when it listens.
//
// Clients: `agent-public` (a native public client: PKCE, no secret) and `agent-conf`
// (confidential, client_secret_basic). Refresh tokens are issued for every code and rotated
// on every use; reusing a rotated one revokes the whole grant (the provider's own reuse
// detection). Access tokens live 30 s (ACCESS_TTL), so agentcred never caches them and
// every `token` refreshes; GET /stats/refreshes counts the refresh grants. The device
// authorization grant is on. `POST /sa/token` answers the jwt-bearer grant (RFC 7523) for
// a service-account key, verifying its RS256 signature.
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.PORT || 0);
const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const grantTypes = [
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
];
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'agent-public',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: grantTypes,
      response_types: ['code'],
    },
    {
      client_id: 'agent-conf',
      client_secret: 'conf-client-secret-0123456789',
      application_type: 'native',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: grantTypes,
      response_types: ['code'],
    },
  ],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  issueRefreshToken: async () => true,
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: Number(process.env.ACCESS_TTL || 30),
    DeviceCode: Number(process.env.DEVICE_TTL || 600),
  },
  scopes: ['openid', 'offline_access', 'mail.read'],
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
// How many refresh-token grants succeeded (GET /stats/refreshes).
let refreshes = 0;
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params?.grant_type === 'refresh_token') refreshes += 1;
});

// RFC 7523 section 2.1 at /sa/token, beside the provider (which knows no jwt-bearer grant):
// the assertion is verified by jose with the public half of the key in SA_PUBLIC_KEY.
const saKey = process.env.SA_PUBLIC_KEY && crypto.createPublicKey(process.env.SA_PUBLIC_KEY);
async function jwtBearer(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  const answer = (status, json) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json));
  };
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
    return answer(400, { error: 'unsupported_grant_type' });
  }
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(form.get('assertion') || '', saKey, {
      algorithms: ['RS256'],
      audience: `${issuer}/sa/token`,
      issuer: 'sa@agentcred-test.iam.example',
      maxTokenAge: '1h',
    }));
  } catch (e) {
    return answer(400, { error: 'invalid_grant', error_description: `assertion: ${e.code}` });
  }
  if (!claims.scope || typeof claims.exp !== 'number') {
    return answer(400, { error: 'invalid_scope', error_description: 'no scope in the assertion' });
  }
  jwtGrants += 1;
  answer(200, {
    access_token: `sa-token-${crypto.randomBytes(12).toString('hex')}`,
    token_type: 'Bearer',
    expires_in: 3600,
  });
}
let jwtGrants = 0;

// With SLOW_DOWN=1, device-code polls are paced as RFC 8628 section 3.5 lets a server do:
// the first poll of each code is answered `slow_down` (a server under load), and so is
// any poll that comes sooner than the interval in force, which grows by 5 s at each
// `slow_down`. oidc-provider itself never sends `slow_down`. GET /device/stats says how
// many of each were sent.
// GET /test/echo-errors makes every later refresh fail with an error that quotes the
// refresh token sent (for the test that no message shows it).
let echoErrors = false;
const pacing = new Map();
const stats = { slowDown: 0, tooFast: 0, polls: 0 };
async function paced(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  req.body = body; // oidc-provider reads an already-read body from here
  const form = new URLSearchParams(body);
  if (echoErrors && form.get('grant_type') === 'refresh_token') {
    // A careless server that quotes what it was sent: the refresh token, as is and as
    // it was form-encoded, and the whole request body.
    const rt = form.get('refresh_token') || '';
    res.writeHead(400, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({
      error: 'invalid_grant',
      error_description: `refresh token ${rt} (${encodeURIComponent(rt)}) refused; body ${body}`,
    }));
  }
  if (!process.env.SLOW_DOWN
    || form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:device_code') {
    return callback(req, res);
  }
  stats.polls += 1;
  const now = Date.now();
  const code = form.get('device_code');
  const seen = pacing.get(code);
  const slowDown = () => {
    res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ error: 'slow_down' }));
  };
  if (!seen) {
    // 5 s is the interval a client uses when the server names none (section 3.2).
    pacing.set(code, { interval: 10_000, last: now });
    stats.slowDown += 1;
    return slowDown();
  }
  if (now - seen.last < seen.interval) {
    seen.interval += 5_000;
    seen.last = now;
    stats.tooFast += 1;
    return slowDown();
  }
  seen.last = now;
  return callback(req, res);
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/sa/token' && req.method === 'POST' && saKey) return void jwtBearer(req, res);
  if (req.url === '/sa/count') return void res.end(String(jwtGrants));
  if (req.url === '/device/stats') return void res.end(JSON.stringify(stats));
  if (req.url === '/stats/refreshes') return void res.end(String(refreshes));
  if (req.url === '/test/echo-errors') {
    echoErrors = true;
    return void res.end('ok');
  }
  if (req.url === '/token' && req.method === 'POST' && (process.env.SLOW_DOWN || echoErrors)) {
    return void paced(req, res);
  }
  return callback(req, res);
});
console.log(`READY ${issuer}`);
