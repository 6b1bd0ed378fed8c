// Swagger UI at /docs in a real browser (Debian's Chromium, driven by playwright-core):
// authorize through the OAuth2 client-credentials dialog, "Try it out" on POST /v2/connections,
// GET /v2/connections and GET /v2/whoami, and check the 201, 200, 200 shown on the page. Run by
// tests/e2e/test_swagger_browser.py; also runnable alone:
//
//   CONNREG_BASE_URL=http://127.0.0.1:8080 CONNREG_CLIENT_ID=… CONNREG_CLIENT_SECRET=… \
//   CONNREG_SCREENSHOT=build/test-artifacts/swagger.png node tests/browser/swagger.test.mjs
//
// Prints one JSON line {"ok":true,"created":"<name>",...} on success; exits 1 on failure.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.CONNREG_BASE_URL || '').replace(/\/$/, '');
const clientId = process.env.CONNREG_CLIENT_ID || '';
const clientSecret = process.env.CONNREG_CLIENT_SECRET || '';
const screenshot = process.env.CONNREG_SCREENSHOT || 'build/test-artifacts/swagger.png';
const chromiumPath = process.env.CONNREG_CHROMIUM || '/usr/bin/chromium';
const timeout = Number(process.env.CONNREG_BROWSER_TIMEOUT_MS || 30000);
if (!base || !clientId || !clientSecret) {
  console.error('set CONNREG_BASE_URL, CONNREG_CLIENT_ID and CONNREG_CLIENT_SECRET');
  process.exit(2);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'connreg-chromium-'));
const problems = [];
const outside = [];
const connectionName = `Swagger UI test ${Date.now()}`;
let context;

async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${name}: ${e.message.split('\n')[0]}`);
  }
}

// Expands an operation, presses "Try it out" and returns its opblock locator.
async function openOperation(page, operationId, tag = 'connections') {
  const block = page.locator(`#operations-${tag}-${operationId}`);
  await block.locator('.opblock-summary').first().click();
  await block.locator('button.try-out__btn').click();
  return block;
}

async function executeAndStatus(block) {
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table tr.response .response-col_status').first();
  await status.waitFor({ state: 'visible', timeout });
  return (await status.innerText()).trim();
}

try {
  // launchPersistentContext: Chromium gets its own new, empty --user-data-dir.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 2000 },
    timeout,
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] || (await context.newPage());
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(base + '/') && !url.startsWith('data:') && !url.startsWith('blob:')) outside.push(url);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });

  await step('open /docs', async () => {
    const resp = await page.goto(base + '/docs', { waitUntil: 'load' });
    if (!resp || resp.status() !== 200) throw new Error(`status ${resp && resp.status()}`);
    await page.locator('.swagger-ui .info .title').waitFor();
    await page.locator('#operations-connections-createConnection').waitFor();
  });
  const title = (await page.locator('.swagger-ui .info .title').innerText()).trim();

  await step('authorize with client credentials', async () => {
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    const oauth = dialog.locator('.auth-container').filter({ has: page.locator('input[data-name="clientId"]') });
    await oauth.locator('input[data-name="clientId"]').fill(clientId);
    await oauth.locator('input[data-name="clientSecret"]').fill(clientSecret);
    const token = page.waitForResponse((r) => r.url() === base + '/v2/auth/token');
    await oauth.locator('button.authorize').click();
    const tokenResponse = await token;
    if (tokenResponse.status() !== 200) throw new Error(`token endpoint answered ${tokenResponse.status()}`);
    // Once authorized, the scheme's Authorize button turns into Logout.
    await dialog.locator('.auth-container button.authorize', { hasText: 'Logout' }).first().waitFor();
    await dialog.locator('button.close-modal').click();
    await dialog.waitFor({ state: 'detached' });
  });

  const createStatus = await step('POST /v2/connections', async () => {
    const block = await openOperation(page, 'createConnection');
    const body = {
      name: connectionName,
      description: { createdBy: 'swagger.test.mjs' },
      details: { type: 'postgres', host: 'pg.example.com', database: 'analytics', user: 'reader', password: 'browser-secret' },
    };
    await block.locator('textarea.body-param__text').fill(JSON.stringify(body, null, 2));
    const status = await executeAndStatus(block);
    const shown = await block.locator('.live-responses-table tr.response .response-col_description').first().innerText();
    if (!shown.includes(connectionName)) throw new Error('the response shown does not contain the new connection');
    if (shown.includes('browser-secret')) throw new Error('the response shown contains the secret');
    return status;
  });

  const listStatus = await step('GET /v2/connections', async () => {
    const block = await openOperation(page, 'listConnections');
    const status = await executeAndStatus(block);
    const shown = await block.locator('.live-responses-table tr.response .response-col_description').first().innerText();
    if (!shown.includes(connectionName)) throw new Error('the page listed does not contain the new connection');
    const curl = await block.locator('.curl-command').first().innerText();
    if (!/Authorization: Bearer /.test(curl)) throw new Error(`the request was not sent with a bearer token: ${curl}`);
    return status;
  });

  const whoamiStatus = await step('GET /v2/whoami', async () => {
    const block = await openOperation(page, 'whoami', 'members');
    const status = await executeAndStatus(block);
    const shown = await block.locator('.live-responses-table tr.response .response-col_description').first().innerText();
    if (!shown.includes('"memberType"')) throw new Error('the response shown is not the caller');
    return status;
  });

  const pathsStatus = await step('GET /v2/connections/paths', async () => {
    const block = await openOperation(page, 'listConnectionPaths', 'catalog');
    const status = await executeAndStatus(block);
    const shown = await block.locator('.live-responses-table tr.response .response-col_description').first().innerText();
    if (!shown.includes('"total"')) throw new Error('the response shown is not a page of paths');
    return status;
  });

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });

  if (createStatus !== '201') problems.push(`POST /v2/connections showed ${createStatus}, want 201`);
  if (listStatus !== '200') problems.push(`GET /v2/connections showed ${listStatus}, want 200`);
  if (whoamiStatus !== '200') problems.push(`GET /v2/whoami showed ${whoamiStatus}, want 200`);
  if (pathsStatus !== '200') problems.push(`GET /v2/connections/paths showed ${pathsStatus}, want 200`);
  if (outside.length) problems.push(`requests outside the server: ${outside.slice(0, 5).join(', ')}`);
  console.log(JSON.stringify({ ok: problems.length === 0, title, created: connectionName, createStatus, listStatus,
                               whoamiStatus, pathsStatus, screenshot, problems }));
  process.exitCode = problems.length === 0 ? 0 : 1;
} catch (e) {
  try {
    const page = context && context.pages()[0];
    if (page) {
      mkdirSync(dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot.replace(/\.png$/, '') + '-failure.png', fullPage: true });
    }
  } catch { /* best effort */ }
  console.log(JSON.stringify({ ok: false, error: e.message, problems, outside }));
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
