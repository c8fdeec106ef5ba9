/**
 * A static server for examples/web on 127.0.0.1: only the page's own files, the build's folder
 * (under /dist/) and gpu.js's browser bundle from node_modules (under /vendor/). Nothing else is
 * reachable, so the page cannot lean on a file by accident.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PAGE_DIR = join(ROOT, 'examples', 'web');
const PAGE_FILES = ['index.html', 'main.js', 'style.css'];
export const GPU_BUNDLE = join(ROOT, 'node_modules', 'gpu.js', 'dist', 'gpu-browser.min.js');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
  '.wasm': 'application/wasm',
};

export interface ServerOptions {
  /** The folder scripts/build-web.ts wrote. */
  readonly dist: string;
  /** 0 (the default): a free port. */
  readonly port?: number;
}

export interface PageServer {
  readonly url: string;
  /** Paths asked for that the server does not have (a page bug the test can report). */
  readonly missing: string[];
  close(): Promise<void>;
}

/** Every file under `dir`, by its path relative to it with forward slashes. */
function listFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), p);
    }
  };
  walk(dir);
  return out;
}

export async function startServer(opts: ServerOptions): Promise<PageServer> {
  const routes = new Map<string, string>();
  for (const f of PAGE_FILES) if (existsSync(join(PAGE_DIR, f))) routes.set(`/${f}`, join(PAGE_DIR, f));
  routes.set('/', join(PAGE_DIR, 'index.html'));
  for (const [rel, abs] of listFiles(opts.dist)) routes.set(`/dist/${rel}`, abs);
  if (existsSync(GPU_BUNDLE)) routes.set('/vendor/gpu-browser.min.js', GPU_BUNDLE);
  const missing: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = routes.get(path);
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      if (path !== '/favicon.ico') missing.push(path);
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    missing,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
