// A screenshot of a page that renders after it loads (the Aspire dashboard is a Blazor Server app: its content comes
// over a WebSocket after the load event, so `chromium --screenshot` photographs an empty page). Drives headless
// Chromium over the DevTools protocol: opens the URL, waits, captures.
// Usage: node --experimental-websocket scripts/screenshot.mjs URL OUT.png [wait seconds=12] [width=1600] [height=1000]
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, out, waitSeconds = '12', width = '1600', height = '1000'] = process.argv.slice(2);
if (!url || !out) { console.error('usage: screenshot.mjs URL OUT.png [wait seconds] [width] [height]'); process.exit(2); }
const profile = mkdtempSync(join(tmpdir(), 'ftp-chromium-'));
const port = 9200 + Math.floor(Math.random() * 500);
const chromium = spawn('chromium', ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
  `--window-size=${width},${height}`, `--remote-debugging-port=${port}`, `--user-data-dir=${profile}`, 'about:blank'],
  { stdio: 'ignore' });
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

try {
  let target;
  for (let i = 0; i < 50 && !target; i++) {
    await sleep(200);
    try { target = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()).find(t => t.type === 'page'); } catch { }
  }
  if (!target) throw new Error(`chromium did not open its DevTools port ${port}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
  let nextId = 0;
  const pending = new Map();
  socket.onmessage = event => {
    const message = JSON.parse(event.data);
    if (message.id !== undefined && pending.has(message.id)) { pending.get(message.id)(message); pending.delete(message.id); }
  };
  const send = (method, params = {}) => new Promise(resolve => {
    const id = ++nextId;
    pending.set(id, resolve);
    socket.send(JSON.stringify({ id, method, params }));
  });
  await send('Page.enable');
  await send('Page.navigate', { url });
  await sleep(Number(waitSeconds) * 1000);
  const shot = await send('Page.captureScreenshot', { format: 'png' });
  if (!shot.result) throw new Error(`capture failed: ${JSON.stringify(shot.error)}`);
  writeFileSync(out, Buffer.from(shot.result.data, 'base64'));
  socket.close();
  console.log(`wrote ${out}`);
} finally {
  chromium.kill();
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
}
