#!/usr/bin/env node
// End-to-end tests: starts the local runner (ENTRYGUARD_LOCAL_BIN) on a free 127.0.0.1 port with a
// fresh data dir and the built web app, then drives Debian's chromium through playwright-core.
// Screenshots go to <repo>/test-output/screenshots/. Prints "N passed, N failed" and exits non-zero
// on any failure. The runner and the browser are always stopped, also on failure.

import { spawn } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { AUDIENCE, OidcProvider } from './oidc-provider.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
const distDir = join(webDir, 'dist');
const repoRoot = resolve(webDir, '..');
const shotsDir = join(repoRoot, 'test-output', 'screenshots');
const fixturesDir = join(repoRoot, 'tests', 'fixtures');
const bin = process.env.ENTRYGUARD_LOCAL_BIN || join(homedir(), '.cache', 'entryguard-target', 'debug', 'entryguard-local');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const only = process.env.E2E_ONLY || '';

const LAPTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const STEP_TIMEOUT = 20_000;

// ---------------------------------------------------------------- helpers

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assert(cond, message) {
  if (!cond) throw new Error(`Assertion failed: ${message}`);
}

async function waitFor(fn, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(150);
  }
  throw new Error(`Timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

class Runner {
  /** `webDir` and `extraArgs`: another build of the app and more runner flags; `port`: chosen beforehand. */
  constructor({ webDir = distDir, extraArgs = [], port = null } = {}) {
    this.webDir = webDir;
    this.extraArgs = extraArgs;
    this.fixedPort = port;
    this.proc = null;
    this.dataDir = mkdtempSync(join(tmpdir(), 'entryguard-e2e-data-'));
    this.logPath = join(this.dataDir, '..', `${this.dataDir.split('/').pop()}.log`);
  }

  async start() {
    if (!existsSync(bin)) {
      throw new Error(`The local runner binary is missing: ${bin} (build it with ./run-local --help from the repository, or set ENTRYGUARD_LOCAL_BIN)`);
    }
    if (!existsSync(join(this.webDir, 'index.html'))) {
      throw new Error(`The web app is not built: ${this.webDir}/index.html is missing (run: npm run build)`);
    }
    this.port = this.fixedPort ?? (await freePort());
    this.base = `http://127.0.0.1:${this.port}`;
    const args = [
      '--listen', `127.0.0.1:${this.port}`,
      '--data-dir', this.dataDir,
      '--web-dir', this.webDir,
      '--test-clock',
      '--sweep-interval-secs', '1',
      // Webhook scenarios deliver to a receiver on 127.0.0.1.
      '--dev-webhooks-allow-loopback',
      ...this.extraArgs,
    ];
    const fd = openSync(this.logPath, 'w');
    this.proc = spawn(bin, args, { stdio: ['ignore', fd, fd], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
    closeSync(fd);
    let exited = null;
    this.proc.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`The local runner exited early (${JSON.stringify(exited)}). Log:\n${this.log()}`);
      try {
        const res = await fetch(`${this.base}/api/health`);
        if (res.ok) {
          const body = await res.json();
          if (body.status !== 'ok') throw new Error(`GET /api/health answered ${JSON.stringify(body)}, expected {"status":"ok"}`);
          return;
        }
      } catch (e) {
        if (e.message?.startsWith('GET /api/health')) throw e;
      }
      await sleep(200);
    }
    throw new Error(`GET /api/health did not answer within 60 s. Log:\n${this.log()}`);
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    rmSync(this.logPath, { force: true });
  }

  async api(method, path, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return data;
  }

  async token(email) {
    return (await this.api('POST', '/api/dev/login', { body: { email } })).token;
  }
}

// ---------------------------------------------------------------- page helpers

// Content-Security-Policy violations of the running test, as the console reports them (and as
// `securitypolicyviolation` events, in case a message is worded differently): any fails the test.
let cspViolations = [];
const CSP_MESSAGE = /Content[- ]Security[- ]Policy/i;

async function newPage(ctx, viewport = LAPTOP) {
  const page = await ctx.newPage();
  await page.setViewportSize(viewport);
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (e) => console.error(`  [browser error] ${e.message}`));
  page.on('console', (msg) => {
    if (CSP_MESSAGE.test(msg.text())) cspViolations.push(`console: ${msg.text()}`);
  });
  return page;
}

async function watchCsp(ctx) {
  await ctx.exposeBinding('__entryguardCspViolation', (_source, v) => cspViolations.push(`event: ${v}`));
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__entryguardCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
}

async function signIn(page, base, email) {
  await page.goto(`${base}/#/sessions`);
  await page.getByText('Development login').first().waitFor();
  await page.getByRole('button', { name: new RegExp(email.replace(/[.@]/g, '\\$&')) }).click();
  await page.getByRole('heading', { level: 1, name: 'Sessions' }).waitFor();
  await page.locator('#duration').waitFor();
}

async function goAdmin(page, label) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: label }).waitFor();
}

async function shot(page, name, opts = {}) {
  mkdirSync(shotsDir, { recursive: true });
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true, ...opts });
}

const sessionRows = (page) => page.locator('tr.session-row');

async function startSession(page, hoursLabel) {
  const before = await sessionRows(page).count();
  if (hoursLabel) await page.locator('#duration').selectOption({ label: hoursLabel });
  await page.getByRole('button', { name: 'Start Session' }).click();
  await waitFor(async () => (await sessionRows(page).count()) === before + 1, 'the new session row');
  return sessionRows(page).first();
}

async function waitStatus(row, statuses, what) {
  const list = Array.isArray(statuses) ? statuses : [statuses];
  return waitFor(async () => {
    const s = await row.getAttribute('data-status');
    return list.includes(s) ? s : null;
  }, what ?? `status ${list.join(' or ')}`);
}

async function durationOptions(page) {
  return page.locator('#duration option').evaluateAll((os) => os.map((o) => Number(o.value)));
}

async function factValue(page, term) {
  return page.locator('.start-form__facts div', { has: page.locator('dt', { hasText: term }) }).locator('dd').innerText();
}

// ---------------------------------------------------------------- scenarios

const ctxState = {};

const tests = [
  {
    name: 'security headers on the app and the API; the app refuses to be framed',
    // The framing attempt is itself a violation (of frame-ancestors), reported by the browser.
    allowCsp: /frame-ancestors/,
    async run({ ctx, runner }) {
      const page = await newPage(ctx);
      for (const path of ['/', '/sessions', '/admin/audit-logs']) {
        const res = await page.goto(`${runner.base}${path}`);
        const h = res.headers();
        const csp = h['content-security-policy'] || '';
        for (const directive of ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "script-src 'self'"]) {
          assert(csp.split(';').map((d) => d.trim()).includes(directive), `${path}: CSP has ${directive}: ${csp}`);
        }
        assert(!csp.includes('unsafe-'), `${path}: nothing unsafe in the CSP: ${csp}`);
        assert(h['x-frame-options'] === 'DENY', `${path}: X-Frame-Options DENY`);
        assert(h['x-content-type-options'] === 'nosniff', `${path}: nosniff`);
        assert(h['referrer-policy'] === 'no-referrer', `${path}: Referrer-Policy`);
        assert((h['strict-transport-security'] || '').startsWith('max-age='), `${path}: HSTS`);
        assert((h['permissions-policy'] || '').includes('camera=()'), `${path}: Permissions-Policy`);
      }
      const api = await page.request.get(`${runner.base}/api/health`);
      assert(api.headers()['cache-control'] === 'no-store', 'API answers are not cached');

      await page.goto('about:blank');
      await page.setContent(`<iframe title="framed" src="${runner.base}/"></iframe>`);
      await sleep(3000);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert(frame, 'the frame exists');
      const text = await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '');
      assert(!text.includes('Development login'), `the app did not render inside a frame: ${text.slice(0, 200)}`);
      await page.close();
    },
  },
  {
    name: 'sign-in page marks the development login and lists seeded users',
    async run({ ctx, runner }) {
      const page = await newPage(ctx);
      await page.goto(`${runner.base}/`);
      await page.getByText('Development login').first().waitFor();
      await page.getByRole('button', { name: /admin@example\.com/ }).waitFor();
      await page.getByRole('button', { name: /dev@example\.com/ }).waitFor();
      await shot(page, 'sign-in');
      await page.close();
    },
  },
  {
    name: 'member starts a session, sees it ACTIVE without reloading, expands, extends and stops it',
    async run({ ctx, runner }) {
      const page = await newPage(ctx);
      await signIn(page, runner.base, 'dev@example.com');
      assert(!(await page.getByRole('link', { name: 'Credentials' }).count()), 'members see no Admin section');
      assert((await factValue(page, 'Resources')) === '3', 'member starts with 3 resources');
      const opts = await durationOptions(page);
      assert(JSON.stringify(opts) === JSON.stringify([1, 2, 4, 8, 12, 16, 24]), `TEAM durations, got ${opts}`);
      const navigations = [];
      page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));

      const row = await startSession(page, '2 hours');
      await waitStatus(row, 'ACTIVE', 'the session to become ACTIVE');
      assert(navigations.length === 0, `the page did not reload (navigations: ${navigations.join(', ')})`);
      assert(/in 1 h 5\d min/.test(await row.innerText()), `expires in ~2 h: ${await row.innerText()}`);
      assert((await row.locator('.ipv').first().textContent()) === 'v4', 'IP version badge shown');

      // Expand with a click: the per-resource table.
      await row.click();
      assert((await row.getAttribute('aria-expanded')) === 'true', 'row expanded on click');
      const detail = page.locator('tr.detail-row').first();
      await detail.getByRole('columnheader', { name: 'Resource' }).waitFor();
      await waitFor(async () => (await detail.getByText('APPLIED', { exact: true }).count()) === 3, 'three APPLIED entries');
      assert((await detail.locator('.badge--green').count()) === 3, 'APPLIED entries are green');

      // Extend by 2 h.
      const before = Date.parse(await row.locator('time').first().getAttribute('datetime'));
      await row.getByRole('button', { name: /Extend session by 2 hours/ }).click();
      await waitFor(async () => {
        const after = Date.parse(await row.locator('time').first().getAttribute('datetime'));
        return Math.abs(after - before - 2 * 3600_000) < 1000;
      }, 'expiry to move by 2 h');
      assert(/in 3 h 5\d min/.test(await row.innerText()), `expires in ~4 h: ${await row.innerText()}`);
      await shot(page, 'sessions-laptop');

      // Keyboard: Enter collapses, Space expands.
      await row.focus();
      await page.keyboard.press('Enter');
      assert((await row.getAttribute('aria-expanded')) === 'false', 'Enter collapses');
      await page.keyboard.press('Space');
      assert((await row.getAttribute('aria-expanded')) === 'true', 'Space expands');

      // Phone width.
      await page.setViewportSize(PHONE);
      await sleep(200);
      await shot(page, 'sessions-phone');
      // The sidebar folds into a menu button at phone width.
      const nav = page.getByRole('navigation', { name: 'Main' });
      assert(!(await nav.isVisible()), 'navigation folded away at phone width');
      await page.getByRole('button', { name: 'Open menu' }).click();
      await nav.getByRole('link', { name: 'Sessions' }).waitFor();
      await shot(page, 'sessions-phone-menu', { fullPage: false });
      await page.getByRole('button', { name: 'Close menu' }).click();
      await page.setViewportSize(LAPTOP);

      // Stop: the square icon button.
      await row.getByRole('button', { name: 'Stop session' }).click();
      await waitStatus(row, 'CANCELLED', 'the session to end CANCELLED');
      await waitFor(async () => (await page.locator('tr.detail-row').first().getByText('REMOVED', { exact: true }).count()) === 3, 'three REMOVED entries');
      const extend = row.getByRole('button', { name: /Extend session by 2 hours/ });
      assert(await extend.isDisabled(), '+2h disabled on a cancelled session');
      assert((await extend.getAttribute('title')).includes('Only active or partial'), 'reason in the tooltip');
      assert(await row.getByRole('button', { name: 'Stop session' }).isDisabled(), 'stop disabled once cancelled');
      await waitFor(async () => !(await page.locator('.live-indicator').count()), 'polling to stop');
      await page.close();
    },
  },
  {
    name: 'admin adds a resource on a spare group and a role with a 4 h maximum; the member sees both',
    async run({ ctx, runner }) {
      const adminToken = await runner.token('admin@example.com');
      const used = new Set((await runner.api('GET', '/api/admin/resources', { token: adminToken })).map((r) => r.securityGroupId));
      const firewall = await runner.api('GET', '/api/dev/firewall');
      const spare = firewall.find((g) => !used.has(g.securityGroupId));
      assert(spare, 'the simulated cloud has a spare security group');

      const page = await newPage(ctx);
      ctxState.adminPage = page;
      await signIn(page, runner.base, 'admin@example.com');
      await goAdmin(page, 'Resources');
      await page.getByRole('button', { name: 'Add resource' }).click();
      const form = page.getByRole('form', { name: 'Add resource' });
      await form.getByLabel('Name').fill('Reporting service');
      await form.getByLabel('Security group ID').fill('sg-xyz');
      await form.getByLabel('From port').fill('8443');
      await form.getByLabel('To port').fill('80');
      await form.getByRole('button', { name: 'Add resource' }).click();
      await form.getByText('Use a security group ID like').waitFor();
      await form.getByText('To port must be greater than or equal to From port').waitFor();
      await shot(page, 'admin-resources-validation');

      await form.getByLabel('Security group ID').fill(spare.securityGroupId);
      await form.getByLabel('Region').fill(spare.region);
      await form.getByLabel('To port').fill('8443');
      await form.getByRole('button', { name: 'Add resource' }).click();
      await page.getByRole('cell', { name: 'Reporting service', exact: true }).waitFor();
      await page.getByRole('cell', { name: spare.securityGroupId, exact: true }).waitFor();
      await shot(page, 'admin-resources');

      await goAdmin(page, 'Roles');
      await page.getByRole('button', { name: 'Add role' }).click();
      const rf = page.getByRole('form', { name: 'Add role' });
      await rf.getByLabel('Name').fill('Reporting (short sessions)');
      await rf.getByLabel(/Max session duration/).fill('4');
      await rf.getByRole('checkbox', { name: /Reporting service/ }).check();
      await rf.getByRole('checkbox', { name: /dev@example\.com/ }).check();
      await rf.getByRole('button', { name: 'Add role' }).click();
      await page.getByRole('cell', { name: 'Reporting (short sessions)', exact: true }).waitFor();
      await shot(page, 'admin-roles');

      const member = await newPage(ctx);
      await signIn(member, runner.base, 'dev@example.com');
      await waitFor(async () => (await factValue(member, 'Resources')) === '4', 'member resource count 4');
      const opts = await durationOptions(member);
      assert(JSON.stringify(opts) === JSON.stringify([1, 2, 4]), `dropdown shrinks to 1,2,4; got ${opts}`);
      const row = await startSession(member, '4 hours');
      await waitStatus(row, 'ACTIVE');
      assert((await row.locator('td[data-label="Resources"]').innerText()).trim() === '4', 'session covers 4 resources');
      const extend = row.getByRole('button', { name: /Extend session by 2 hours/ });
      assert(await extend.isDisabled(), '+2h disabled at the 4 h maximum');
      assert((await extend.getAttribute('title')).includes('maximum session duration of 4 h'), 'reason names the maximum');
      assert((await row.getByTestId('extend-reason').innerText()).includes('maximum session duration'), 'reason as screen-reader text');
      await row.getByRole('button', { name: 'Stop session' }).click();
      await waitStatus(row, 'CANCELLED');
      await member.close();
    },
  },
  {
    name: 'a resource on a non-existent security group makes a member session PARTIAL with the error shown',
    async run({ ctx, runner }) {
      const page = ctxState.adminPage;
      assert(page, 'the admin page from the previous scenario');
      await goAdmin(page, 'Resources');
      await page.getByRole('button', { name: 'Add resource' }).click();
      const form = page.getByRole('form', { name: 'Add resource' });
      await form.getByLabel('Name').fill('Legacy VPN');
      await form.getByLabel('Security group ID').fill('sg-0aaaaaaaaaaaaaaa0');
      await form.getByLabel('Region').fill('eu-west-1');
      await form.getByLabel('From port').fill('1194');
      await form.getByLabel('To port').fill('1194');
      await form.getByLabel('Protocol').selectOption('udp');
      await form.getByRole('button', { name: 'Add resource' }).click();
      await page.getByRole('cell', { name: 'Legacy VPN', exact: true }).waitFor();

      await goAdmin(page, 'Roles');
      await page.getByRole('button', { name: 'Edit Reporting (short sessions)' }).click();
      const rf = page.getByRole('form', { name: 'Edit role' });
      await rf.getByRole('checkbox', { name: /Legacy VPN/ }).check();
      await rf.getByRole('button', { name: 'Save changes' }).click();
      await page.locator('td[data-label="Resources"] .tag', { hasText: 'Legacy VPN' }).waitFor();

      const member = await newPage(ctx);
      await signIn(member, runner.base, 'dev@example.com');
      await waitFor(async () => (await factValue(member, 'Resources')) === '5', 'member resource count 5');
      const row = await startSession(member, '1 hour');
      await waitStatus(row, 'PARTIAL', 'the session to end PARTIAL');
      assert((await row.locator('.badge--orange').count()) === 1, 'PARTIAL is orange');
      await row.click();
      const detail = member.locator('tr.detail-row').first();
      const failed = detail.locator('tr', { hasText: 'Legacy VPN' });
      await failed.getByText('FAILED', { exact: true }).waitFor();
      assert((await failed.locator('.badge--red').count()) === 1, 'FAILED entry is red');
      const err = (await failed.locator('td[data-label="Error"]').innerText()).trim();
      assert(err && err !== '—', `the entry's error is shown (got "${err}")`);
      assert((await detail.getByText('APPLIED', { exact: true }).count()) === 4, 'the other four are APPLIED');
      await shot(member, 'sessions-partial');
      await member.setViewportSize(PHONE);
      await sleep(200);
      await shot(member, 'sessions-partial-phone');
      await member.close();
    },
  },
  {
    name: 'admin pages: credentials, users, IAM policy, audit logs and organization',
    async run({ ctx, runner }) {
      const page = ctxState.adminPage;
      assert(page, 'the admin page from the earlier scenario');
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: runner.base });

      await goAdmin(page, 'Credentials');
      await page.getByText('Role-based credentials are recommended').waitFor();
      await page.getByRole('cell', { name: 'Simulated cloud', exact: true }).waitFor();
      await page.getByRole('button', { name: /^Validate / }).first().click();
      // The simulated cloud answers like STS: the credential is VALID, with its account id.
      await page.locator('.alert').filter({ hasText: /"Simulated cloud" is valid \(account \d{12}\)/ }).waitFor();
      await page.getByRole('row', { name: /Simulated cloud/ }).getByText('Valid', { exact: true }).waitFor();
      await page.getByRole('button', { name: 'Add credential' }).click();
      await page.getByRole('button', { name: 'Add credential' }).last().click();
      await page.getByText('Name is required').waitFor();
      await page.getByText('Role ARN is required').waitFor();
      await shot(page, 'admin-credentials');
      await page.getByRole('button', { name: 'Cancel' }).click();

      await goAdmin(page, 'Users');
      await page.getByRole('cell', { name: 'dev@example.com', exact: true }).waitFor();
      await shot(page, 'admin-users');

      await goAdmin(page, 'IAM Policy');
      await page.locator('pre.code').getByText('ec2:AuthorizeSecurityGroupIngress').first().waitFor();
      await page.getByRole('button', { name: 'Copy JSON' }).first().click();
      await page.getByRole('button', { name: 'Copied' }).first().waitFor();
      const clip = await page.evaluate(() => navigator.clipboard.readText());
      assert(JSON.parse(clip).Statement, 'the copied text is the policy JSON');
      await shot(page, 'admin-iam-policy');

      await goAdmin(page, 'Audit Logs');
      await page.locator('table').getByText('session.started').first().waitFor();
      await page.getByLabel('Event type').fill('session.started');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await waitFor(async () => {
        const types = await page.locator('td[data-label="Type"]').allInnerTexts();
        return types.length > 0 && types.every((t) => t.trim() === 'session.started');
      }, 'only session.started events');
      await page.getByRole('button', { name: 'Clear' }).click();
      await shot(page, 'admin-audit-logs');

      await goAdmin(page, 'Organization');
      const name = page.getByLabel('Organization name');
      await waitFor(async () => (await name.inputValue()) === 'Demo Org', 'organization name');
      await page.getByText('Team · current plan').waitFor();
      assert((await page.getByRole('radio').count()) === 0, 'the plan is not a choice an admin makes');
      await name.fill('');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Organization name is required').waitFor();
      await name.fill('Demo Org');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Organization saved.').waitFor();
      await shot(page, 'admin-organization');
    },
  },
  {
    name: 'admin sees who has access now, stops a member session (the member sees who) and revokes all after confirming',
    async run({ ctx, runner }) {
      const admin = ctxState.adminPage;
      assert(admin, 'the admin page from the earlier scenario');
      // One live session only, so the admin's list has exactly one row to act on.
      const devToken = await runner.token('dev@example.com');
      for (const s of await runner.api('GET', '/api/sessions', { token: devToken })) {
        if (['PENDING', 'ACTIVE', 'PARTIAL'].includes(s.status)) await runner.api('POST', `/api/sessions/${s.id}/stop`, { token: devToken });
      }
      const member = await newPage(ctx);
      await signIn(member, runner.base, 'dev@example.com');
      const row = await startSession(member);
      await waitStatus(row, ['ACTIVE', 'PARTIAL'], 'the member session settled');

      await goAdmin(admin, 'Live access');
      const table = admin.getByRole('table', { name: 'Live sessions' });
      await waitFor(async () => (await table.getByRole('cell', { name: 'dev@example.com', exact: true }).count()) === 1, 'one live session of the member');
      await admin.getByRole('img', { name: /Sessions per day over the last 30 days/ }).waitFor();
      await shot(admin, 'admin-live-access');
      await admin.getByRole('button', { name: "Stop dev@example.com's session" }).click();
      await admin.getByText("Stopped dev@example.com's session").waitFor();

      // The member's page polls only while its own work is in flight; a reload shows the end.
      await member.reload();
      await member.locator('#duration').waitFor();
      const ended = sessionRows(member).first();
      await waitStatus(ended, 'CANCELLED', 'the member sees the session end');
      await ended.getByText('Stopped by admin@example.com').waitFor();
      await shot(member, 'member-stopped-by-admin');
      await member.close();

      await runner.api('POST', '/api/sessions', { token: devToken, body: { durationHours: 1 } });
      await admin.getByRole('button', { name: 'Revoke all now' }).click();
      await admin.getByRole('button', { name: 'Confirm: revoke all access to every resource' }).waitFor();
      await shot(admin, 'admin-revoke-all-confirm');
      await admin.getByRole('button', { name: 'Confirm: revoke all access to every resource' }).click();
      await admin.getByText(/Revoked: \d+ live sessions? stopped/).waitFor();
      await admin.getByText('Nobody has access right now').waitFor();
      const live = await runner.api('GET', '/api/admin/sessions', { token: await runner.token('admin@example.com') });
      assert(live.every((l) => l.session.status === 'EXPIRING' || l.session.status === 'CANCELLED'), 'nothing grants access any more');
    },
  },
  {
    name: 'member creates an API token, sees it once, uses it from a script and revokes it',
    async run({ ctx, runner }) {
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: runner.base });
      const callMe = (token) => fetch(`${runner.base}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
      const page = await newPage(ctx);
      await signIn(page, runner.base, 'dev@example.com');
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
      assert(page.url().endsWith('#/tokens'), `hash route #/tokens (at ${page.url()})`);
      await page.getByText('No API tokens yet').waitFor();

      const form = page.getByRole('form', { name: 'Create API token' });
      await form.getByRole('button', { name: 'Create token' }).click();
      await form.getByText('Name is required').waitFor();

      // A long-lived token first, so the list shows both kinds of expiry.
      await form.getByLabel('Name').fill('Nightly report script');
      await form.getByLabel('Expiration').selectOption({ label: 'No expiry' });
      await form.getByRole('button', { name: 'Create token' }).click();
      await page.getByRole('region', { name: 'Token “Nightly report script” created' }).waitFor();
      await page.getByRole('button', { name: 'Hide token' }).click();
      assert(!(await page.getByRole('region', { name: /created/ }).count()), 'the one-time panel is gone once hidden');

      // Keyboard only: type the name, Tab to the expiry (90 days by default), Tab to the button, Enter.
      await form.getByLabel('Name').focus();
      await page.keyboard.type('CI pipeline');
      await page.keyboard.press('Tab');
      assert((await page.evaluate(() => document.activeElement?.tagName)) === 'SELECT', 'Tab reaches the expiry select');
      assert((await form.getByLabel('Expiration').inputValue()) === '90', 'expiry defaults to 90 days');
      await page.keyboard.press('Tab');
      assert((await page.evaluate(() => document.activeElement?.textContent?.trim())) === 'Create token', 'Tab reaches Create token');
      await page.keyboard.press('Enter');
      const panel = page.getByRole('region', { name: 'Token “CI pipeline” created' });
      await panel.waitFor();
      await panel.getByText('it will not be shown again').waitFor();
      const secretField = panel.getByLabel('New API token');
      const token = await secretField.inputValue();
      assert(/^egt_[0-9a-f]{64}$/.test(token), `the one-time token looks like egt_<64 hex> (got ${token.slice(0, 12)}…)`);
      assert(await secretField.evaluate((el) => el.readOnly && getComputedStyle(el).fontFamily.includes('mono')), 'read-only monospace field');
      await panel.getByRole('button', { name: 'Copy' }).click();
      await panel.getByRole('button', { name: 'Copied' }).waitFor();
      assert((await page.evaluate(() => navigator.clipboard.readText())) === token, 'Copy puts the token on the clipboard');
      const row = page.locator('tr', { has: page.getByRole('cell', { name: /^CI pipeline/ }) });
      await row.getByText('in 90 days').waitFor();
      await row.getByText('Never used').waitFor();
      await page.locator('tr', { has: page.getByRole('cell', { name: 'Nightly report script' }) }).getByText('Never', { exact: true }).waitFor();
      await shot(page, 'api-tokens');
      await page.setViewportSize(PHONE);
      await sleep(200);
      await shot(page, 'api-tokens-phone');
      await page.setViewportSize(LAPTOP);

      // The token works from a script (Node's fetch), as the member.
      const ok = await callMe(token);
      assert(ok.status === 200, `GET /api/me with the token answers 200 (got ${ok.status})`);
      const me = await ok.json();
      assert(me.user.email === 'dev@example.com' && me.user.isAdmin === false, `the token acts as its owner (${me.user.email})`);

      // Shown once: after leaving the page the secret is nowhere, and the list shows the use.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sessions', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'Sessions' }).waitFor();
      await page.goBack();
      await page.getByRole('heading', { level: 1, name: 'API tokens' }).waitFor();
      await row.locator('td[data-label="Last used"]').getByText('just now').waitFor();
      assert(!(await page.content()).includes(token), 'the secret is not shown again');

      // Revoke (two steps, keyboard: the confirm button takes the focus), then the token answers 401.
      await row.getByRole('button', { name: 'Revoke CI pipeline' }).click();
      await page.keyboard.press('Enter');
      await page.getByText('Revoked "CI pipeline"').waitFor();
      await waitFor(async () => !(await page.getByRole('cell', { name: /^CI pipeline/ }).count()), 'the revoked row to go');
      const denied = await callMe(token);
      assert(denied.status === 401, `GET /api/me with the revoked token answers 401 (got ${denied.status})`);
      assert((await denied.json()).error.code === 'UNAUTHENTICATED', 'the standard error body');
      await page.close();
    },
  },
  {
    name: 'a newcomer signs up, lands on an empty Free organization with first steps and invites a colleague',
    async run({ ctx, runner }) {
      const page = await newPage(ctx);
      await page.goto(`${runner.base}/#/sessions`);
      const form = page.getByRole('form', { name: 'Create an organization' });
      await form.getByLabel('Your e-mail address').fill('founder@startup.example');
      await form.getByLabel('Organization name').fill('Startup');
      await shot(page, 'signup');
      await form.getByRole('button', { name: 'Create' }).click();
      await page.getByRole('heading', { level: 1, name: 'Sessions' }).waitFor();
      const steps = page.getByRole('note', { name: 'First steps' });
      await steps.getByRole('link', { name: 'Add a credential' }).waitFor();
      await page.getByText('Startup · Free').waitFor();
      assert(await page.getByRole('button', { name: 'Start Session' }).isDisabled(), 'nothing to start yet');
      await shot(page, 'signup-first-steps');

      await goAdmin(page, 'Users');
      await page.getByRole('button', { name: 'Add user' }).click();
      const add = page.getByRole('form', { name: 'Add user' });
      await add.getByLabel('E-mail').fill('colleague@startup.example');
      await add.getByRole('button', { name: 'Add user' }).click();
      await page.getByRole('cell', { name: 'colleague@startup.example', exact: true }).waitFor();
      const people = await runner.api('GET', '/api/dev/directory');
      const invited = people.find((p) => p.email === 'colleague@startup.example');
      assert(invited && invited.enabled && invited.invitations === 1, `the stand-in directory recorded the invitation (${JSON.stringify(people)})`);
      await shot(page, 'signup-invited');
      await page.close();
    },
  },
  {
    name: 'admin adds a webhook endpoint, copies its secret once, sends a signed test event, disables and deletes it',
    async run({ ctx, runner }) {
      const received = [];
      const receiver = createHttpServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          received.push({ headers: req.headers, body: Buffer.concat(chunks) });
          res.writeHead(204).end();
        });
      });
      await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${receiver.address().port}/hook`;
      try {
        const member = await newPage(ctx);
        await signIn(member, runner.base, 'dev@example.com');
        assert(!(await member.getByRole('link', { name: 'Webhooks' }).count()), 'members see no webhooks');
        await member.close();

        const page = await newPage(ctx);
        await signIn(page, runner.base, 'admin@example.com');
        await goAdmin(page, 'Webhooks');
        await page.getByText('No webhook endpoints yet').waitFor();
        const form = page.getByRole('form', { name: 'Add webhook endpoint' });
        await form.getByRole('button', { name: 'Add endpoint' }).click();
        await form.getByText('URL is required').waitFor();
        await form.getByLabel('URL').fill('https://169.254.169.254/latest/meta-data/');
        await form.getByRole('button', { name: 'Add endpoint' }).click();
        await form.getByText(/link-local address/).first().waitFor();
        await form.getByLabel('URL').fill(url);
        await form.getByRole('checkbox', { name: /Session ended/ }).check();
        await form.getByLabel('Format').selectOption('JSON');
        await form.getByRole('button', { name: 'Add endpoint' }).click();
        const secretInput = page.getByLabel('Signing secret');
        await secretInput.waitFor();
        const secret = await secretInput.inputValue();
        assert(/^whsec_[0-9a-f]{64}$/.test(secret), `a secret is shown once: ${secret}`);
        const row = page.getByRole('row', { name: new RegExp(url.replace(/[.:/]/g, '\\$&')) });
        await row.getByText('Enabled').waitFor();
        await shot(page, 'admin-webhooks-added');

        await page.getByRole('button', { name: 'Hide secret' }).click();
        await row.getByRole('button', { name: 'Send test event' }).click();
        const log = page.getByRole('table', { name: 'Deliveries' });
        await log.getByText('DELIVERED').waitFor();
        await log.getByText('HTTP 204').waitFor();
        const test = await waitFor(() => received.find((r) => r.headers['x-entryguard-event'] === 'webhook.test'), 'the test event');
        const ts = test.headers['x-entryguard-timestamp'];
        const mac = createHmac('sha256', secret).update(`${ts}.`).update(test.body).digest('hex');
        assert(test.headers['x-entryguard-signature'] === `v1=${mac}`, 'the documented signature verifies');
        assert(JSON.parse(test.body.toString()).type === 'webhook.test', 'the body names the event');
        await shot(page, 'admin-webhooks-delivery-log');

        await row.getByRole('button', { name: 'Disable' }).click();
        await row.getByText('Disabled', { exact: true }).waitFor();
        assert(await row.getByRole('button', { name: 'Send test event' }).isDisabled(), 'no test event to a disabled endpoint');
        await shot(page, 'admin-webhooks-disabled');
        await row.getByRole('button', { name: 'Delete' }).click();
        await row.getByRole('button', { name: /Confirm/ }).click();
        await page.getByText('No webhook endpoints yet').waitFor();
        await page.close();
      } finally {
        receiver.close();
      }
    },
  },
  {
    name: 'a 401 returns to the sign-in screen',
    async run({ ctx, runner }) {
      const page = await newPage(ctx);
      await signIn(page, runner.base, 'dev@example.com');
      await page.evaluate(() => sessionStorage.setItem('entryguard.token', 'not-a-valid-token'));
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByText('Development login').first().waitFor();
      await page.getByText('Your sign-in has expired').waitFor();
      await page.close();
    },
  },
  {
    name: 'single sign-on: the browser session outlives its ID token, renewed with the refresh token and no new sign-in',
    async run({ ctx }) {
      // oidc-client-ts renews 60 s before the tokens expire: with 70 s tokens, 10 s after each issue.
      const LIFETIME_SECS = 70;
      const LEEWAY_SECS = 60; // the API's tolerance for clock skew (functions/api/src/oidc.rs)
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      let runner = null;
      const runnerNow = async () => {
        const { now } = await runner.api('POST', '/api/dev/clock', { body: { advanceSeconds: 0 } });
        return typeof now === 'number' ? now : Math.floor(Date.parse(now) / 1000);
      };
      // The provider tells time by the runner's clock, so tokens issued after the clock moves are fresh.
      const provider = await new OidcProvider({ fixturesDir, lifetimeSecs: LIFETIME_SECS, now: runnerNow }).start();
      const webDir = mkdtempSync(join(tmpdir(), 'entryguard-e2e-web-'));
      try {
        cpSync(distDir, webDir, { recursive: true });
        writeFileSync(
          join(webDir, 'config.json'),
          JSON.stringify({ apiBaseUrl: '', auth: { mode: 'oidc', issuer: provider.url, clientId: AUDIENCE, redirectUri: `${base}/` } }),
        );
        runner = new Runner({ webDir, port, extraArgs: ['--oidc-issuer', provider.url, '--oidc-audience', AUDIENCE] });
        await runner.start();
        provider.person = 'dev@example.com';

        const page = await newPage(ctx);
        const apiCalls = [];
        page.on('response', (r) => {
          const u = new URL(r.url());
          if (u.origin === base && u.pathname.startsWith('/api/')) {
            apiCalls.push({ path: u.pathname, status: r.status(), bearer: (r.request().headers().authorization || '').replace(/^Bearer /, '') });
          }
        });
        await page.goto(`${base}/#/sessions`);
        await page.getByRole('button', { name: /Continue with single sign-on/ }).click();
        await page.getByRole('heading', { level: 1, name: 'Sessions' }).waitFor();
        await page.locator('#duration').waitFor();
        assert(!page.url().includes('code='), `the code is gone from the address bar (${page.url()})`);
        assert(provider.authorizations.length === 1, 'one sign-in at the provider');
        const authz = provider.authorizations[0];
        assert(authz.code_challenge_method === 'S256' && authz.response_type === 'code', `code flow with PKCE S256 (${JSON.stringify(authz)})`);
        assert(provider.issued.length === 1 && provider.issued[0].grant === 'authorization_code', 'the code was exchanged once');
        const first = provider.issued[0];

        // Move the API's clock past the first ID token's lifetime and its leeway: the API refuses it.
        const advance = first.claims.exp + LEEWAY_SECS + 1 - (await runnerNow());
        await runner.api('POST', '/api/dev/clock', { body: { advanceSeconds: advance } });
        const stale = await fetch(`${base}/api/me`, { headers: { Authorization: `Bearer ${first.idToken}` } });
        assert(stale.status === 401, `the first ID token is expired for the API (got ${stale.status})`);

        // Used at once, before the renewal timer fires (a laptop waking up): the API refuses the
        // token, the app renews it with the refresh token and sends the request again.
        assert(provider.issued.length === 1, 'no renewal yet');
        let before = apiCalls.length;
        await page.getByRole('button', { name: 'Refresh' }).click();
        await waitFor(() => apiCalls.slice(before).some((c) => c.path === '/api/sessions' && c.status === 200), 'the list to load after a renewal');
        const second = provider.issued[1];
        assert(second && second.grant === 'refresh_token', `renewed with the refresh token (${second?.grant})`);
        assert(second.claims.iat > first.claims.exp + LEEWAY_SECS, 'the renewed ID token was issued after the first one had expired for the API');
        const refused = apiCalls.slice(before).filter((c) => c.status === 401);
        assert(refused.length === 1 && refused[0].bearer === first.idToken, `only the first token was refused (${JSON.stringify(refused)})`);

        before = apiCalls.length;
        const row = await startSession(page);
        await waitStatus(row, 'ACTIVE', 'the session started with the renewed token to become ACTIVE');
        const after = apiCalls.slice(before);
        assert(after.length > 0 && after.every((c) => c.bearer === second.idToken && c.status < 400), 'requests after the renewal carry the new token');

        // And on the timer, a minute before expiry: the session goes on as long as the provider renews.
        await waitFor(() => provider.issued.length >= 3, 'a renewal on the timer', 30_000);
        const third = provider.issued[2];
        const beforeRefresh = apiCalls.length;
        await page.getByRole('button', { name: 'Refresh' }).click();
        await waitFor(() => apiCalls.slice(beforeRefresh).some((c) => c.path === '/api/sessions' && c.status === 200), 'the list to refresh');
        assert(apiCalls.slice(beforeRefresh).every((c) => c.bearer === third.idToken), 'the refresh used the newest token');
        assert(await page.getByRole('heading', { level: 1, name: 'Sessions' }).isVisible(), 'still on the Sessions page');
        assert(!(await page.getByText('Your sign-in has expired').count()), 'never sent back to sign in');
        assert(apiCalls.filter((c) => c.status === 401).length === 1, 'no other request was refused');
        assert(provider.authorizations.length === 1, 'no second sign-in at the provider');
        await shot(page, 'sso-renewed');
        await page.close();
      } finally {
        if (runner) await runner.stop().catch(() => {});
        await provider.stop();
        rmSync(webDir, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'dual-stack: with the runner on 127.0.0.1 and [::1] a session shows a v4 and a v6 badge and a row per resource × address',
    async run({ ctx }) {
      const port = await freePort();
      const runner = new Runner({ port, extraArgs: ['--listen', `[::1]:${port}`] });
      try {
        await runner.start();
        const config = await (await fetch(`${runner.base}/config.json`)).json();
        assert(
          config.addressProbes?.v4 === runner.base && config.addressProbes?.v6 === `http://[::1]:${port}`,
          `config.json names both probes: ${JSON.stringify(config.addressProbes)}`,
        );
        const page = await newPage(ctx);
        await signIn(page, runner.base, 'dev@example.com');
        const row = await startSession(page, '2 hours');
        await waitStatus(row, 'ACTIVE', 'the dual-stack session to become ACTIVE');
        const badges = await row.locator('.ipv').allTextContents();
        assert(JSON.stringify(badges) === JSON.stringify(['v4', 'v6']), `a v4 and a v6 badge: ${badges}`);
        assert((await row.innerText()).includes('::1'), 'the IPv6 address is listed');
        assert(!(await page.getByText(/Only your IPv/).count()), 'no one-family note when both were found');
        await shot(page, 'dual-stack-session');

        await row.click();
        const detail = page.locator('tr.detail-row').first();
        await waitFor(async () => (await detail.getByText('APPLIED', { exact: true }).count()) === 6, 'six APPLIED entries (3 resources × 2 addresses)');
        assert((await detail.locator('.ipv', { hasText: 'v6' }).count()) === 3, 'three IPv6 entries');
        await shot(page, 'dual-stack-session-details');

        const firewall = await runner.api('GET', '/api/dev/firewall');
        const cidrs = JSON.stringify(firewall);
        assert(cidrs.includes('127.0.0.1/32') && cidrs.includes('::1/128'), `both rules in the simulated groups: ${cidrs}`);
        await row.getByRole('button', { name: 'Stop session' }).click();
        await waitStatus(row, 'CANCELLED', 'the session to end');
        const after = JSON.stringify(await runner.api('GET', '/api/dev/firewall'));
        assert(!after.includes('/32') && !after.includes('/128'), `both rules removed: ${after}`);
        await page.close();
      } finally {
        await runner.stop().catch(() => {});
      }
    },
  },
];

// ---------------------------------------------------------------- main

let activeRunner = null;

async function main() {
  const runner = new Runner();
  activeRunner = runner;
  const userDataDir = mkdtempSync(join(tmpdir(), 'entryguard-e2e-chromium-'));
  let ctx = null;
  let passed = 0;
  let failed = 0;
  try {
    if (!existsSync(chromiumPath)) {
      throw new Error(`${chromiumPath} is missing: apt-get update && apt-get install -y chromium`);
    }
    mkdirSync(shotsDir, { recursive: true });
    for (const f of readdirSync(shotsDir)) if (f.startsWith('failure-')) rmSync(join(shotsDir, f), { force: true });
    console.log(`e2e: starting ${bin}`);
    await runner.start();
    console.log(`e2e: runner up at ${runner.base}`);
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      viewport: LAPTOP,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    await watchCsp(ctx);
    for (const t of tests) {
      if (only && !t.name.includes(only)) continue;
      const t0 = Date.now();
      cspViolations = [];
      try {
        await t.run({ ctx, runner });
        const violations = cspViolations.filter((v) => !(t.allowCsp && t.allowCsp.test(v)));
        if (violations.length) {
          throw new Error(`Content-Security-Policy violations:\n${[...new Set(violations)].join('\n')}`);
        }
        passed++;
        console.log(`  ✓ ${t.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`  ✗ ${t.name} (${Date.now() - t0} ms)\n    ${String(e.stack || e).split('\n').slice(0, 6).join('\n    ')}`);
        for (const p of ctx.pages()) {
          try {
            mkdirSync(shotsDir, { recursive: true });
            await p.screenshot({ path: join(shotsDir, `failure-${failed}-${ctx.pages().indexOf(p)}.png`), fullPage: true });
          } catch {
            /* ignore */
          }
        }
      }
    }
  } catch (e) {
    failed++;
    console.log(`  ✗ setup: ${e.message}`);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    await runner.stop().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(`\ne2e: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // Never leave the runner behind.
    if (activeRunner?.proc && activeRunner.proc.exitCode === null) activeRunner.proc.kill('SIGKILL');
    process.exit(130);
  });
}

await main();
