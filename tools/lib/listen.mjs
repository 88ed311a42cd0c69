// Starting and stopping loopback HTTP servers for the development tools.

import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

/**
 * @typedef {object} Listening
 * @property {number} port
 * @property {import('node:http').Server[]} servers
 * @property {() => Promise<void>} close  stops accepting and drops open (keep-alive) connections
 */

/**
 * Listens with `handler` on a loopback host.
 *
 * `localhost` is bound on both 127.0.0.1 and ::1 (same port): clients differ in which address
 * they try first (Node's fetch, workerd, Chromium), and a server on only one of them would be
 * unreachable for some. ::1 is skipped silently when the machine has no IPv6 loopback.
 *
 * @param {import('node:http').RequestListener} handler
 * @param {{ host?: string, port?: number }} [options]  port 0 picks a free port
 * @returns {Promise<Listening>}
 */
export async function listen(handler, { host = '127.0.0.1', port = 0 } = {}) {
  const addresses = host === 'localhost' ? ['127.0.0.1', '::1'] : [host];
  /** @type {import('node:http').Server[]} */
  const servers = [];
  let actualPort = port;
  try {
    for (const [i, address] of addresses.entries()) {
      const server = createServer(handler);
      try {
        await bind(server, address, actualPort);
      } catch (error) {
        const code = /** @type {NodeJS.ErrnoException} */ (error).code;
        if (i > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
        throw portError(error, host, actualPort);
      }
      servers.push(server);
      actualPort = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
    }
  } catch (error) {
    await Promise.all(servers.map(stop));
    throw error;
  }
  return {
    port: actualPort,
    servers,
    close: async () => {
      await Promise.all(servers.map(stop));
    },
  };
}

/**
 * A TCP port that was free on `host` a moment ago.
 *
 * For a server whose port must be known before it starts: the provider must have the gate's
 * redirect_uri (built from the gate's own URL) registered when it starts. Another process could
 * take the port in between. To make that unlikely when test files start servers side by side, the
 * port is drawn at random below the kernel's ephemeral range (Linux: ip_local_port_range), where
 * neither outgoing connections nor other processes' `listen(0)` take ports, and checked free.
 * @param {string} [host]
 * @returns {Promise<number>}
 */
export async function freePort(host = '127.0.0.1') {
  const { low, high } = await unassignedRange();
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await isFree(host, port)) return port;
  }
  return kernelPort(host);
}

/** Ports below the kernel's ephemeral range, e.g. [20768, 32768) for the usual 32768–60999. */
async function unassignedRange() {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const start = Number(range.trim().split(/\s+/)[0]) || 32768;
  return { low: Math.max(1024, start - 12_000), high: start };
}

/** @param {string} host @param {number} port @returns {Promise<boolean>} */
function isFree(host, port) {
  return new Promise((resolve) => {
    const server = createTcpServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the kernel picks (from its ephemeral range). @param {string} host @returns {Promise<number>} */
function kernelPort(host) {
  return new Promise((resolve, reject) => {
    const server = createTcpServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: listening socket has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** @param {import('node:http').Server} server @param {string} address @param {number} port */
function bind(server, address, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
}

/** @param {import('node:http').Server} server */
function stop(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve(undefined);
    server.close(() => resolve(undefined));
    server.closeAllConnections();
  });
}

/** Rewrites "address in use" into a message that says what to do. @param {unknown} error */
function portError(error, /** @type {string} */ host, /** @type {number} */ port) {
  const err = /** @type {NodeJS.ErrnoException} */ (error);
  if (err.code === 'EADDRINUSE') {
    const wrapped = new Error(`port ${port} on ${host} is already in use (stop whatever runs there or choose another port)`);
    Object.assign(wrapped, { code: 'EADDRINUSE', cause: error });
    return wrapped;
  }
  return err;
}

/**
 * Reads a request body fully.
 * @param {import('node:http').IncomingMessage} req
 * @param {number} [limit] bytes; larger bodies reject
 * @returns {Promise<Buffer>}
 */
export async function readBody(req, limit = Infinity) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Runs `main` when the module at `moduleUrl` is the process's entry point (`node tools/start/start.mjs`), not
 * when it is imported; a failure ends the process with its message and exit code 1.
 * @param {string} moduleUrl  the caller's `import.meta.url`
 * @param {() => Promise<void>} main
 */
export function runAsScript(moduleUrl, main) {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}

/**
 * Ctrl-C or SIGTERM closes the server and exits 0.
 * @param {() => Promise<unknown>} close
 */
export function closeOnSignal(close) {
  const stop = async () => {
    await close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
