// A stand-in OIDC provider for the browser tests, on 127.0.0.1: discovery, the JWKS, an authorize
// endpoint that signs in `person` at once (no login form) and a token endpoint for the
// authorization-code grant (PKCE S256 checked) and the refresh-token grant (tokens rotate). ID tokens
// are RS256 with the test key of tests/fixtures, shaped like the Rust stand-in's (tests/support/oidc.rs),
// and live `lifetimeSecs` on the clock `now()` gives, so a test can keep it in step with the runner's
// test clock. It records every authorize and token request for the test to inspect.

import { createHash, createSign, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

export const AUDIENCE = 'entryguard-web-client';
const KEY_ID = 'test-key-1';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export class OidcProvider {
  constructor({ fixturesDir, lifetimeSecs, now }) {
    this.key = readFileSync(join(fixturesDir, 'oidc-test-key.pem'), 'utf8');
    this.jwks = JSON.parse(readFileSync(join(fixturesDir, 'oidc-test-jwks.json'), 'utf8'));
    this.lifetimeSecs = lifetimeSecs;
    this.now = now;
    this.person = null;
    this.codes = new Map();
    this.refreshTokens = new Map();
    /** Every authorize request's query, and every token answer: { grant, idToken, claims }. */
    this.authorizations = [];
    this.issued = [];
  }

  async start() {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => this.json(res, 500, { error: 'server_error', error_description: String(e) }));
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    if (!this.server) return;
    // The browser keeps connections open; close() alone would wait for them to time out.
    const closed = new Promise((r) => this.server.close(r));
    this.server.closeAllConnections();
    await closed;
  }

  json(res, status, body) {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': '*',
    });
    res.end(JSON.stringify(body));
  }

  async handle(req, res) {
    const url = new URL(req.url, this.url);
    if (req.method === 'OPTIONS') return this.json(res, 204, {});
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return this.json(res, 200, {
        issuer: this.url,
        authorization_endpoint: `${this.url}/oauth2/authorize`,
        token_endpoint: `${this.url}/oauth2/token`,
        jwks_uri: `${this.url}/.well-known/jwks.json`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        id_token_signing_alg_values_supported: ['RS256'],
        subject_types_supported: ['public'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/.well-known/jwks.json') return this.json(res, 200, this.jwks);
    if (req.method === 'GET' && url.pathname === '/oauth2/authorize') return this.authorize(url, res);
    if (req.method === 'POST' && url.pathname === '/oauth2/token') {
      let body = '';
      for await (const chunk of req) body += chunk;
      return this.token(new URLSearchParams(body), res);
    }
    return this.json(res, 404, { error: 'not_found' });
  }

  authorize(url, res) {
    const q = Object.fromEntries(url.searchParams);
    this.authorizations.push(q);
    const bad = (why) => this.json(res, 400, { error: 'invalid_request', error_description: why });
    if (q.client_id !== AUDIENCE) return bad(`unknown client ${q.client_id}`);
    if (q.response_type !== 'code') return bad('only the code flow');
    if (q.code_challenge_method !== 'S256' || !q.code_challenge) return bad('PKCE S256 is required');
    if (!q.redirect_uri || !q.state) return bad('redirect_uri and state are required');
    if (!this.person) return bad('nobody is signed in at the provider');
    const code = b64url(randomBytes(24));
    this.codes.set(code, { challenge: q.code_challenge, redirectUri: q.redirect_uri, email: this.person, scope: q.scope });
    const to = new URL(q.redirect_uri);
    to.searchParams.set('code', code);
    to.searchParams.set('state', q.state);
    res.writeHead(302, { Location: to.toString(), 'Cache-Control': 'no-store' });
    res.end();
  }

  async token(p, res) {
    const fail = (error, why) => this.json(res, 400, { error, error_description: why });
    if (p.get('client_id') !== AUDIENCE) return fail('invalid_client', 'unknown client');
    let email;
    if (p.get('grant_type') === 'authorization_code') {
      const c = this.codes.get(p.get('code'));
      this.codes.delete(p.get('code'));
      if (!c) return fail('invalid_grant', 'unknown or used code');
      if (c.redirectUri !== p.get('redirect_uri')) return fail('invalid_grant', 'redirect_uri differs');
      const verifier = p.get('code_verifier') || '';
      if (b64url(createHash('sha256').update(verifier).digest()) !== c.challenge) return fail('invalid_grant', 'PKCE verifier does not match');
      email = c.email;
    } else if (p.get('grant_type') === 'refresh_token') {
      email = this.refreshTokens.get(p.get('refresh_token'));
      this.refreshTokens.delete(p.get('refresh_token'));
      if (!email) return fail('invalid_grant', 'unknown or used refresh token');
    } else {
      return fail('unsupported_grant_type', p.get('grant_type'));
    }
    const now = await this.now();
    const claims = {
      iss: this.url,
      aud: AUDIENCE,
      sub: `sub-${email}`,
      email,
      email_verified: true,
      token_use: 'id',
      iat: now,
      exp: now + this.lifetimeSecs,
    };
    const idToken = this.sign(claims);
    const refreshToken = b64url(randomBytes(24));
    this.refreshTokens.set(refreshToken, email);
    this.issued.push({ grant: p.get('grant_type'), idToken, claims });
    return this.json(res, 200, {
      id_token: idToken,
      access_token: b64url(randomBytes(24)),
      refresh_token: refreshToken,
      token_type: 'Bearer',
      expires_in: this.lifetimeSecs,
    });
  }

  sign(claims) {
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KEY_ID }));
    const body = b64url(JSON.stringify(claims));
    const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(this.key);
    return `${head}.${body}.${b64url(signature)}`;
  }
}
